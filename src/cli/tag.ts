// `tsbak tag <repo> --add T | --remove T | --set T [snapshot..]`: without ids, every
// snapshot --host, --path and --tag select. Each changed snapshot is replaced by a new one
// signed by the master (repo/snapshot-retag.ts): its id changes.
import { TsbakError } from '../errors.js';
import { takeExclusiveLock } from './repair-lock.js';
import { EXIT } from './exit-codes.js';
import { openRepo, type RepoArgs } from './open-repo.js';
import { escapeName } from './raw-name.js';
import { selectSnapshots, type TaggedSelectArgs } from './snapshot-args.js';
import { plural } from './entry-json.js';

export interface TagArgs extends RepoArgs, TaggedSelectArgs {
  snapshot?: string[];
  add?: string[];
  remove?: string[];
  set?: string[];
  json?: boolean;
}

const out = (s: string) => process.stdout.write(s + '\n');

/** `--add a,b --add c`: a, b, c. A tag is not empty and holds no control character. */
function tagList(values: string[] | undefined, option: string): string[] {
  const tags = (values ?? []).flatMap((v) => v.split(','));
  for (const t of tags) {
    if (t === '' || /[\x00-\x1f\x7f]/.test(t)) throw new TsbakError('USAGE', `--${option}: ${JSON.stringify(t)} is not a tag (empty, or a control character): give names such as --${option} daily,important`);
  }
  return [...new Set(tags)];
}

export async function cmdTag(a: TagArgs): Promise<number> {
  const add = tagList(a.add, 'add');
  const remove = tagList(a.remove, 'remove');
  const set = a.set ? tagList(a.set, 'set') : null;
  if (set && (add.length || remove.length)) throw new TsbakError('USAGE', '--set replaces the tags: give it alone, or use --add and --remove');
  if (!set && !add.length && !remove.length) throw new TsbakError('USAGE', 'nothing to do: give --add, --remove or --set');
  const repo = await openRepo(a, { index: false });
  if (!repo.canRead || repo.secrets.keyId !== 'master') throw new TsbakError('WRITE_ONLY_KEY', 'changing tags needs the full key (the repository passphrase): the new snapshots are signed by the master');
  const bad: string[] = [];
  const snaps = await selectSnapshots(repo, a.snapshot, a, (id, e) => bad.push(`snapshot ${id.slice(0, 8)}: ${(e as Error).message}`));
  // No forget or prune meanwhile: each snapshot is replaced (written, then the old one deleted).
  const lock = await takeExclusiveLock(repo, 'tag');
  const changed: Array<{ old: string; new: string; tags: string[] }> = [];
  try {
    for (const s of snaps) {
      const tags = set ?? [...s.info.tags.filter((t) => !remove.includes(t)), ...add.filter((t) => !s.info.tags.includes(t))];
      if (tags.length === s.info.tags.length && tags.every((t, i) => t === s.info.tags[i])) continue;
      const id = await repo.retagSnapshot(s, tags);
      changed.push({ old: s.id, new: id, tags });
      if (!a.json) out(`snapshot ${s.id.slice(0, 8)} -> ${id.slice(0, 8)}: tags ${tags.map((t) => escapeName(Buffer.from(t))).join(',') || '(none)'}`);
    }
  } finally {
    await lock.release();
  }
  if (a.json) out(JSON.stringify({ changed: changed.map((c) => ({ snapshot: c.new, replaced: c.old, tags: c.tags })), unchanged: snaps.length - changed.length }));
  else out(`${plural(changed.length, 'snapshot')} changed (each replaced by a new snapshot signed by the master), ${snaps.length - changed.length} unchanged`);
  for (const b of bad) process.stderr.write(`tsbak: ${b}\n`);
  return bad.length ? EXIT.CORRUPT : EXIT.OK;
}

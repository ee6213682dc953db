// `tsbak config show <repo>` and `tsbak config set <repo> tree-class=C index-class=C`: the
// storage classes new tree packs and index files go to. config is immutable and signed by
// the master key, so a change is a new signed settings object (repo/storage-classes.ts,
// FORMAT.md "Storage class settings"); it needs the full key and applies to objects written
// from then on. Objects already stored keep their class (S3 bills a class change as a copy;
// tsbak never rewrites an object).
import type { StorageClass } from '../backend/backend.js';
import { METADATA_CLASSES } from '../format/class-settings.js';
import { TsbakError } from '../errors.js';
import { EXIT } from './exit-codes.js';
import { openRepo, type RepoArgs } from './open-repo.js';

const out = (s: string) => process.stdout.write(s + '\n');

/** Parses `tree-class=GLACIER_IR index-class=STANDARD` (names case-insensitive). */
export function parseClassSettings(settings: string[]): { tree?: StorageClass; index?: StorageClass } {
  const change: { tree?: StorageClass; index?: StorageClass } = {};
  if (!settings.length) throw new TsbakError('USAGE', 'config set needs a setting: tree-class=CLASS and/or index-class=CLASS');
  for (const s of settings) {
    const m = /^([a-z-]+)=(.*)$/i.exec(s);
    if (!m) throw new TsbakError('USAGE', `config set: '${s}' is not NAME=VALUE (tree-class=CLASS, index-class=CLASS)`);
    const key = m[1]!.toLowerCase();
    const value = m[2]!.toUpperCase() as StorageClass;
    if (key === 'data-class') throw new TsbakError('USAGE', "config set: data-class is fixed at init (pack sizes and restores depend on it); only tree-class and index-class can change");
    if (key !== 'tree-class' && key !== 'index-class') throw new TsbakError('USAGE', `config set: unknown setting '${m[1]}' (tree-class, index-class)`);
    if (!METADATA_CLASSES.includes(value)) throw new TsbakError('USAGE', `config set: ${key} '${m[2]}' is not one of ${METADATA_CLASSES.join(', ')}`);
    change[key === 'tree-class' ? 'tree' : 'index'] = value;
  }
  return change;
}

export async function cmdConfigSet(a: RepoArgs & { settings: string[] }): Promise<number> {
  const change = parseClassSettings(a.settings ?? []);
  const repo = await openRepo(a);
  const before = { ...repo.storageClasses };
  // Writers check settings against the master's key, which they learn from a signed config
  // (as key add-writer does, a config made before configs were signed is signed first).
  if (repo.canRead && !(await repo.configSigned())) await repo.signConfig();
  const s = await repo.setStorageClasses(change);
  out(`storage classes of new objects: tree packs ${before.tree} -> ${s.storageClass.tree}, index ${before.index} -> ${s.storageClass.index} (wrote ${s.name}, seq ${s.seq}); objects already stored keep their class`);
  return EXIT.OK;
}

export async function cmdConfigShow(a: RepoArgs & { json?: boolean }): Promise<number> {
  const repo = await openRepo(a);
  const c = repo.config;
  const sc = repo.storageClasses;
  if (a.json) {
    out(
      JSON.stringify({
        id: c.id,
        version: c.version,
        created: c.created,
        chunker: c.chunker,
        compression: c.compression,
        pack_size: c.packSize,
        storage_class: { data: sc.data, tree: sc.tree, index: sc.index, other: sc.other },
        config_storage_class: { data: c.storageClass.data, tree: c.storageClass.tree, index: c.storageClass.index ?? c.storageClass.other, other: c.storageClass.other },
        settings_seq: repo.storageClassSettingsSeq,
      }),
    );
    return EXIT.OK;
  }
  out(`repository ${c.id} at ${repo.backend.location}, config version ${c.version}, created ${c.created}`);
  out(`chunker ${c.chunker.min}/${c.chunker.avg}/${c.chunker.max}, zstd level ${c.compression.level}, pack size data ${c.packSize.data}, tree ${c.packSize.tree}`);
  const changed = repo.storageClassSettingsSeq ? ` (tree and index from settings seq ${repo.storageClassSettingsSeq}, 'tsbak config set')` : '';
  out(`storage classes of new objects: data packs ${sc.data}, tree packs ${sc.tree}, index ${sc.index}, snapshots, keys and config ${sc.other}${changed}`);
  return EXIT.OK;
}

// `tsbak find <repo> PATTERN...`: which snapshots hold an entry whose name (or path)
// matches, with its type, size and mtime. Trees are read in batches (repo/tree-walk.ts).
import type { TreeNode } from '../format/tree.js';
import type { Snapshot } from '../repo/repository.js';
import { walkTrees } from '../repo/tree-walk.js';
import { EXIT } from './exit-codes.js';
import type { RepoArgs } from './open-repo.js';
import { table } from './output.js';
import { compileGlob, globMatches } from './glob.js';
import { escapeName, tableTime } from './raw-name.js';
import { openSnapshotsForWalk, type TaggedSelectArgs } from './snapshot-args.js';
import { entryColumns, entryJson, plural } from './entry-json.js';
import { modeString } from './commands.js';
import { pathOrder } from './diff.js';

export interface FindArgs extends RepoArgs, TaggedSelectArgs {
  pattern: string[];
  snapshot?: string[];
  ignoreCase?: boolean;
  json?: boolean;
}

const out = (s: string) => process.stdout.write(s + '\n');
const warn = (s: string) => process.stderr.write(`tsbak: ${s}\n`);

export async function cmdFind(a: FindArgs): Promise<number> {
  const globs = a.pattern.map((p) => compileGlob(p, !!a.ignoreCase));
  const opened = await openSnapshotsForWalk(a);
  const { snaps, source } = opened;
  let damage = opened.damage;
  const found: Array<{ snap: Snapshot; hits: Array<{ path: Buffer; node: TreeNode }> }> = [];
  let hitCount = 0;
  for (const snap of snaps) {
    const hits: Array<{ path: Buffer; node: TreeNode }> = [];
    await walkTrees(source, [{ id: Buffer.from(snap.info.tree, 'hex'), at: Buffer.from('/') }], (item, tree) => {
      if (tree instanceof Error) {
        damage++;
        warn(`snapshot ${snap.id.slice(0, 8)}: ${escapeName(item.at)}: ${tree.message}`);
        return;
      }
      for (const x of tree.rejected ?? []) {
        damage++;
        warn(`snapshot ${snap.id.slice(0, 8)}: ${escapeName(item.at)}: entry ${escapeName(x.name)} refused (${x.reason}); run 'tsbak check'`);
      }
      const next = [];
      for (const n of tree.nodes) {
        const p = Buffer.concat([item.at, item.at.length > 1 ? Buffer.from('/') : Buffer.alloc(0), n.name]);
        const name = n.name.toString('utf8');
        const ps = p.toString('utf8');
        if (globs.some((g) => globMatches(g, name, ps))) hits.push({ path: p, node: n });
        if (n.type === 'dir' && n.subtree) next.push({ id: n.subtree, at: p });
      }
      return next;
    });
    if (!hits.length) continue;
    hits.sort((x, y) => pathOrder(x.path, y.path));
    found.push({ snap, hits });
    hitCount += hits.length;
  }
  if (a.json) {
    out(
      JSON.stringify({
        patterns: a.pattern,
        snapshots_searched: snaps.length,
        hits: hitCount,
        snapshots: found.map(({ snap, hits }) => ({ snapshot: snap.id, short_id: snap.id.slice(0, 8), time: snap.info.time, host: snap.info.host, paths: snap.info.paths, tags: snap.info.tags, hits: hits.length, matches: hits.map((h) => entryJson(h.path, h.node)) })),
      }),
    );
  } else {
    for (const { snap, hits } of found) {
      out(`Found matching entries in snapshot ${snap.id.slice(0, 8)} from ${tableTime(BigInt(Date.parse(snap.info.time) || 0) * 1_000_000n)} on ${snap.info.host}:`);
      out(table(hits.map((h) => [modeString(h.node), ...entryColumns(h.path, h.node)])));
      out('');
    }
    out(`${plural(hitCount, 'match', 'matches')} in ${plural(found.length, 'snapshot')} of ${snaps.length} searched`);
  }
  return damage ? EXIT.CORRUPT : EXIT.OK;
}

// `tsbak diff <repo> A B`: what changed from snapshot A to snapshot B, as restic's diff:
// + added, - removed, M content changed, U metadata only, T type changed; with totals.
// Directories with the same tree id in both are skipped without being read; the others
// are read in batches, both sides at once.
import type { Tree, TreeNode } from '../format/tree.js';
import { TreeBatchLoader } from '../repo/tree-batch.js';
import { EXIT } from './exit-codes.js';
import { openRepo, type RepoArgs } from './open-repo.js';
import { fmtBytes } from './output.js';
import { escapeName, jsonName } from './raw-name.js';
import { findTaggedSnapshot, type TaggedSelectArgs } from './snapshot-args.js';

export interface DiffArgs extends RepoArgs, TaggedSelectArgs {
  a: string;
  b: string;
  json?: boolean;
}

const out = (s: string) => process.stdout.write(s + '\n');
const warn = (s: string) => process.stderr.write(`tsbak: ${s}\n`);

type Kind = 'files' | 'dirs' | 'others';
const kindOf = (n: TreeNode): Kind => (n.type === 'file' ? 'files' : n.type === 'dir' ? 'dirs' : 'others');

interface Change {
  modifier: string;
  path: Buffer;
  type: string;
}

interface Pending {
  path: Buffer;
  a?: Buffer;
  b?: Buffer;
}

const BATCH = 256;
const EMPTY: Tree = { nodes: [] };

/** Metadata compared for U: what a user changes (mode, owner, mtime, target, device, xattrs); not atime, ctime, inode or link count. */
function sameMeta(x: TreeNode, y: TreeNode): boolean {
  const eqBuf = (p?: Buffer, q?: Buffer) => (p === undefined && q === undefined) || (p !== undefined && q !== undefined && p.equals(q));
  const xa = x.xattrs ?? [];
  const ya = y.xattrs ?? [];
  return (
    x.mode === y.mode &&
    x.uid === y.uid &&
    x.gid === y.gid &&
    x.user === y.user &&
    x.group === y.group &&
    x.mtimeNs === y.mtimeNs &&
    eqBuf(x.target, y.target) &&
    x.rdevMajor === y.rdevMajor &&
    x.rdevMinor === y.rdevMinor &&
    xa.length === ya.length &&
    xa.every(([k, v], i) => k === ya[i]![0] && v.equals(ya[i]![1]))
  );
}

function sameContent(x: TreeNode, y: TreeNode): boolean {
  const cx = x.content ?? [];
  const cy = y.content ?? [];
  const ex = JSON.stringify(x.extents ?? null);
  const ey = JSON.stringify(y.extents ?? null);
  return x.size === y.size && ex === ey && cx.length === cy.length && cx.every((c, i) => c.equals(cy[i]!));
}

/** Sorts paths as a depth-first walk lists them ('/' before any other byte). */
export const pathOrder = (p: Buffer, q: Buffer): number => Buffer.compare(p.map((c) => (c === 0x2f ? 0 : c)), q.map((c) => (c === 0x2f ? 0 : c)));

export async function cmdDiff(a: DiffArgs): Promise<number> {
  const repo = await openRepo(a);
  const snapA = await findTaggedSnapshot(repo, a.a, a);
  const snapB = await findTaggedSnapshot(repo, a.b, a);
  await repo.loadIndex();
  const loader = new TreeBatchLoader(repo);
  const changes: Change[] = [];
  const counts = { files: { added: 0, removed: 0, changed: 0 }, dirs: { added: 0, removed: 0, changed: 0 }, others: { added: 0, removed: 0, changed: 0 } };
  const blobsA = new Map<string, Buffer>();
  const blobsB = new Map<string, Buffer>();
  const addBlobs = (m: Map<string, Buffer>, n: TreeNode) => {
    for (const c of n.content ?? []) m.set(c.toString('latin1'), c);
  };
  let damage = 0;
  const note = (modifier: string, path: Buffer, n: TreeNode) => changes.push({ modifier, path, type: n.type });

  let queue: Pending[] = [{ path: Buffer.from('/'), a: Buffer.from(snapA.info.tree, 'hex'), b: Buffer.from(snapB.info.tree, 'hex') }];
  if (snapA.info.tree === snapB.info.tree) queue = [];
  while (queue.length) {
    const batch = queue.slice(0, BATCH);
    queue = queue.slice(BATCH);
    const ids: Buffer[] = [];
    for (const p of batch) for (const id of [p.a, p.b]) if (id) ids.push(id);
    const loaded = await repo.loadTrees(ids, loader);
    let k = 0;
    const next: Pending[] = [];
    for (const p of batch) {
      const trees: Tree[] = [];
      for (const id of [p.a, p.b]) {
        if (!id) {
          trees.push(EMPTY);
          continue;
        }
        const t = loaded[k++]!;
        if (t instanceof Error) {
          damage++;
          warn(`${escapeName(p.path)}: ${t.message}`);
          trees.push(EMPTY);
        } else {
          for (const x of t.rejected ?? []) {
            damage++;
            warn(`${escapeName(p.path)}: entry ${escapeName(x.name)} refused (${x.reason}); run 'tsbak check'`);
          }
          trees.push(t);
        }
      }
      const [ta, tb] = trees as [Tree, Tree];
      const byName = new Map<string, [TreeNode | undefined, TreeNode | undefined]>();
      for (const n of ta.nodes) byName.set(n.name.toString('latin1'), [n, undefined]);
      for (const n of tb.nodes) {
        const key = n.name.toString('latin1');
        const e = byName.get(key);
        if (e) e[1] = n;
        else byName.set(key, [undefined, n]);
      }
      for (const [na, nb] of byName.values()) {
        const name = (na ?? nb)!.name;
        const path = Buffer.concat([p.path, p.path.length > 1 ? Buffer.from('/') : Buffer.alloc(0), name]);
        const gone = (n: TreeNode) => {
          note('-', path, n);
          counts[kindOf(n)].removed++;
          addBlobs(blobsA, n);
          if (n.type === 'dir' && n.subtree) next.push({ path, a: n.subtree });
        };
        const come = (n: TreeNode) => {
          note('+', path, n);
          counts[kindOf(n)].added++;
          addBlobs(blobsB, n);
          if (n.type === 'dir' && n.subtree) next.push({ path, b: n.subtree });
        };
        if (!nb) gone(na!);
        else if (!na) come(nb);
        else if (na.type !== nb.type) {
          note('T', path, nb);
          counts[kindOf(nb)].changed++;
          addBlobs(blobsA, na);
          addBlobs(blobsB, nb);
          if (na.type === 'dir' && na.subtree) next.push({ path, a: na.subtree });
          if (nb.type === 'dir' && nb.subtree) next.push({ path, b: nb.subtree });
        } else if (na.type === 'dir') {
          if (!sameMeta(na, nb)) {
            note('U', path, nb);
            counts.dirs.changed++;
          }
          const same = na.subtree && nb.subtree && na.subtree.equals(nb.subtree);
          if (!same) next.push({ path, a: na.subtree, b: nb.subtree });
        } else if (na.type === 'file' && !sameContent(na, nb)) {
          note('M', path, nb);
          counts.files.changed++;
          addBlobs(blobsA, na);
          addBlobs(blobsB, nb);
        } else if (!sameMeta(na, nb)) {
          note('U', path, nb);
          counts[kindOf(nb)].changed++;
        }
      }
    }
    queue = next.concat(queue);
  }
  changes.sort((x, y) => pathOrder(x.path, y.path));
  // Bytes: the data blobs the differing entries of one side reference and those of the other do not.
  const size = (m: Map<string, Buffer>, not: Map<string, Buffer>) => {
    let blobs = 0;
    let bytes = 0;
    for (const [k, id] of m) {
      if (not.has(k)) continue;
      blobs++;
      bytes += repo.locate(id)?.rawLength ?? 0;
    }
    return { blobs, bytes };
  };
  const added = size(blobsB, blobsA);
  const removed = size(blobsA, blobsB);
  if (a.json) {
    out(
      JSON.stringify({
        snapshot_a: snapA.id,
        snapshot_b: snapB.id,
        changes: changes.map((c) => ({ modifier: c.modifier, ...jsonName('path', c.path), type: c.type })),
        stats: { ...counts, data_blobs: { added: added.blobs, removed: removed.blobs }, bytes_added: added.bytes, bytes_removed: removed.bytes },
      }),
    );
  } else {
    process.stderr.write(`comparing snapshot ${snapA.id.slice(0, 8)} to ${snapB.id.slice(0, 8)}:\n`);
    for (const c of changes) out(`${c.modifier.padEnd(5)}${escapeName(c.path)}${c.type === 'dir' ? '/' : ''}`);
    out('');
    const row = (label: string, c: { added: number; removed: number; changed: number }, changed = true) => out(`${label.padEnd(12)}${String(c.added).padStart(6)} new, ${String(c.removed).padStart(6)} removed${changed ? `, ${String(c.changed).padStart(6)} changed` : ''}`);
    row('Files:', counts.files);
    row('Dirs:', counts.dirs);
    row('Others:', counts.others);
    out(`${'Data blobs:'.padEnd(12)}${String(added.blobs).padStart(6)} new, ${String(removed.blobs).padStart(6)} removed`);
    out(`  Added:   ${fmtBytes(added.bytes)}`);
    out(`  Removed: ${fmtBytes(removed.bytes)}`);
  }
  return damage ? EXIT.CORRUPT : EXIT.OK;
}

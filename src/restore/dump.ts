// `tsbak dump`: one entry of a snapshot to a stream. A file as its bytes; a directory as an
// archive (tar or zip) of everything below it, depth first in name order, each entry named
// by its path in the snapshot without the leading '/' (as restic's dump). Trees load ahead
// of the walk (repo/tree-prefetch.ts); file bytes stream through dump-content.ts.
import type { TreeNode } from '../format/tree.js';
import type { Repository, Snapshot } from '../repo/repository.js';
import { TreePrefetch } from '../repo/tree-prefetch.js';
import { TreeBatchLoader } from '../repo/tree-batch.js';
import { loadBlobGroup } from '../repo/blob-group.js';
import { TsbakError } from '../errors.js';
import type { ArchiveWriter, EntryKind } from './archive.js';
import { fileBytes } from './dump-content.js';

export { fileBytes };

/** The entry at `p` (absolute, in the snapshot): null for '/' (the root has no node), with the tree id of a directory. */
export async function findEntry(repo: Repository, snap: Snapshot, p: string): Promise<{ node: TreeNode | null; tree: Buffer | null }> {
  let tree: Buffer | null = Buffer.from(snap.info.tree, 'hex');
  let node: TreeNode | null = null;
  const comps = p.split('/').filter(Boolean);
  for (const c of comps) {
    if (!tree) throw new TsbakError('NOT_FOUND', `${p} is not in snapshot ${snap.id.slice(0, 8)}; list it with 'tsbak ls'`);
    const name = Buffer.from(c);
    node = (await repo.loadTree(tree)).nodes.find((n) => n.name.equals(name)) ?? null;
    if (!node) throw new TsbakError('NOT_FOUND', `${p} is not in snapshot ${snap.id.slice(0, 8)}; list it with 'tsbak ls'`);
    tree = node.type === 'dir' ? node.subtree ?? null : null;
  }
  return { node, tree };
}

/** Files this small have their chunks read with their neighbours', GROUP_BYTES at a time. */
const SMALL_FILE = 512 << 10;
const GROUP_BYTES = 4 << 20;

const KIND: Record<TreeNode['type'], EntryKind | null> = { file: 'file', dir: 'dir', symlink: 'symlink', fifo: 'fifo', chardev: 'chardev', blockdev: 'blockdev', socket: null };

export interface DumpTreeResult {
  entries: number;
  skipped: number;
  /** Entries a tree holds that no reader may trust (format/tree.ts), left out. */
  refused: number;
}

/**
 * Writes the directory `node` at `dirPath` (absolute, '/' for the root, whose node is null)
 * and everything below it. Hardlinked files after the first name are hardlinks to it where
 * the format has them, else whole files again. Sockets (and, in zip, devices and fifos) are
 * skipped, told to onWarning.
 */
export async function dumpTree(repo: Repository, tree: Buffer | null, dirPath: string, node: TreeNode | null, w: ArchiveWriter, onWarning: (path: string, message: string) => void): Promise<DumpTreeResult> {
  const r: DumpTreeResult = { entries: 0, skipped: 0, refused: 0 };
  // Through the batch loader: a tree's read reaches back over its subdirectories' trees
  // (written before it) and keeps those bytes, so most trees cost no request of their own.
  const loader = new TreeBatchLoader(repo);
  const trees = new TreePrefetch(async (id) => {
    const [t] = await repo.loadTrees([id], loader);
    if (t instanceof Error) throw t;
    return t!;
  });
  const links = new Map<string, Buffer>();
  const rel = (abs: Buffer) => abs.subarray(1);
  // Small files of a directory lie side by side in a pack: their chunks are read together,
  // one ranged read for up to GROUP_BYTES of them (repo/blob-group.ts), not one each.
  let group = new Map<string, Buffer>();
  const small = (n: TreeNode) => n.type === 'file' && n.size <= SMALL_FILE && (n.content?.length ?? 0) > 0;
  const preload = async (nodes: TreeNode[], from: number) => {
    const ids: Buffer[] = [];
    let bytes = 0;
    for (let i = from; i < nodes.length && bytes < GROUP_BYTES; i++) {
      const n = nodes[i]!;
      if (!small(n)) continue;
      for (const c of n.content!) ids.push(c);
      bytes += n.size;
    }
    group = await loadBlobGroup(repo, ids).catch(() => new Map<string, Buffer>());
  };
  const put = async (abs: Buffer, n: TreeNode) => {
    let kind = KIND[n.type];
    let link: Buffer | undefined = n.type === 'symlink' ? n.target ?? Buffer.alloc(0) : undefined;
    if (n.type === 'file' && n.hardlink !== undefined && w.holds('hardlink')) {
      const first = links.get(n.hardlink);
      if (first) {
        kind = 'hardlink';
        link = first;
      } else links.set(n.hardlink, rel(abs));
    }
    if (kind === null || !w.holds(kind)) {
      r.skipped++;
      onWarning(abs.toString(), `a ${n.type}: not in ${kind === null ? 'any archive' : 'this archive format'}, skipped`);
      return;
    }
    r.entries++;
    const e = { path: rel(abs), kind, mode: n.mode, uid: n.uid, gid: n.gid, user: n.user, group: n.group, mtimeNs: n.mtimeNs, size: n.size, link, devMajor: n.rdevMajor, devMinor: n.rdevMinor };
    await w.add(e, kind === 'file' ? fileBytes(repo, abs.toString(), n, group) : undefined);
  };
  const walk = async (id: Buffer, dir: Buffer): Promise<void> => {
    const t = await trees.get(id);
    for (const x of t.rejected ?? []) {
      r.refused++;
      onWarning(dir.toString(), `entry ${JSON.stringify(x.name.toString())} refused (${x.reason}); run 'tsbak check'`);
    }
    for (let i = 0; i < t.nodes.length; i++) {
      const n = t.nodes[i]!;
      if (small(n) && !n.content!.every((c) => group.has(c.toString('hex')))) await preload(t.nodes, i);
      const p = Buffer.concat([dir, dir.length > 1 ? Buffer.from('/') : Buffer.alloc(0), n.name]);
      await put(p, n);
      if (n.type === 'dir' && n.subtree) await walk(n.subtree, p);
    }
  };
  const base = Buffer.from('/' + dirPath.split('/').filter(Boolean).join('/'));
  if (node) await put(base, node);
  if (tree) await walk(tree, base);
  await w.finish();
  return r;
}

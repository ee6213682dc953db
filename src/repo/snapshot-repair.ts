// `tsbak repair snapshots`: each snapshot that names data the repository no longer has (a
// blob no index lists, or listed only in packs that are gone; with readData also a blob no
// copy of which opens) is written again without it, signed by the master:
//   - a file with any chunk lost is dropped (a file with a hole where a chunk was would
//     restore as "identical" bytes that are not; its other chunks stay in the repository);
//   - a directory whose tree cannot be loaded becomes an empty directory with its metadata;
//   - entries a tree holds that no reader may trust (format/tree.ts Tree.rejected) are left out;
//   - every other tree keeps its id (an unchanged subtree is shared, not copied).
// The new snapshot keeps the original's time, host, user, paths, tags, parent and stats,
// adds the tag "repaired" and `original` (the original's id). The original is removed only
// with forget, and only after the new one is stored.
import type { SnapshotInfo } from '../format/snapshot.js';
import type { Tree, TreeNode } from '../format/tree.js';
import { encodeTree } from '../format/tree.js';
import { TsbakError } from '../errors.js';
import { SNAPSHOTS, packName } from './layout.js';
import { listStoredPacks } from './pack-headers.js';
import type { Repository, Snapshot } from './repository.js';

export const REPAIRED_TAG = 'repaired';

export interface SnapshotRepairOptions {
  forget?: boolean;
  dryRun?: boolean;
  /** Read every blob the snapshots name (every copy until one opens): damaged data, not only missing data. */
  readData?: boolean;
  onProgress?: (message: string) => void;
  /** Throws when the exclusive lock was lost: called before each snapshot written or removed. */
  assertLocked?: () => void;
}

/** A path of a snapshot that was changed, and why. */
export interface AffectedPath {
  path: string;
  what: string;
}

export interface SnapshotRepairReport {
  snapshots: number;
  repaired: Array<{ id: string; newId: string | null; affected: AffectedPath[]; forgotten: boolean; existing: boolean }>;
  /** Snapshot objects that cannot be read at all: left as they are. */
  unreadable: Array<{ id: string; reason: string }>;
  dryRun: boolean;
}

interface Rewritten {
  id: Buffer;
  changed: boolean;
  /** Paths relative to the tree ('' is the tree itself). */
  affected: AffectedPath[];
}

/** Trees asked for at once (a directory's subdirectories). */
const TREES_AT_ONCE = 256;

export async function repairSnapshots(repo: Repository, opts: SnapshotRepairOptions = {}): Promise<SnapshotRepairReport> {
  if (!repo.canRead || repo.secrets.keyId !== 'master') throw new TsbakError('WRITE_ONLY_KEY', 'repair snapshots needs the full key (the repository passphrase): the repaired snapshots are signed by the master');
  const say = opts.onProgress ?? (() => {});
  await repo.loadIndex();
  const stored = new Set((await listStoredPacks(repo.backend)).map((p) => p.name));
  // A rewritten tree equal to one listed in a lost pack would be taken as stored (dedup):
  // the index must first stop listing lost packs.
  const lost = repo.index.packs.find((p) => !stored.has(packName(p.kind, p.id.toString('hex'))));
  if (lost && !opts.dryRun) throw new TsbakError('USAGE', `the index lists pack ${packName(lost.kind, lost.id.toString('hex'))}, which is missing: run 'tsbak repair index' first, then repair snapshots`);
  const report: SnapshotRepairReport = { snapshots: 0, repaired: [], unreadable: [], dryRun: !!opts.dryRun };
  const all = await repo.listSnapshots((id, e) => report.unreadable.push({ id, reason: (e as Error).message }));
  report.snapshots = all.length;

  const blobOk = new Map<string, boolean>();
  const available = async (id: Buffer): Promise<boolean> => {
    const hex = id.toString('hex');
    let ok = blobOk.get(hex);
    if (ok !== undefined) return ok;
    ok = repo.locations(id).some((l) => stored.has(packName(l.pack.kind, l.pack.id.toString('hex'))));
    if (ok && opts.readData) {
      try {
        await repo.loadBlob(id, undefined, { cache: false });
      } catch (e) {
        if (!(e instanceof TsbakError) || e.code !== 'CORRUPT') throw e;
        ok = false;
      }
    }
    blobOk.set(hex, ok);
    return ok;
  };

  const memo = new Map<string, Rewritten>();
  let emptyTree: Buffer | null = null;
  const saveTree = async (tree: Tree): Promise<Buffer> => (opts.dryRun ? repo.blobId(encodeTree(tree)) : (await repo.saveTree(tree)).id);

  const rewrite = async (id: Buffer, loaded: Tree | Error): Promise<Rewritten> => {
    const hex = id.toString('hex');
    const known = memo.get(hex);
    if (known) return known;
    let r: Rewritten;
    if (loaded instanceof Error) {
      if (!(loaded instanceof TsbakError) || loaded.code !== 'CORRUPT') throw loaded;
      emptyTree ??= await saveTree({ nodes: [] });
      r = { id: emptyTree, changed: true, affected: [{ path: '', what: `directory unreadable (tree ${hex.slice(0, 16)}: ${loaded.message.replace(/; run 'tsbak check.*$/, '')}); restored as an empty directory` }] };
    } else r = await rewriteLoaded(id, loaded);
    memo.set(hex, r);
    return r;
  };

  const rewriteLoaded = async (id: Buffer, tree: Tree): Promise<Rewritten> => {
    // Subdirectories not seen yet are loaded together (by pack).
    const subs = tree.nodes.filter((n) => n.type === 'dir' && n.subtree && !memo.has(n.subtree.toString('hex'))).map((n) => n.subtree!);
    const loaded = new Map<string, Tree | Error>();
    for (let i = 0; i < subs.length; i += TREES_AT_ONCE) {
      const part = subs.slice(i, i + TREES_AT_ONCE);
      const trees = await repo.loadTrees(part);
      part.forEach((s, k) => loaded.set(s.toString('hex'), trees[k]!));
    }
    const nodes: TreeNode[] = [];
    const affected: AffectedPath[] = [];
    let changed = false;
    for (const n of tree.nodes) {
      const name = n.name.toString();
      if (n.content?.length) {
        let lost = 0;
        for (const c of n.content) if (!(await available(c))) lost++;
        if (lost) {
          changed = true;
          affected.push({ path: name, what: `file dropped: ${lost} of its ${n.content.length} chunks ${opts.readData ? 'missing or damaged' : 'missing'}` });
          continue;
        }
      }
      if (n.type === 'dir' && n.subtree) {
        const hex = n.subtree.toString('hex');
        const sub = await rewrite(n.subtree, memo.has(hex) ? new Error('unused') : loaded.get(hex)!);
        if (sub.changed) {
          changed = true;
          for (const x of sub.affected) affected.push({ path: x.path ? `${name}/${x.path}` : name, what: x.what });
          nodes.push({ ...n, subtree: sub.id });
          continue;
        }
      }
      nodes.push(n);
    }
    // Entries the decoder refused (restore, ls and the mount skip them; check reports them) are left out too.
    if (!changed && !tree.rejected?.length) return { id, changed: false, affected };
    for (const x of tree.rejected ?? []) affected.push({ path: JSON.stringify(x.name.toString()).slice(1, -1), what: `entry dropped: ${x.reason}` });
    return { id: await saveTree({ nodes }), changed: true, affected };
  };

  for (const snap of all) {
    say(`checking snapshot ${snap.id.slice(0, 8)}`);
    const rootId = Buffer.from(snap.info.tree, 'hex');
    const [root] = await repo.loadTrees([rootId]);
    const r = memo.get(snap.info.tree) ?? (await rewrite(rootId, root!));
    if (!r.changed) continue;
    const entry = { id: snap.id, newId: null as string | null, affected: r.affected.map((x) => ({ path: `/${x.path}`, what: x.what })), forgotten: false, existing: false };
    report.repaired.push(entry);
    if (opts.dryRun) continue;
    // A repaired snapshot made by an interrupted run before is not made twice.
    const done = all.find((s) => s.info.original === snap.id && s.info.tree === r.id.toString('hex') && s.signer.id === 'master');
    if (done) {
      entry.newId = done.id;
      entry.existing = true;
    } else {
      await repo.flush();
      opts.assertLocked?.();
      entry.newId = await repo.saveSnapshot(repairedInfo(snap, r.id));
    }
    if (opts.forget) {
      opts.assertLocked?.();
      await repo.backend.delete(`${SNAPSHOTS}${snap.id}`);
      entry.forgotten = true;
    }
  }
  if (!opts.dryRun) await repo.flush();
  return report;
}

function repairedInfo(snap: Snapshot, tree: Buffer): SnapshotInfo {
  const i = snap.info;
  const tags = i.tags.includes(REPAIRED_TAG) ? i.tags : [...i.tags, REPAIRED_TAG];
  return { ...i, tags, tree: tree.toString('hex'), original: snap.id };
}

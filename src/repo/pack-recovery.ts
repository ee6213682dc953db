// `tsbak recover`: an index built in memory from the pack headers alone (no index file is
// read), and the roots to restore: the snapshots that can still be read, and the trees no
// other tree names (the root trees of snapshots whose objects are gone, and what lies
// below a directory whose own tree is lost).
import type { FullSecrets } from '../format/keyfile.js';
import { TsbakError } from '../errors.js';
import { listStoredPacks, readPackHeaders, type StoredPack } from './pack-headers.js';
import type { Repository, Snapshot } from './repository.js';
import { TreeBatchLoader } from './tree-batch.js';

/** How listings from pack headers are named in messages (where an index file's name would be). */
export const FROM_PACK_HEADERS = 'pack headers';

export interface PackRecovery {
  packs: number;
  headersRead: number;
  blobs: number;
  damaged: Array<{ pack: string; reason: string }>;
  cold: StoredPack[];
}

/** Reads every pack's header and lists what they hold in the repository's in-memory index. */
export async function indexFromPackHeaders(repo: Repository, opts: { onProgress?: (message: string) => void; signal?: AbortSignal } = {}): Promise<PackRecovery> {
  if (!repo.canRead) throw new TsbakError('WRITE_ONLY_KEY', 'recover needs the full key (the repository passphrase): pack keys open only with it');
  const s = repo.secrets as FullSecrets;
  const say = opts.onProgress ?? (() => {});
  say('listing packs');
  const stored = await listStoredPacks(repo.backend, opts.signal);
  const outcomes = await readPackHeaders(repo.backend, stored, { publicKey: s.repoPub, privateKey: s.repoPriv }, {
    concurrency: repo.readConcurrency,
    signal: opts.signal,
    onProgress: (done, total) => say(`reading pack headers: ${done}/${total}`),
  });
  const r: PackRecovery = { packs: stored.length, headersRead: 0, blobs: 0, damaged: [], cold: [] };
  const listings = [];
  for (const o of outcomes) {
    if (o.state === 'ok') {
      listings.push(o.listing);
      r.headersRead++;
      r.blobs += o.listing.blobs.length;
    } else if (o.state === 'damaged') r.damaged.push({ pack: o.pack.name, reason: o.reason });
    else if (o.state === 'cold') r.cold.push(o.pack);
  }
  repo.addListings(listings, FROM_PACK_HEADERS);
  return r;
}

export interface Roots {
  /** Snapshots whose objects could be read. */
  snapshots: Snapshot[];
  unreadableSnapshots: Array<{ id: string; reason: string }>;
  /** Trees no other tree names and no readable snapshot has as its root (hex ids, sorted). */
  orphanTrees: string[];
  /** Tree blobs listed, and those that could not be loaded. */
  trees: number;
  badTrees: Array<{ id: string; reason: string }>;
}

/** Trees asked for at once. */
const TREES_AT_ONCE = 256;

/** Every tree the index lists is opened once, to learn which trees other trees name. */
export async function findRoots(repo: Repository, opts: { onProgress?: (message: string) => void } = {}): Promise<Roots> {
  const say = opts.onProgress ?? (() => {});
  const unreadableSnapshots: Roots['unreadableSnapshots'] = [];
  const snapshots = await repo.listSnapshots((id, e) => unreadableSnapshots.push({ id, reason: (e as Error).message }));
  const treeIds = new Map<string, Buffer>();
  for (const e of repo.index.entries()) if (e.pack.kind === 'tree') treeIds.set(e.id.toString('hex'), e.id);
  const ids = [...treeIds.values()];
  const named = new Set<string>();
  const badTrees: Roots['badTrees'] = [];
  const loader = new TreeBatchLoader(repo);
  for (let i = 0; i < ids.length; i += TREES_AT_ONCE) {
    say(`opening trees: ${i}/${ids.length}`);
    const part = ids.slice(i, i + TREES_AT_ONCE);
    const trees = await repo.loadTrees(part, loader);
    trees.forEach((t, k) => {
      if (t instanceof Error) {
        if (t instanceof TsbakError && t.code !== 'CORRUPT') throw t;
        badTrees.push({ id: part[k]!.toString('hex'), reason: t.message });
        return;
      }
      for (const n of t.nodes) if (n.subtree) named.add(n.subtree.toString('latin1'));
    });
  }
  const snapshotRoots = new Set(snapshots.map((s) => s.info.tree));
  const bad = new Set(badTrees.map((b) => b.id));
  const orphanTrees = [...treeIds.keys()].filter((h) => !named.has(Buffer.from(h, 'hex').toString('latin1')) && !snapshotRoots.has(h) && !bad.has(h)).sort();
  return { snapshots, unreadableSnapshots, orphanTrees, trees: ids.length, badTrees };
}

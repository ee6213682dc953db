// Prune, the repository's side: what every pack holds that snapshots still use (usage),
// and carrying out a plan (apply): repack, write the compact index, delete. What to delete
// or repack is decided above, where prices are known (glacier/prune-plan.ts); the order of
// the writes and deletions, which keeps the repository valid if prune is killed at any
// point, is decided here (docs/FORMAT.md, "Prune").
import type { ObjectInfo, StorageClass, Unfinished } from '../backend/backend.js';
import { sha256 } from '../crypto/hash.js';
import { openBlob } from '../format/blob.js';
import { openIndex, type IndexPack } from '../format/index-file.js';
import type { FullSecrets } from '../format/keyfile.js';
import { CorruptError, TsbakError } from '../errors.js';
import type { BlobLocation, PackRef } from './blob-index.js';
import { INDEX, packName, packPrefix, parsePackName } from './layout.js';
import { mapLimit } from './map-limit.js';
import type { Repository } from './repository.js';
import { TreeBatchLoader } from './tree-batch.js';

/** Trees asked for at once while walking (a batch is read by pack). */
const TREES_AT_ONCE = 256;
/** Blobs per compact index file. */
const BLOBS_PER_INDEX_FILE = 65536;

/** A pack as prune sees it: where it is, what it costs, how much of it is still used. */
export interface PackUsage {
  name: string;
  kind: 'data' | 'tree';
  /** Bytes stored (the listing's size). */
  size: number;
  storageClass: StorageClass;
  /** When it was written (backend listing); null when the backend does not say. */
  lastModified: Date | null;
  /** Listed by some index file prune loaded. */
  indexed: boolean;
  /** Blobs listed for it, and those that snapshots use and are read from here. */
  blobs: number;
  usedBlobs: number;
  /** Sealed bytes of all blobs listed for it. */
  blobBytes: number;
  /** Sealed bytes of the used blobs read from here. */
  usedBytes: number;
  /**
   * Listed by an index file prune keeps as it is (another key's, unsigned or unverifiable,
   * which the master does not re-sign): kept whole, never repacked nor deleted.
   */
  keptWhole: boolean;
  /** For a cold pack: a restored copy is readable now (S3's restore status). */
  restored: boolean;
  /** S3 Object Lock holds it (or an index file listing it) until then: kept whole (object-lock.ts holdLocked). */
  lockedUntil?: Date;
}

export interface IndexFileUsage {
  name: string;
  signer: string | null;
  verified: boolean;
  /** The master's own (verified): replaced by the compact index. */
  replaced: boolean;
  /** Another key's (or unsigned, or unverifiable) that lists a pack holding a used blob: kept as it is. Neither: deleted. */
  kept: boolean;
}

export interface PruneUsage {
  snapshots: number;
  trees: number;
  usedBlobs: number;
  packs: PackUsage[];
  indexFiles: IndexFileUsage[];
  unfinished: Unfinished[];
  /** The storage's clock (Backend.now), which ages packs. */
  now: Date;
  /** Per used blob: the copy kept (latin1 key of the id). */
  chosen: Map<string, BlobLocation>;
}

/** What to do with each pack (decided by glacier/prune-plan.ts). */
export interface PruneActions {
  /** Packs to delete: used by nothing (unindexed ones included). */
  delete: string[];
  /** Packs whose used blobs go to new packs, then deleted. */
  repack: string[];
  /** Temp files and incomplete uploads to remove. */
  unfinished: Unfinished[];
}

export interface PruneResult {
  packsDeleted: number;
  bytesDeleted: number;
  packsRepacked: number;
  blobsRepacked: number;
  packsWritten: number;
  bytesWritten: number;
  indexFilesWritten: number;
  indexFilesDeleted: number;
  unfinishedRemoved: number;
}

/**
 * A step of prune, for tests of interruption: TSBAK_PRUNE_EXIT_AT=<step> makes the process
 * exit (code 99) right after that step, as a kill would.
 */
export type PruneStep = 'repacked' | 'index-written' | 'old-index-deleted' | 'pack-deleted' | 'packs-deleted';

function stepDone(step: PruneStep, onStep?: (s: PruneStep) => void): void {
  onStep?.(step);
}

/**
 * Loads everything prune must know, refusing to go on with less: every index file readable,
 * every snapshot (or those of `keep`) loaded, every tree walked, every used blob in a
 * stored pack. `keep`: only these snapshots count as used (the what-if of a forget policy).
 */
export async function pruneUsage(repo: Repository, opts: { keep?: Set<string>; onProgress?: (msg: string) => void } = {}): Promise<PruneUsage> {
  const say = opts.onProgress ?? (() => {});
  say('loading index');
  await repo.loadIndex();
  const damaged = repo.indexProblems.filter((p) => !p.reason.startsWith('its signature'));
  if (damaged.length) throw new TsbakError('CORRUPT', `prune stops: index file ${damaged[0]!.name} is damaged (${damaged[0]!.reason}), so which packs are in use cannot be known; run 'tsbak check' and repair the index first`);

  say('walking snapshots');
  const used = new Set<string>();
  const ids = (await repo.listSnapshotIds()).filter((id) => !opts.keep || opts.keep.has(id));
  const seenTrees = new Set<string>();
  const loader = new TreeBatchLoader(repo);
  let trees = 0;
  for (const id of ids) {
    let root: string;
    try {
      root = (await repo.loadSnapshot(id)).info.tree;
    } catch (e) {
      throw new TsbakError('CORRUPT', `prune stops: snapshot ${id.slice(0, 8)} cannot be read (${(e as Error).message}), so what it uses cannot be known; forget it or repair it first`);
    }
    if (!/^[0-9a-f]{64}$/.test(root)) throw new TsbakError('CORRUPT', `prune stops: snapshot ${id.slice(0, 8)} names no valid root tree`);
    const stack = [root];
    while (stack.length) {
      const batch: string[] = [];
      while (stack.length && batch.length < TREES_AT_ONCE) {
        const t = stack.pop()!;
        if (seenTrees.has(t)) continue;
        seenTrees.add(t);
        batch.push(t);
      }
      if (!batch.length) continue;
      const bufs = batch.map((t) => Buffer.from(t, 'hex'));
      const loaded = await repo.loadTrees(bufs, loader);
      loaded.forEach((tree, i) => {
        const t = batch[i]!;
        if (tree instanceof Error) throw new TsbakError('CORRUPT', `prune stops: tree ${t.slice(0, 16)} of snapshot ${id.slice(0, 8)} cannot be loaded (${tree.message}); nothing was deleted. Run 'tsbak check'`);
        if (tree.rejected?.length) throw new TsbakError('CORRUPT', `prune stops: tree ${t.slice(0, 16)} of snapshot ${id.slice(0, 8)} has entries the decoder refused, whose data cannot be known; run 'tsbak check'`);
        trees++;
        used.add(bufs[i]!.toString('latin1'));
        for (const n of tree.nodes) {
          if (n.subtree) stack.push(n.subtree.toString('hex'));
          for (const c of n.content ?? []) used.add(c.toString('latin1'));
        }
      });
    }
  }

  say('listing packs');
  const stored = new Map<string, ObjectInfo>();
  for (const kind of ['data', 'tree'] as const) for await (const o of repo.backend.list(packPrefix(kind))) if (parsePackName(o.name)) stored.set(o.name, o);

  // Each used blob is read, after prune, from one copy: a listing the master made if there
  // is one, in a pack holding many used blobs (so duplicates left by a concurrent or
  // interrupted run fall in the other packs, as unused bytes).
  const nameOf = (p: PackRef) => packName(p.kind, p.id.toString('hex'));
  const storedCopy = (l: BlobLocation) => {
    const o = stored.get(nameOf(l.pack));
    return !!o && o.size >= l.offset + l.length;
  };
  const holds = new Map<string, number>();
  for (const k of used) for (const l of repo.index.all(Buffer.from(k, 'latin1'))) if (storedCopy(l)) holds.set(nameOf(l.pack), (holds.get(nameOf(l.pack)) ?? 0) + 1);
  const rank = (p: PackRef) => (p.signer === 'master' && p.verified ? 0 : p.verified ? 1 : p.signer === null ? 2 : 3);
  const chosen = new Map<string, BlobLocation>();
  for (const k of used) {
    const copies = repo.index.all(Buffer.from(k, 'latin1')).filter(storedCopy);
    if (!copies.length) {
      throw new TsbakError('CORRUPT', `prune stops: blob ${Buffer.from(k, 'latin1').toString('hex').slice(0, 16)}, used by a snapshot, is in no stored pack; nothing was deleted. Run 'tsbak check'`);
    }
    copies.sort((a, b) => rank(a.pack) - rank(b.pack) || holds.get(nameOf(b.pack))! - holds.get(nameOf(a.pack))! || (nameOf(a.pack) < nameOf(b.pack) ? -1 : 1));
    chosen.set(k, copies[0]!);
  }

  // Index files the master did not sign (or whose signature did not verify) are not
  // rewritten: re-signing another key's entries would make dedup trust them. Such a file is
  // kept whole while a pack it lists holds a chosen copy, and its packs with it.
  const files = new Map<string, IndexFileUsage>();
  for (const p of repo.index.packs) {
    if (!files.has(p.indexFile)) files.set(p.indexFile, { name: p.indexFile, signer: p.signer, verified: p.verified, replaced: p.signer === 'master' && p.verified, kept: false });
  }
  const foreignUsed = new Set<string>();
  for (const l of chosen.values()) if (!files.get(l.pack.indexFile)!.replaced) foreignUsed.add(l.pack.indexFile);
  for (const n of foreignUsed) files.get(n)!.kept = true;
  const keptWhole = new Set<string>();
  for (const p of repo.index.packs) if (foreignUsed.has(p.indexFile)) keptWhole.add(nameOf(p));

  const usage = new Map<string, PackUsage>();
  const cls = repo.config.storageClass;
  for (const [name, o] of stored) {
    const kind = parsePackName(name)!.kind;
    usage.set(name, {
      name,
      kind,
      size: o.size,
      storageClass: o.storageClass ?? cls[kind],
      lastModified: o.lastModified ?? null,
      indexed: repo.index.hasPack(parsePackName(name)!.id),
      blobs: 0,
      usedBlobs: 0,
      blobBytes: 0,
      usedBytes: 0,
      keptWhole: keptWhole.has(name),
      restored: !!o.restore && !o.restore.ongoing,
    });
  }
  const seenRows = new Set<string>();
  for (const e of repo.index.entries()) {
    const u = usage.get(nameOf(e.pack));
    const row = `${nameOf(e.pack)}:${e.offset}`;
    if (u && !seenRows.has(row)) {
      seenRows.add(row);
      u.blobs++;
      u.blobBytes += e.length;
    }
  }
  for (const l of chosen.values()) {
    const u = usage.get(nameOf(l.pack))!;
    u.usedBlobs++;
    u.usedBytes += l.length;
  }

  say('looking for unfinished writes');
  const unfinished: Unfinished[] = [];
  if (repo.backend.listUnfinished) for await (const u of repo.backend.listUnfinished()) unfinished.push(u);
  const now = repo.backend.now ? await repo.backend.now() : new Date();
  return { snapshots: ids.length, trees, usedBlobs: used.size, packs: [...usage.values()], indexFiles: [...files.values()], unfinished, now, chosen };
}

/**
 * Carries out `actions`, in the order that keeps the repository valid whenever it stops:
 * 1. the used blobs of packs to repack are read (each checked against its id) and written
 *    to new packs, with an index file for them;
 * 2. the compact index is written, read back and compared: for every pack that stays,
 *    the master's entries of it (unused blobs too), and the new packs;
 * 3. only then the index files it replaces are deleted;
 * 4. then the packs (unused, repacked; unindexed ones: no index names them);
 * 5. then temp files and incomplete uploads.
 * Until 3, every old index file is still there (with the new ones: duplicates, which
 * readers take); after it, every used blob is listed by a file that stays.
 */
export async function applyPrune(repo: Repository, usage: PruneUsage, actions: PruneActions, opts: { onProgress?: (msg: string) => void; onStep?: (s: PruneStep) => void; beforeDelete?: () => void } = {}): Promise<PruneResult> {
  const say = opts.onProgress ?? (() => {});
  const s = repo.secrets as FullSecrets;
  if (s.keyId !== 'master' || !repo.canRead) throw new TsbakError('WRITE_ONLY_KEY', 'prune needs the full key (the repository passphrase)');
  const byName = new Map(usage.packs.map((p) => [p.name, p]));
  const repack = new Set(actions.repack);
  const del = new Set(actions.delete);
  for (const n of [...repack, ...del]) {
    const p = byName.get(n);
    if (!p) throw new TsbakError('USAGE', `prune: ${n} is not a pack of this repository`);
    if (p.keptWhole) throw new TsbakError('USAGE', `prune: ${n} is listed by an index file kept whole; it cannot be removed`);
    if (del.has(n) && p.usedBlobs > 0) throw new TsbakError('USAGE', `prune: ${n} holds used blobs; it can be repacked, not deleted`);
  }
  // A cold pack to repack must be restored first: ask, and stop before writing anything.
  const frozen = [...repack].filter((n) => ['GLACIER', 'DEEP_ARCHIVE'].includes(byName.get(n)!.storageClass) && !byName.get(n)!.restored);
  if (frozen.length) {
    for (const n of frozen) await repo.backend.restore?.(n, 7, 'Bulk');
    throw new TsbakError('COLD', `prune: ${frozen.length} cold pack(s) to repack are being restored (Bulk, kept 7 days); nothing was changed. Run prune again once they are (hours; 'tsbak prune --dry-run' shows which)`);
  }
  const result: PruneResult = { packsDeleted: 0, bytesDeleted: 0, packsRepacked: 0, blobsRepacked: 0, packsWritten: 0, bytesWritten: 0, indexFilesWritten: 0, indexFilesDeleted: 0, unfinishedRemoved: 0 };
  const nameOf = (p: PackRef) => packName(p.kind, p.id.toString('hex'));
  const before = new Set(repo.indexFiles);

  // 1. Repack.
  if (repack.size) {
    const blobsOf = new Map<string, Array<{ id: Buffer; loc: BlobLocation }>>();
    for (const [k, loc] of usage.chosen) {
      const n = nameOf(loc.pack);
      if (repack.has(n)) (blobsOf.get(n) ?? blobsOf.set(n, []).get(n)!).push({ id: Buffer.from(k, 'latin1'), loc });
    }
    for (const n of repack) {
      say(`repacking ${n}`);
      const blobs = (blobsOf.get(n) ?? []).sort((a, b) => a.loc.offset - b.loc.offset);
      const bytes = await repo.backend.get(n);
      if (!sha256(bytes).equals(Buffer.from(parsePackName(n)!.id, 'hex'))) throw new CorruptError(`pack ${n}`, 'content does not match its name');
      for (const { id, loc } of blobs) {
        let plain: Buffer;
        try {
          plain = openBlob(repo.packKey(loc.pack), id, bytes.subarray(loc.offset, loc.offset + loc.length), loc.rawLength);
          if (!repo.blobId(plain).equals(id)) throw new CorruptError(`blob ${id.toString('hex').slice(0, 16)}`, 'content does not match its id');
        } catch (e) {
          if (e instanceof TsbakError && e.code !== 'CORRUPT') throw e;
          // Another copy, if one is good (loadBlob tries each and checks the id).
          plain = await repo.loadBlob(id, undefined, { cache: false });
        }
        await repo.saveBlobCopy(loc.pack.kind, id, plain);
        result.blobsRepacked++;
      }
      result.packsRepacked++;
    }
    await repo.flush();
    result.packsWritten = repo.objectsWritten.filter((o) => o.kind === 'data' || o.kind === 'tree').length;
    result.bytesWritten = repo.packerStats.bytesWritten;
    stepDone('repacked', opts.onStep);
  }
  const repackIndex = repo.indexFiles.filter((f) => !before.has(f));

  // Nothing deleted or repacked and at most one index file of the master's: it is already
  // what the compact index would be.
  const compact = !del.size && !repack.size && usage.indexFiles.filter((f) => f.replaced).length <= 1 && usage.indexFiles.every((f) => f.replaced || f.kept);
  if (compact) {
    opts.beforeDelete?.();
    for (const u of actions.unfinished) {
      await repo.backend.removeUnfinished?.(u);
      result.unfinishedRemoved++;
    }
    return result;
  }

  // 2. The compact index: chosen copies in packs that stay, listed by the master's files.
  say('writing the new index');
  const keptFiles = new Set(usage.indexFiles.filter((f) => f.kept).map((f) => f.name));
  const packs = new Map<string, { pack: IndexPack; offsets: Set<number> }>();
  const add = (ref: PackRef, id: Buffer, offset: number, length: number, rawLength: number) => {
    const n = nameOf(ref);
    let p = packs.get(n);
    if (!p) packs.set(n, (p = { pack: { id: ref.id, kind: ref.kind, sealedKey: ref.sealedKey, blobs: [] }, offsets: new Set() }));
    // One listing per pack: the chosen copies' (added first), whose pack key reads use.
    if (p.offsets.has(offset) || !p.pack.sealedKey.equals(ref.sealedKey)) return;
    p.offsets.add(offset);
    p.pack.blobs.push({ id, offset, length, rawLength });
  };
  for (const [k, loc] of usage.chosen) {
    if (repack.has(nameOf(loc.pack)) || keptFiles.has(loc.pack.indexFile)) continue;
    add(loc.pack, Buffer.from(k, 'latin1'), loc.offset, loc.length, loc.rawLength);
  }
  // Every other entry the master listed for a pack that stays, unused blobs included: the
  // pack still holds them (a later backup may dedup against them), its unused bytes stay
  // countable, and a pack the plan keeps with no used blob (cold, inside its minimum) is
  // not taken for an orphan. The new packs come from the repack's index file(s).
  const fromRepack = new Set(repackIndex);
  for (const e of repo.index.entries()) {
    const n = nameOf(e.pack);
    if (fromRepack.has(e.pack.indexFile)) {
      add(e.pack, e.id, e.offset, e.length, e.rawLength);
      continue;
    }
    if (!byName.has(n) || del.has(n) || repack.has(n) || keptFiles.has(e.pack.indexFile) || !(e.pack.signer === 'master' && e.pack.verified)) continue;
    add(e.pack, e.id, e.offset, e.length, e.rawLength);
  }
  const all = [...packs.values()].map((p) => p.pack).sort((a, b) => a.id.compare(b.id));
  for (const p of all) p.blobs.sort((a, b) => a.offset - b.offset);
  const written: string[] = [];
  let group: IndexPack[] = [];
  let groupBlobs = 0;
  const writeGroup = async () => {
    if (!group.length) return;
    // Written as a backup writes its index files (signed by this key, the master's).
    const name = await repo.writeIndexFile(group);
    result.indexFilesWritten++;
    // Read back and compared before anything is deleted.
    const back = await repo.backend.get(name);
    if (!sha256(back).equals(Buffer.from(name.slice(INDEX.length), 'hex'))) throw new CorruptError(`index file ${name}`, 'read back different from what was written');
    const f = openIndex(s.indexKey, back);
    const want = group.reduce((n, p) => n + p.blobs.length, 0);
    if (f.signer !== 'master' || f.packs.length !== group.length || f.packs.reduce((n, p) => n + p.blobs.length, 0) !== want) throw new CorruptError(`index file ${name}`, 'read back with other entries than written');
    written.push(name);
    group = [];
    groupBlobs = 0;
  };
  for (const p of all) {
    if (groupBlobs && groupBlobs + p.blobs.length > BLOBS_PER_INDEX_FILE) await writeGroup();
    group.push(p);
    groupBlobs += p.blobs.length;
  }
  await writeGroup();
  stepDone('index-written', opts.onStep);

  // 3. Old index files: those the compact index replaces (not the ones just written), and the repack's.
  const keep = new Set([...written, ...keptFiles]);
  opts.beforeDelete?.();
  const oldFiles = [...usage.indexFiles.map((f) => f.name), ...repackIndex].filter((n) => !keep.has(n));
  for (const n of oldFiles) {
    await repo.backend.delete(n);
    result.indexFilesDeleted++;
    stepDone('old-index-deleted', opts.onStep);
  }

  // 4. Packs.
  opts.beforeDelete?.();
  const gone = [...del, ...repack];
  await mapLimit(gone, 4, async (n) => {
    await repo.backend.delete(n);
    result.packsDeleted++;
    result.bytesDeleted += byName.get(n)!.size;
    stepDone('pack-deleted', opts.onStep);
  });
  stepDone('packs-deleted', opts.onStep);
  // Parity of groups with no pack left (FORMAT.md "Parity", prune).
  await repo.dropOrphanParity();

  // 5. What killed writers left.
  if (repo.backend.removeUnfinished) {
    for (const u of actions.unfinished) {
      await repo.backend.removeUnfinished(u);
      result.unfinishedRemoved++;
    }
  }
  return result;
}

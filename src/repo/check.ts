// Repository check: every index, pack listing, snapshot and tree is read and verified;
// with readData every blob of every pack is decrypted and checked against its id.
import { chunkLayout } from '../format/file-layout.js';
import { sha256 } from '../crypto/hash.js';
import { openPackHeader, splitPackHeader } from '../format/pack.js';
import { openSealed } from '../crypto/box.js';
import type { FullSecrets } from '../format/keyfile.js';
import { CorruptError, TsbakError } from '../errors.js';
import { mapLimit } from './map-limit.js';
import { Semaphore } from './semaphore.js';
import { TreeBatchLoader } from './tree-batch.js';
import { packName, packPrefix, parsePackName } from './layout.js';
import { describeLock } from './locks.js';
import { describeSubset, selectPacks, type DataSubset } from './check-subset.js';
import type { Repository } from './repository.js';
import type { BlobLocation } from './blob-index.js';

export interface CheckReport {
  errors: string[];
  warnings: string[];
  snapshots: number;
  trees: number;
  packs: number;
  blobsRead: number;
  /** Packs read (--read-data: every one; --read-data-subset: those chosen). */
  packsRead: number;
  /** Packs chosen but not read: in cold storage, not restored (not damage; read them once restored). */
  coldNotRead: { packs: number; bytes: number };
}

export interface CheckOptions {
  readData?: boolean;
  /** Read only these packs' data (readData implied). */
  readDataSubset?: DataSubset;
  /**
   * Before packs are read: given one blob of each, says which packs are not readable now
   * (cold storage: cli requests their restores in one batch); those are not read.
   */
  coldPacks?: (packs: Array<{ name: string; blob: Buffer }>) => Promise<Set<string>>;
  onProgress?: (msg: string) => void;
}

export async function checkRepository(repo: Repository, opts: CheckOptions = {}): Promise<CheckReport> {
  const r: CheckReport = { errors: [], warnings: [], snapshots: 0, trees: 0, packs: 0, blobsRead: 0, packsRead: 0, coldNotRead: { packs: 0, bytes: 0 } };
  const say = opts.onProgress ?? (() => {});
  if (!repo.canRead) throw new TsbakError('WRITE_ONLY_KEY', 'check needs the full key (the repository passphrase), not a write-only key');

  // Shared: backups may run meanwhile (see check below), prune and repair may not. A
  // repository this user cannot write to (a read-only mount, read-only credentials) is
  // still checked, with a warning.
  let lock: { release(): Promise<void> } | null = null;
  try {
    lock = await repo.lock({ exclusive: false, operation: 'check' });
  } catch (e) {
    if (e instanceof TsbakError && e.code === 'LOCKED') throw e;
    r.warnings.push(`could not take a lock (${(e as Error).message}): a prune or repair running meanwhile would show as damage`);
  }
  // Damage is reported here, as errors, rather than as the readers' warnings.
  const warn = repo.onWarning;
  repo.onWarning = null;
  try {
    return await check(repo, r, opts, say);
  } finally {
    repo.onWarning = warn;
    await lock?.release().catch(() => {});
  }
}

async function check(repo: Repository, r: CheckReport, opts: CheckOptions, say: (msg: string) => void): Promise<CheckReport> {
  // Snapshots are listed before the index is loaded: a backup writes its index files before
  // its snapshot, so every snapshot listed here has its index files loaded below, even
  // with backups running meanwhile.
  say('listing snapshots');
  const ids = await repo.listSnapshotIds();
  say('loading index');
  try {
    await repo.loadIndex();
  } catch (e) {
    r.errors.push((e as Error).message);
  }
  for (const p of repo.indexProblems) r.errors.push(`index file ${p.name} is damaged (${p.reason}): its blobs are not counted on; backups store them again`);
  const unknownSigners = new Map<string, string>();
  for (const p of repo.index.packs) if (p.signer !== null && !p.verified && !repo.indexProblems.some((q) => q.name === p.indexFile)) unknownSigners.set(p.indexFile, p.signer);
  for (const [file, signer] of unknownSigners) r.warnings.push(`index file ${file} is signed by key ${signer}, which no registration in keys/ vouches for: dedup does not trust it`);

  say('listing packs');
  const stored = new Map<string, number>();
  for (const kind of ['data', 'tree'] as const) {
    for await (const o of repo.backend.list(packPrefix(kind))) {
      if (parsePackName(o.name)) stored.set(o.name, o.size);
    }
  }
  const indexed = new Set<string>();
  const needSize = new Map<string, number>();
  for (const e of repo.index.entries()) {
    const name = packName(e.pack.kind, e.pack.id.toString('hex'));
    indexed.add(name);
    needSize.set(name, Math.max(needSize.get(name) ?? 0, e.offset + e.length));
  }
  for (const name of indexed) {
    const size = stored.get(name);
    if (size === undefined) r.errors.push(`pack ${name} is in the index but missing from the repository`);
    else if (size < needSize.get(name)!) r.errors.push(`pack ${name} is truncated (${size} bytes, index needs ${needSize.get(name)})`);
  }
  r.packs = stored.size;

  const locks = await repo.listLocks();
  for (const l of locks) {
    if (l.stale) r.warnings.push(`${describeLock(l)} is stale (${l.stale}): left by a process that was killed; 'tsbak unlock' removes it`);
    else if (l.unreadable) r.warnings.push(`${describeLock(l)} counts as held until it is stale; 'tsbak unlock --remove-all' removes it if no tsbak process is at work`);
  }
  // A pack stored after the index was loaded may be named by an index file written since.
  let unindexed = [...stored.keys()].filter((name) => !indexed.has(name));
  if (unindexed.length) {
    await repo.loadIndex().catch(() => {});
    const now = new Set(repo.index.packs.map((p) => packName(p.kind, p.id.toString('hex'))));
    unindexed = unindexed.filter((name) => !now.has(name));
  }
  const writing = locks.some((l) => !l.stale && !l.ours && l.operation === 'backup');
  for (const name of unindexed) r.warnings.push(`pack ${name} is not in any index (${writing ? 'written by a backup in progress, or ' : ''}left by an interrupted backup; harmless, prune removes it)`);

  say('checking snapshots and trees');
  const seenTrees = new Set<string>();
  const loader = new TreeBatchLoader(repo);
  const missing: Array<{ id: string; blob: Buffer; name: string }> = [];
  for (const id of ids) {
    let root: string;
    try {
      // From the repository: a good copy in the local cache must not hide a damaged object.
      root = (await repo.loadSnapshot(id, { cache: false })).info.tree;
      r.snapshots++;
    } catch (e) {
      r.errors.push((e as Error).message);
      continue;
    }
    // Each tree with the path where it was first met in the snapshot, to name it in errors.
    // Trees are loaded many at a time, by pack (tree-batch.ts): one read serves hundreds.
    const stack: Array<[string, string]> = [[root, '/']];
    while (stack.length) {
      const batch: Array<[string, string]> = [];
      while (stack.length && batch.length < TREES_AT_ONCE) {
        const [t, at] = stack.pop()!;
        if (seenTrees.has(t)) continue;
        seenTrees.add(t);
        batch.push([t, at]);
      }
      const trees = await repo.loadTrees(batch.map(([t]) => Buffer.from(t, 'hex')), loader);
      batch.forEach(([t, at], i) => {
        const tree = trees[i]!;
        if (tree instanceof Error) {
          r.errors.push(`snapshot ${id.slice(0, 8)}: ${tree.message}`);
          return;
        }
        r.trees++;
        // Entries the decoder refused (names that are not one path component, duplicates...): restore, ls and the mount skip them.
        for (const x of tree.rejected ?? []) r.errors.push(`snapshot ${id.slice(0, 8)}: tree ${t.slice(0, 16)} (${at}): entry ${JSON.stringify(x.name.toString())} refused: ${x.reason}`);
        for (const n of tree.nodes) {
          if (n.subtree) stack.push([n.subtree.toString('hex'), (at === '/' ? '/' : at + '/') + n.name.toString()]);
          for (const c of n.content ?? []) {
            if (!repo.index.has(c)) missing.push({ id, blob: c, name: n.name.toString() });
          }
          const layout = n.content?.length ? chunkLayout(n, (c) => repo.locate(c)) : null;
          if (layout && 'problem' in layout) r.errors.push(`snapshot ${id.slice(0, 8)}: tree ${t.slice(0, 16)} (${at}): file ${JSON.stringify(n.name.toString())}: ${layout.problem}; restore refuses it`);
        }
      });
    }
  }

  // A blob missing from the index is looked for once more in index files written since it
  // was loaded, before it is called damage.
  if (missing.length) await repo.loadIndex().catch(() => {});
  for (const m of missing) if (!repo.index.has(m.blob)) r.errors.push(`snapshot ${m.id.slice(0, 8)}: data blob ${m.blob.toString('hex').slice(0, 16)} of ${m.name} is not in the index`);

  if (opts.readData || opts.readDataSubset) {
    say(opts.readDataSubset ? `reading packs (subset ${describeSubset(opts.readDataSubset)})` : 'reading all packs');
    const s = repo.secrets as FullSecrets;
    // Every pack any index file names, even one whose listing has no blob (hash and header
    // are still checked), then every copy of every blob in it.
    const byPack = new Map<string, Array<{ id: Buffer } & BlobLocation>>();
    for (const p of repo.index.packs) {
      const name = packName(p.kind, p.id.toString('hex'));
      if (!byPack.has(name)) byPack.set(name, []);
    }
    for (const e of repo.index.entries()) {
      const name = packName(e.pack.kind, e.pack.id.toString('hex'));
      let l = byPack.get(name);
      if (!l) byPack.set(name, (l = []));
      l.push(e);
    }
    // Every copy of every blob is checked, the copy itself and no other: a damaged one is
    // named with who listed it, and with whether another copy (which reads use instead) is
    // good. Each pack is read once, whole (several at once, within a bound of bytes), its
    // hash checked, then every blob opened from those bytes.
    const good = new Set<string>();
    const bad: Array<{ id: Buffer; copy: string; why: string }> = [];
    let packs = [...byPack].filter(([name]) => stored.has(name));
    if (opts.readDataSubset) {
      const chosen = new Set(selectPacks(packs.map(([name]) => ({ name, size: stored.get(name)! })), opts.readDataSubset).map((p) => p.name));
      packs = packs.filter(([name]) => chosen.has(name));
    }
    if (opts.coldPacks) {
      const cold = await opts.coldPacks(packs.filter(([, blobs]) => blobs.length).map(([name, blobs]) => ({ name, blob: blobs[0]!.id })));
      for (const [name] of packs) if (cold.has(name)) (r.coldNotRead.packs++, (r.coldNotRead.bytes += stored.get(name)!));
      packs = packs.filter(([name]) => !cold.has(name));
    }
    const found: Array<{ errors: string[]; bad: typeof bad; cold?: boolean }> = packs.map(() => ({ errors: [], bad: [] }));
    const room = new Semaphore(PACK_BYTES_IN_FLIGHT);
    await mapLimit(
      packs.map((p, i) => ({ p, i })),
      repo.readConcurrency,
      async ({ p: [name, blobs], i }) => {
        const size = stored.get(name)!;
        await room.acquire(size);
        try {
          await checkPack(repo, s, name, blobs, found[i]!, () => r.blobsRead++, (id) => good.add(id.toString('hex')));
        } finally {
          room.release(size);
        }
      },
    );
    // In the order of the packs, whatever order they were read in.
    found.forEach((f, i) => {
      if (!f.cold) r.packsRead++;
      else (r.coldNotRead.packs++, (r.coldNotRead.bytes += stored.get(packs[i]![0])!));
    });
    for (const f of found) {
      r.errors.push(...f.errors);
      bad.push(...f.bad);
    }
    for (const b of bad) {
      const hex = b.id.toString('hex');
      r.errors.push(`blob ${hex.slice(0, 16)}: the copy in ${b.copy} is damaged (${b.why})${good.has(hex) ? '; another copy is good, and reads use it' : ''}`);
    }
  }
  await reportParity(repo, r);
  return r;
}

/** Says which of the packs the errors name as missing or damaged parity can rebuild. */
async function reportParity(repo: Repository, r: CheckReport): Promise<void> {
  const bad = new Set<string>();
  for (const e of r.errors) for (const m of e.matchAll(/packs\/(?:data|tree)\/[0-9a-f]{2}\/[0-9a-f]{64}/g)) bad.add(m[0]);
  if (!bad.size) return;
  const { repairable, unrepairable } = await repo.parityCoverage(bad);
  for (const name of repairable) r.warnings.push(`pack ${name} is lost or damaged; repairable: run tsbak repair packs`);
  for (const name of unrepairable) r.warnings.push(`pack ${name} is lost or damaged, and its parity group has lost more packs than it has parity: it cannot be rebuilt`);
}

/** Trees asked for in one loadTrees call. */
const TREES_AT_ONCE = 256;

/** Packs read at once by check --read-data, in bytes (a larger pack is read alone). */
const PACK_BYTES_IN_FLIGHT = 64 << 20;

/** Reads pack `name` (one GET), checks its hash and header, and opens each of its blobs from those bytes. */
async function checkPack(
  repo: Repository,
  s: FullSecrets,
  name: string,
  blobs: Array<{ id: Buffer } & BlobLocation>,
  out: { errors: string[]; bad: Array<{ id: Buffer; copy: string; why: string }>; cold?: boolean },
  counted: () => void,
  good: (id: Buffer) => void,
): Promise<void> {
  let bytes: Buffer;
  try {
    bytes = await repo.backend.get(name);
  } catch (e) {
    // Archived and not restored: not damage, and not read.
    if (e instanceof TsbakError && e.code === 'COLD') {
      out.cold = true;
      return;
    }
    out.errors.push(`pack ${name}: ${(e as Error).message}`);
    return;
  }
  if (!sha256(bytes).equals(Buffer.from(name.slice(-64), 'hex'))) out.errors.push(`pack ${name} is damaged: its content does not match its name`);
  try {
    const { sealedKey, encrypted } = splitPackHeader(bytes);
    openPackHeader(openSealed({ publicKey: s.repoPub, privateKey: s.repoPriv }, sealedKey), encrypted);
  } catch {
    out.errors.push(`pack ${name}: header is damaged`);
  }
  for (const b of blobs) {
    try {
      if (b.offset + b.length > bytes.length) throw new CorruptError(`blob ${b.id.toString('hex').slice(0, 16)} in pack ${name}`, 'beyond the end of the pack');
      await repo.verifyCopyIn(b.id, b, bytes.subarray(b.offset, b.offset + b.length));
      counted();
      good(b.id);
    } catch (e) {
      if (!(e instanceof TsbakError) || e.code !== 'CORRUPT') throw e;
      out.bad.push({ id: b.id, copy: repo.copyName(b), why: /\(([^)]*)\)[^(]*$/.exec(e.message)?.[1] ?? e.message });
    }
  }
}

// Repository check: every index, pack listing, snapshot and tree is read and verified;
// with readData every blob of every pack is decrypted and checked against its id.
import { sha256 } from '../crypto/hash.js';
import { openPackHeader, splitPackHeader } from '../format/pack.js';
import { openSealed } from '../crypto/box.js';
import type { FullSecrets } from '../format/keyfile.js';
import { CorruptError, TsbakError } from '../errors.js';
import { mapLimit } from './map-limit.js';
import { Semaphore } from './semaphore.js';
import { TreeBatchLoader } from './tree-batch.js';
import { LOCKS, packName, packPrefix, parsePackName } from './layout.js';
import type { Repository } from './repository.js';
import type { BlobLocation } from './blob-index.js';

export interface CheckReport {
  errors: string[];
  warnings: string[];
  snapshots: number;
  trees: number;
  packs: number;
  blobsRead: number;
  /** Packs read whole (--read-data: all; --read-data-subset: those chosen). */
  packsRead: number;
}

export async function checkRepository(repo: Repository, opts: CheckOptions = {}): Promise<CheckReport> {
  const r: CheckReport = { errors: [], warnings: [], snapshots: 0, trees: 0, packs: 0, blobsRead: 0, packsRead: 0 };
  const say = opts.onProgress ?? (() => {});
  if (!repo.canRead) throw new TsbakError('WRITE_ONLY_KEY', 'check needs the full key (the repository passphrase), not a write-only key');

  // Damage is reported here, as errors, rather than as the readers' warnings.
  const warn = repo.onWarning;
  repo.onWarning = null;
  try {
    return await check(repo, r, opts, say);
  } finally {
    repo.onWarning = warn;
  }
}

export interface CheckOptions {
  readData?: boolean;
  /** With readData: read only these packs (names; check-subset.ts chooses them). */
  readPacks?: ReadonlySet<string>;
  onProgress?: (msg: string) => void;
}

async function check(repo: Repository, r: CheckReport, opts: CheckOptions, say: (msg: string) => void): Promise<CheckReport> {
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
  for (const name of stored.keys()) {
    if (!indexed.has(name)) r.warnings.push(`pack ${name} is not in any index (left by an interrupted backup; harmless, prune removes it)`);
  }
  r.packs = stored.size;

  for await (const o of repo.backend.list(LOCKS)) {
    try {
      const l = JSON.parse((await repo.backend.get(o.name)).toString());
      r.warnings.push(`lock ${o.name} held by ${l.host} pid ${l.pid} since ${l.time} (a backup in progress, or left by one that was killed)`);
    } catch {
      r.warnings.push(`lock ${o.name} is unreadable`);
    }
  }

  say('checking snapshots and trees');
  const seenTrees = new Set<string>();
  const loader = new TreeBatchLoader(repo);
  const ids = await repo.listSnapshotIds();
  for (const id of ids) {
    let root: string;
    try {
      root = (await repo.loadSnapshot(id)).info.tree;
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
            if (!repo.index.has(c)) r.errors.push(`snapshot ${id.slice(0, 8)}: data blob ${c.toString('hex').slice(0, 16)} of ${n.name.toString()} is not in the index`);
          }
        }
      });
    }
  }

  if (opts.readData) {
    say(opts.readPacks ? `reading ${opts.readPacks.size} packs` : 'reading all packs');
    const s = repo.secrets as FullSecrets;
    const byPack = new Map<string, Array<{ id: Buffer } & BlobLocation>>();
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
    const packs = [...byPack].filter(([name]) => stored.has(name) && (!opts.readPacks || opts.readPacks.has(name)));
    r.packsRead = packs.length;
    const found: Array<{ errors: string[]; bad: typeof bad }> = packs.map(() => ({ errors: [], bad: [] }));
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
    for (const f of found) {
      r.errors.push(...f.errors);
      bad.push(...f.bad);
    }
    for (const b of bad) {
      const hex = b.id.toString('hex');
      r.errors.push(`blob ${hex.slice(0, 16)}: the copy in ${b.copy} is damaged (${b.why})${good.has(hex) ? '; another copy is good, and reads use it' : ''}`);
    }
  }
  return r;
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
  out: { errors: string[]; bad: Array<{ id: Buffer; copy: string; why: string }> },
  counted: () => void,
  good: (id: Buffer) => void,
): Promise<void> {
  let bytes: Buffer;
  try {
    bytes = await repo.backend.get(name);
  } catch (e) {
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

// `tsbak repair index`: the index rebuilt from the packs themselves. Index files that are
// sound and name only packs that exist are kept as they are. Every other pack (named by no
// index file, or only by one that is damaged, does not verify, or names a pack that is
// gone) has its header read and is listed again in new index files signed by this key (the
// master). Only then are the replaced index files deleted, each once everything it could
// tell is listed elsewhere: at every moment of an interruption every pack stays listed by
// some index file that was there before, or by a new one.
import { INDEX } from './layout.js';
import type { IndexPack } from '../format/index-file.js';
import type { PackRef } from './blob-index.js';
import type { FullSecrets } from '../format/keyfile.js';
import { TsbakError } from '../errors.js';
import { listingName, listStoredPacks, readPackHeaders, verifyPackBlobs, type StoredPack } from './pack-headers.js';
import { mapLimit } from './map-limit.js';
import { Semaphore } from './semaphore.js';
import type { Repository } from './repository.js';

export interface IndexRepairOptions {
  dryRun?: boolean;
  signal?: AbortSignal;
  onProgress?: (message: string) => void;
  /** Throws when the exclusive lock was lost: called before each write and each deletion. */
  assertLocked?: () => void;
  /**
   * Read each pack to be listed whole and list only the blobs that open and match their id.
   * Without it a header is taken at its word, and since the new index is the master's, a
   * backup's dedup then counts on what it lists (see FORMAT.md "Repair and recovery").
   */
  readData?: boolean;
}

export interface IndexRepairReport {
  /** Packs in the repository. */
  packs: number;
  /** Packs left as listed by sound index files. */
  indexedAlready: number;
  /** Packs whose header was read (opened or found damaged), and those listed anew, with their blobs. */
  headersRead: number;
  packsListed: number;
  blobsListed: number;
  /** Packs whose header is damaged: not listed (their blobs cannot be read). */
  damaged: Array<{ pack: string; reason: string }>;
  /** readData: blobs left out of the listings, and packs whose bytes do not match their name. */
  damagedBlobs: Array<{ pack: string; blob: string; reason: string }>;
  packsNotMatchingName: string[];
  /** readData: blobs read and verified. */
  blobsVerified: number;
  /** Packs in GLACIER/DEEP_ARCHIVE whose header cannot be read without a restore. */
  cold: StoredPack[];
  /** Index files written, and index files removed (with why). */
  indexFilesWritten: string[];
  indexFilesRemoved: Array<{ name: string; reason: string }>;
  /** Index files that need replacing but were kept: they list packs nothing else lists yet (cold ones). */
  indexFilesKept: Array<{ name: string; reason: string }>;
  dryRun: boolean;
}

/** Bytes of packs read at once with readData (a larger pack is read alone). */
const PACK_BYTES_IN_FLIGHT = 64 << 20;

/** Blobs per index file written (restic bounds its index files by blob count too). */
const BLOBS_PER_FILE = 65536;

export async function repairIndex(repo: Repository, opts: IndexRepairOptions = {}): Promise<IndexRepairReport> {
  if (!repo.canRead || repo.secrets.keyId !== 'master') throw new TsbakError('WRITE_ONLY_KEY', 'repair index needs the full key (the repository passphrase): it opens pack keys and signs the new index as the master');
  const s = repo.secrets as FullSecrets;
  const say = opts.onProgress ?? (() => {});
  say('loading index');
  // Damaged index files are this command's business: reported in its result, not as warnings.
  const warn = repo.onWarning;
  repo.onWarning = null;
  try {
    await repo.loadIndex();
  } finally {
    repo.onWarning = warn;
  }
  say('listing packs');
  const stored = await listStoredPacks(repo.backend, opts.signal);
  const storedNames = new Map(stored.map((p) => [p.name, p]));

  // Why each index file must be replaced: damaged (not loaded), a signature that does not
  // verify, or a listing of a pack that is not there.
  const replace = new Map<string, string>();
  const loaded = new Set(repo.indexFiles);
  for (const p of repo.indexProblems) replace.set(p.name, loaded.has(p.name) ? p.reason : `damaged: ${p.reason}`);
  const listedBy = new Map<string, Set<string>>();
  for (const p of repo.index.packs) {
    const name = listingName(p);
    let files = listedBy.get(p.indexFile);
    if (!files) listedBy.set(p.indexFile, (files = new Set()));
    files.add(name);
    if (!storedNames.has(name) && !replace.has(p.indexFile)) replace.set(p.indexFile, `it lists pack ${name}, which is missing`);
  }
  // A listing that reaches beyond the end of its pack (a pack cut short) is no sound listing either.
  const reach = new Map<PackRef, number>();
  for (const e of repo.index.entries()) reach.set(e.pack, Math.max(reach.get(e.pack) ?? 0, e.offset + e.length));
  for (const [p, end] of reach) {
    const name = listingName(p);
    const size = storedNames.get(name)?.size;
    if (size !== undefined && size < end && !replace.has(p.indexFile)) replace.set(p.indexFile, `it lists blobs beyond the end of pack ${name} (${size} bytes, ${end} needed)`);
  }
  const covered = new Set<string>();
  for (const [file, packs] of listedBy) if (!replace.has(file)) for (const name of packs) covered.add(name);
  const toRead = stored.filter((p) => !covered.has(p.name));

  say(`reading ${toRead.length} pack headers`);
  const outcomes = await readPackHeaders(repo.backend, toRead, { publicKey: s.repoPub, privateKey: s.repoPriv }, {
    concurrency: repo.readConcurrency,
    signal: opts.signal,
    onProgress: (done, total) => say(`reading pack headers: ${done}/${total}`),
  });
  const listings: IndexPack[] = [];
  const report: IndexRepairReport = {
    packs: stored.length,
    indexedAlready: stored.length - toRead.length,
    headersRead: 0,
    packsListed: 0,
    blobsListed: 0,
    damaged: [],
    damagedBlobs: [],
    packsNotMatchingName: [],
    blobsVerified: 0,
    cold: [],
    indexFilesWritten: [],
    indexFilesRemoved: [],
    indexFilesKept: [],
    dryRun: !!opts.dryRun,
  };
  const opened: Array<{ listing: IndexPack; packKey: Buffer; size: number }> = [];
  for (const o of outcomes) {
    if (o.state === 'ok') {
      report.headersRead++;
      opened.push({ listing: o.listing, packKey: o.packKey, size: o.pack.size });
      covered.add(o.pack.name);
    } else if (o.state === 'damaged') {
      report.headersRead++;
      report.damaged.push({ pack: o.pack.name, reason: o.reason });
    } else if (o.state === 'cold') report.cold.push(o.pack);
    // 'missing': deleted since the listing (by prune): nothing to list.
  }
  if (opts.readData) {
    say('reading the packs to list');
    const room = new Semaphore(PACK_BYTES_IN_FLIGHT);
    let done = 0;
    await mapLimit(opened, repo.readConcurrency, async (p) => {
      await room.acquire(p.size);
      try {
        const v = await verifyPackBlobs(repo.backend, p.listing, p.packKey, s.macKey, opts.signal);
        p.listing = { ...p.listing, blobs: v.sound };
        report.blobsVerified += v.sound.length;
        for (const b of v.bad) report.damagedBlobs.push({ pack: listingName(p.listing), blob: b.id.toString('hex'), reason: b.reason });
        if (v.hashMismatch) report.packsNotMatchingName.push(listingName(p.listing));
      } finally {
        room.release(p.size);
      }
      say(`reading the packs to list: ${++done}/${opened.length}`);
    });
  }
  for (const p of opened) if (p.listing.blobs.length) listings.push(p.listing);
  report.packsListed = listings.length;
  report.blobsListed = listings.reduce((n, l) => n + l.blobs.length, 0);

  // New index files first...
  if (!opts.dryRun) {
    say('writing index');
    for (const group of byBlobCount(listings, BLOBS_PER_FILE)) {
      const before = new Set(repo.indexFiles);
      opts.assertLocked?.();
      await repo.writeIndexFile(group);
      report.indexFilesWritten.push(...repo.indexFiles.filter((f) => !before.has(f)));
    }
  } else if (listings.length) report.indexFilesWritten.push(...byBlobCount(listings, BLOBS_PER_FILE).map((_, i) => `(new index file ${i + 1})`));

  // ...then the ones they replace, each once every pack it names that exists is listed by
  // a sound file. A damaged file tells nothing anyone can read: removed.
  const uncovered = new Set(stored.filter((p) => !covered.has(p.name)).map((p) => p.name));
  for (const [file, reason] of replace) {
    const keep = [...(listedBy.get(file) ?? [])].filter((n) => uncovered.has(n));
    if (keep.length && loaded.has(file)) {
      report.indexFilesKept.push({ name: file, reason: `${reason}; kept: it lists ${keep.length} pack(s) no other index file lists (${keep[0]}${keep.length > 1 ? ', ...' : ''})` });
      continue;
    }
    if (!file.startsWith(INDEX)) continue;
    if (!opts.dryRun) {
      opts.assertLocked?.();
      await repo.backend.delete(file);
    }
    report.indexFilesRemoved.push({ name: file, reason });
  }
  return report;
}

/** Listings in groups of about `max` blobs (a pack is never split). */
function byBlobCount(listings: IndexPack[], max: number): IndexPack[][] {
  const out: IndexPack[][] = [];
  let cur: IndexPack[] = [];
  let n = 0;
  for (const l of listings) {
    if (cur.length && n + l.blobs.length > max) {
      out.push(cur);
      cur = [];
      n = 0;
    }
    cur.push(l);
    n += l.blobs.length;
  }
  if (cur.length) out.push(cur);
  return out;
}

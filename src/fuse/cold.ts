// Cold data in the mount: files whose data packs are in S3 Glacier / Deep Archive. All of
// it goes through the repository's cold API (fileState, warmBlobs, waitForBlobs,
// coldStatus); src/fuse never imports src/glacier (docs/DESIGN.md).
//
// Reading a file whose data is not readable now (state `cold` or `restoring`):
//   - no data pack is fetched: the state comes from the restore journal and, for a restore
//     in progress whose last look is older than the poll interval, one HEAD per pack;
//   - the first such read of the file requests, in one call (repo.warmBlobs), the restore of
//     every pack holding one of its chunks -- each pack once: packs already requested (by
//     this mount, an earlier one, `tsbak warm`) are not asked again -- and writes one line
//     to the daemon's log naming the file, the packs, the tier and when they are expected;
//   - cold=fail (default): the read fails at once with COLD_ERRNO; cold=wait: it waits
//     (repo.waitForBlobs, polling S3) up to cold_timeout seconds, then reads, or fails with
//     COLD_ERRNO when the time is up.
//   Files whose data is hot, cached on local disk, or restored in S3 (`available`) read as
//   usual; a read that meets cold data anyway (a restored copy that expired, a pack archived
//   by a lifecycle rule) is handled the same way.
//
// The state of a regular file, without reading it, is the xattr user.tsbak.state: hot,
// cold, restoring, available or cached (the coldest of its chunks; see repo.fileState).
// getxattr answers it for every regular file. listxattr lists it next to the file's own
// xattrs for files whose data is in cold storage (so `getfattr -d` shows it); it is not
// listed for hot data (local repositories, STANDARD classes), so that `cp -a`, `rsync -X`
// and getfattr comparisons of such files see exactly the xattrs that were backed up. With
// -o state_xattr=hidden it is never listed (getfattr -n user.tsbak.state still answers):
// use that when copying cold data out with cp -a/rsync -X, which would otherwise copy the
// attribute onto the copies. A file that itself had an xattr of that name keeps it: the
// file's own value is shown and listed, and the state is not.
import { LRUCache } from 'lru-cache';
import type { TreeNode } from '../format/tree.js';
import type { BlobState, ColdPackStatus, Repository } from '../repo/repository.js';
import { FsError } from './fs-error.js';

export const STATE_XATTR = 'user.tsbak.state';

/**
 * What a read of data not restored yet fails with: ENODATA, "No data available". Not
 * EAGAIN: Python's buffered read() takes EAGAIN for "no data yet on a non-blocking file"
 * and returns None, so `open(f, 'rb').read()` failed silently. Not EIO, which stays the
 * answer for damage: a script can tell "restore requested, try again later" (61) from "the
 * data is bad" (5). python3 raises OSError 61, cat and cp exit 1 ("No data available"),
 * rsync exits 23 without writing the file (README, "Cold data in the mount").
 */
export const COLD_ERRNO = 'ENODATA';

export type ColdMode = 'fail' | 'wait';

export interface ColdReadOptions {
  /** fail (default): COLD_ERRNO at once; wait: wait for the restore up to timeoutMs. */
  mode?: ColdMode;
  /** cold=wait: the longest one read waits (default 300 s). */
  timeoutMs?: number;
  /** cold=wait: the longest pause between two looks at S3 (default 60 s). */
  pollMaxMs?: number;
  /** List user.tsbak.state in listxattr for files with cold data (default true). */
  listStateXattr?: boolean;
}

export const COLD_READ_DEFAULTS = { mode: 'fail' as ColdMode, timeoutMs: 300_000, pollMaxMs: 60_000 };

/** States whose data can be read now (hot, local disk cache, or a restored copy in S3). */
const READABLE: ReadonlySet<BlobState> = new Set<BlobState>(['hot', 'cached', 'available']);

export function isReadable(s: BlobState): boolean {
  return READABLE.has(s);
}

/** A regular file of the mount, as cold reads see it. */
export interface ColdFile {
  /** Its inode number (one for all names of a hardlinked file). */
  ino: number;
  node: TreeNode;
  /** Where it is, for the log: its path in the mount. */
  where: string;
}

interface PerFile {
  /** The restore request (and its log line) under way. */
  warming?: Promise<void>;
  /** A wait (cold=wait) that concurrent reads of the file share. */
  waiting?: Promise<boolean>;
  /** The log line for the current restore was written. */
  announced?: boolean;
  /** When a wait of this file last timed out. */
  gaveUpAt?: number;
}

/** getxattr asks twice (size, then value): answer both from one look. */
const STATE_TTL_MS = 1000;
/**
 * The kernel tries a failed page-cache read once more at once (read-ahead, then the read
 * itself): a read that comes this soon after a wait of the same file timed out fails at
 * once, so that one read(2) does not wait cold_timeout twice.
 */
const GAVE_UP_GRACE_MS = 2000;

export class ColdReads {
  readonly mode: ColdMode;
  readonly timeoutMs: number;
  private readonly pollMaxMs: number;
  readonly listStateXattr: boolean;
  private readonly files = new LRUCache<number, PerFile>({ max: 10_000 });
  private readonly states = new LRUCache<number, { state: BlobState; at: number }>({ max: 10_000 });
  readonly counters = { restoreCalls: 0, restoresRequested: 0, eagain: 0, waits: 0, waitTimeouts: 0 };

  constructor(
    private readonly repo: Repository,
    opts: ColdReadOptions,
    private readonly log: (msg: string) => void,
  ) {
    this.mode = opts.mode ?? COLD_READ_DEFAULTS.mode;
    this.timeoutMs = opts.timeoutMs ?? COLD_READ_DEFAULTS.timeoutMs;
    this.pollMaxMs = opts.pollMaxMs ?? COLD_READ_DEFAULTS.pollMaxMs;
    this.listStateXattr = opts.listStateXattr ?? true;
  }

  // ---- state (the xattr) ----

  /** The file's state, from what is known locally (a HEAD only for a restore whose last look is stale). */
  async state(ino: number, node: TreeNode): Promise<BlobState> {
    const hit = this.states.get(ino);
    if (hit && Date.now() - hit.at < STATE_TTL_MS) return hit.state;
    const state = await this.repo.fileState(node.content ?? []);
    this.states.set(ino, { state, at: Date.now() });
    return state;
  }

  /** Forget the remembered state (the file was opened or read: it may have changed). */
  forget(ino: number): void {
    // Marked stale, not deleted: lru-cache clears all its slots when a delete empties it.
    const hit = this.states.peek(ino);
    if (hit) hit.at = -Infinity;
  }

  /** Whether listxattr shows user.tsbak.state for this file. */
  async listed(ino: number, node: TreeNode): Promise<boolean> {
    if (!this.listStateXattr || node.type !== 'file') return false;
    if (node.xattrs?.some(([k]) => k === STATE_XATTR)) return false;
    return (await this.state(ino, node)) !== 'hot';
  }

  // ---- reads ----

  private perFile(ino: number): PerFile {
    let p = this.files.get(ino);
    if (!p) this.files.set(ino, (p = {}));
    return p;
  }

  /**
   * Resolves when the file's data can be read; throws FsError COLD_ERRNO (cold=fail, or the
   * wait timed out). `afterError`: a read just failed on cold data, whatever the state says.
   */
  async ensureReadable(f: ColdFile, afterError = false): Promise<void> {
    const ids = f.node.content ?? [];
    this.forget(f.ino);
    const state = await this.repo.fileState(ids);
    if (!afterError && isReadable(state)) return;
    const p = this.perFile(f.ino);
    // A restore to request (or one to announce): once per file and restore; warmBlobs itself
    // asks S3 only for packs not requested yet.
    if (state === 'cold' || !p.announced || afterError) {
      p.warming ??= this.warm(f, p).finally(() => (p.warming = undefined));
      await p.warming;
    }
    if (this.mode === 'fail') {
      if (!afterError && isReadable(await this.repo.fileState(ids))) return; // it was restored already
      this.counters.eagain++;
      throw new FsError(COLD_ERRNO, `${f.where}: data in cold storage, restore requested`);
    }
    if (!p.waiting && p.gaveUpAt !== undefined && Date.now() - p.gaveUpAt < GAVE_UP_GRACE_MS) {
      this.counters.eagain++;
      throw new FsError(COLD_ERRNO, `${f.where}: restore not finished within cold_timeout`);
    }
    if (!p.waiting) {
      // Concurrent reads of the file (the kernel's read-ahead) share one wait and one log line.
      this.counters.waits++;
      p.waiting = this.repo.waitForBlobs(ids, { timeoutMs: this.timeoutMs, pollMaxMs: this.pollMaxMs }).then((ok) => {
        if (!ok) {
          p.gaveUpAt = Date.now();
          this.counters.waitTimeouts++;
          this.log(`cold data: ${f.where}: not restored after waiting ${Math.round(this.timeoutMs / 1000)} s (cold_timeout); the read fails with ${COLD_ERRNO}`);
        }
        return ok;
      });
      p.waiting.then(
        () => (p.waiting = undefined),
        () => (p.waiting = undefined),
      );
    }
    if (await p.waiting) return;
    this.counters.eagain++;
    throw new FsError(COLD_ERRNO, `${f.where}: restore not finished within cold_timeout`);
  }

  /** One batch of restore requests for every pack of the file, and one log line. */
  private async warm(f: ColdFile, p: PerFile): Promise<void> {
    const ids = f.node.content ?? [];
    this.counters.restoreCalls++;
    const r = await this.repo.warmBlobs(ids);
    this.counters.restoresRequested += r.requested;
    p.announced = true;
    if (!r.packs) return;
    const names = new Set(this.repo.packsOf(ids).map((x) => x.name));
    const mine = this.repo.coldStatus().filter((s) => names.has(s.pack) && s.state !== 'cached');
    const tiers = [...new Set(mine.map((s) => s.tier).filter((t) => t))].join('/') || '?';
    const expected = latest(mine.filter((s) => s.state === 'restoring').map((s) => s.expectedBy));
    const what = `${r.packs} pack${r.packs === 1 ? '' : 's'}, ${formatBytes(r.bytes)}, tier ${tiers}`;
    const head = r.requested === r.packs ? `requested the restore of its ${what}` : r.requested > 0 ? `requested the restore of ${r.requested} of its ${what} (the others were requested before)` : `its ${what} are being restored (requested before)`;
    const then = this.mode === 'wait' ? `reads wait up to ${Math.round(this.timeoutMs / 1000)} s` : `reads fail with ${COLD_ERRNO} until then`;
    this.log(`cold data: ${f.where}: ${head}, expected by ${expected ? isoSeconds(expected) : 'unknown'}; ${then}`);
  }

  stats() {
    return { ...this.counters };
  }
}

// ---- the status file ----

export function isoSeconds(t: string | number | Date): string {
  return new Date(t).toISOString().replace(/\.\d+Z$/, 'Z');
}

function latest(ts: Array<string | null>): string | null {
  let best: string | null = null;
  for (const t of ts) if (t && (!best || Date.parse(t) > Date.parse(best))) best = t;
  return best;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/**
 * The text of the status file: one line per pending restore (requested, in progress, or
 * restored in S3 and not yet fetched), then a summary line. Columns are separated by
 * spaces (no field contains one); `-` for unknown.
 *
 *   # tsbak restores, 2025-01-02T03:04:05Z (made when this file is opened; cold=fail)
 *   PACK                 BYTES     TIER      REQUESTED-AT          EXPECTED-BY           STATE      EXPIRES
 *   packs/data/ab/ab...  67108864  Standard  2025-01-02T03:00:00Z  2025-01-02T15:00:00Z  restoring  -
 *   summary: 1 restore pending (1 restoring, 0 available), 64.0 MiB, expected by 2025-01-02T15:00:00Z; 3 packs (192.0 MiB) in the local cache
 */
export function statusText(list: ColdPackStatus[], now: Date, mode: ColdMode): string {
  const pending = list.filter((s) => s.state === 'restoring' || s.state === 'available');
  const cached = list.filter((s) => s.state === 'cached');
  const t = (s: string | null) => (s ? isoSeconds(s) : '-');
  const rows = [['PACK', 'BYTES', 'TIER', 'REQUESTED-AT', 'EXPECTED-BY', 'STATE', 'EXPIRES']];
  for (const s of pending) rows.push([s.pack, String(s.bytes), s.tier ?? '-', t(s.requestedAt), t(s.expectedBy), s.state, t(s.expiry)]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = [`# tsbak restores, ${isoSeconds(now)} (made when this file is opened; cold=${mode})`];
  for (const r of rows) lines.push(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
  const restoring = pending.filter((s) => s.state === 'restoring');
  const bytes = pending.reduce((a, s) => a + s.bytes, 0);
  const expected = latest(restoring.map((s) => s.expectedBy));
  const cachedBytes = cached.reduce((a, s) => a + s.bytes, 0);
  const head = pending.length
    ? `${pending.length} restore${pending.length === 1 ? '' : 's'} pending (${restoring.length} restoring, ${pending.length - restoring.length} available), ${formatBytes(bytes)}${expected ? `, expected by ${isoSeconds(expected)}` : ''}`
    : 'no restores pending';
  lines.push(`summary: ${head}; ${cached.length} pack${cached.length === 1 ? '' : 's'} (${formatBytes(cachedBytes)}) in the local cache`);
  return lines.join('\n') + '\n';
}

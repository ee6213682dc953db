// Batched directory work for the backup walk (native/scan.c), on libuv's thread pool or,
// for small directories, on the calling thread.
import { createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { addon, type PathLike } from './addon.js';

interface Scan {
  scanDir(path: PathLike, withXattrs: boolean): Promise<RawScan>;
  scanDirSync(path: PathLike, withXattrs: boolean): RawScan;
  readSmallFiles(dir: PathLike, names: Buffer, ends: Uint32Array, expect: BigInt64Array, out: Buffer, macKey?: Buffer, ids?: Buffer): Promise<Int32Array>;
}

const native = (): Scan => addon<Scan>();

interface RawScan {
  names: Buffer;
  ends: Uint32Array;
  stats: BigInt64Array;
  xattrs: Buffer;
  xends: Uint32Array;
}

/** The fields of an lstat result the backup walk uses: scanDir's entries carry the same values fs.lstat gives. */
export type EntryStat = Pick<BigIntStats, 'mode' | 'uid' | 'gid' | 'nlink' | 'size' | 'blocks' | 'ino' | 'dev' | 'rdev' | 'atimeNs' | 'mtimeNs' | 'ctimeNs' | 'birthtimeNs'>;

export interface ScannedEntry {
  name: Buffer;
  /** null: statx failed (errno says why) or a time is out of int64 range: lstat it instead. */
  readonly st: EntryStat | null;
  errno: number;
  /** Sorted by name; null when not read (not asked, or failed): read them with llistxattr. */
  readonly xattrs: Array<[string, Buffer]> | null;
  /** st !== null, and what the walk asks of every entry, without making st (see ScanEntry). */
  readonly ok: boolean;
  readonly isDir: boolean;
  readonly nlink1: boolean;
}

export interface DirScan {
  entries: ScannedEntry[];
  /**
   * SHA-256 of the listing: every name and every lstat field (times to the nanosecond,
   * inode, device, ...). Equal fingerprints mean a directory whose entries all look the same.
   */
  fingerprint(): Buffer;
}

// Layout of one entry in RawScan.stats (native/scan.c).
const SCAN_FIELDS = 16;
const FLAG_TIME_RANGE = 1n;
const FLAG_NO_XATTRS = 2n;

/**
 * Every entry of a directory (not . and ..), sorted by name bytes, with its lstat and,
 * when withXattrs, its xattrs: one call instead of a syscall round trip per entry.
 * Rejects like fs.readdir (err.code, err.syscall, err.path) when the directory cannot be read.
 */
export async function scanDir(path: PathLike, withXattrs: boolean): Promise<DirScan> {
  return dirScan(await native().scanDir(path, withXattrs), withXattrs);
}

/**
 * The same on this thread. For a small directory (a few dozen entries), handing the scan
 * to the pool and taking the result back costs more of this thread's time than the scan.
 */
export function scanDirSync(path: PathLike, withXattrs: boolean): DirScan {
  return dirScan(native().scanDirSync(path, withXattrs), withXattrs);
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

/**
 * One entry of a scan. Its lstat and xattrs become objects (13 BigInts, an array of pairs)
 * only when asked for: the walk skips the files of a directory unchanged since the last
 * run, and the objects were most of an unchanged re-backup's garbage.
 */
class ScanEntry implements ScannedEntry {
  private stat: EntryStat | null | undefined;
  private xa: Array<[string, Buffer]> | null | undefined;
  readonly errno: number;
  readonly ok: boolean;
  readonly isDir: boolean;
  readonly nlink1: boolean;
  /** Where this entry's xattrs start in r.xattrs; -1: not read. */
  private readonly xfrom: number;

  /** The entry whose fields start at f in r.stats; its xattrs (if read) at xfrom in r.xattrs. */
  constructor(
    readonly name: Buffer,
    private readonly r: RawScan,
    private readonly f: number,
    withXattrs: boolean,
    xfrom: number,
  ) {
    const s = r.stats;
    const flags = s[f + 14]!;
    this.errno = Number(s[f]!);
    this.ok = this.errno === 0 && (flags & FLAG_TIME_RANGE) === 0n;
    this.isDir = this.ok && (Number(s[f + 1]!) & S_IFMT) === S_IFDIR;
    this.nlink1 = this.ok && s[f + 4] === 1n;
    this.xfrom = withXattrs && this.ok && (flags & FLAG_NO_XATTRS) === 0n ? xfrom : -1;
  }

  get st(): EntryStat | null {
    if (this.stat === undefined) {
      const s = this.r.stats;
      const f = this.f;
      this.stat = !this.ok
        ? null
        : {
            mode: s[f + 1]!,
            uid: s[f + 2]!,
            gid: s[f + 3]!,
            nlink: s[f + 4]!,
            size: s[f + 5]!,
            blocks: s[f + 6]!,
            ino: BigInt.asUintN(64, s[f + 7]!),
            dev: BigInt.asUintN(64, s[f + 8]!),
            rdev: BigInt.asUintN(64, s[f + 9]!),
            atimeNs: s[f + 10]!,
            mtimeNs: s[f + 11]!,
            ctimeNs: s[f + 12]!,
            birthtimeNs: s[f + 13]!,
          };
    }
    return this.stat;
  }

  get xattrs(): Array<[string, Buffer]> | null {
    if (this.xa === undefined) {
      if (this.xfrom < 0) this.xa = null;
      else {
        const r = this.r;
        const list: Array<[string, Buffer]> = [];
        const end = r.xends[this.f / SCAN_FIELDS]!;
        let o = this.xfrom;
        while (o < end) {
          const nl = r.xattrs.readUInt32LE(o);
          const key = r.xattrs.toString('utf8', o + 4, o + 4 + nl);
          o += 4 + nl;
          const vl = r.xattrs.readUInt32LE(o);
          list.push([key, Buffer.from(r.xattrs.subarray(o + 4, o + 4 + vl))]);
          o += 4 + vl;
        }
        list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
        this.xa = list;
      }
    }
    return this.xa;
  }
}

function dirScan(r: RawScan, withXattrs: boolean): DirScan {
  const out: ScannedEntry[] = [];
  let prev = 0;
  let xprev = 0;
  for (let i = 0; i < r.ends.length; i++) {
    const name = r.names.subarray(prev, r.ends[i]);
    prev = r.ends[i]!;
    const e = new ScanEntry(name, r, i * SCAN_FIELDS, withXattrs, xprev);
    // With xattrs asked for (no parent tree: every entry will be stored) nothing is saved by
    // waiting, and entries that keep the whole scan alive made the first backup's heap grow
    // (peak RSS +10-20 MB): they are made at once, as plain objects.
    out.push(withXattrs ? { name, st: e.st, errno: e.errno, xattrs: e.xattrs, ok: e.ok, isDir: e.isDir, nlink1: e.nlink1 } : e);
    xprev = r.xends[i]!;
  }
  return {
    entries: out,
    fingerprint: () => createHash('sha256').update(r.names).update(new Uint8Array(r.ends.buffer, r.ends.byteOffset, r.ends.byteLength)).update(new Uint8Array(r.stats.buffer, r.stats.byteOffset, r.stats.byteLength)).digest(),
  };
}

/**
 * Reads whole small regular files of one directory into `out`, back to back, in the order
 * given. expect: [size, mtimeNs, ctimeNs] of each file as scanned. Result per file: its
 * length, -1 when it is no longer what was scanned (changed, replaced), or -errno. With
 * `hash`, each file's blob id (HMAC-SHA256 under macKey) goes to ids, 32 bytes per file.
 */
export function readSmallFiles(dir: PathLike, names: Buffer[], expect: BigInt64Array, out: Buffer, hash?: { macKey: Buffer; ids: Buffer }): Promise<Int32Array> {
  const ends = new Uint32Array(names.length);
  let n = 0;
  for (let i = 0; i < names.length; i++) ends[i] = n += names[i]!.length;
  const all = Buffer.concat(names, n);
  return hash ? native().readSmallFiles(dir, all, ends, expect, out, hash.macKey, hash.ids) : native().readSmallFiles(dir, all, ends, expect, out);
}

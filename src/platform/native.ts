// Typed access to the C addon in native/ (xattrs, SEEK_DATA/SEEK_HOLE, mknod, utimensat
// with nanoseconds): the syscalls Node's fs does not expose.
//
// The addon is loaded lazily, on the first call, so that modules which merely import this
// one (or only use the pure helpers below) still load on a machine where it is not built.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, type BigIntStats } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getSystemErrorMap } from 'node:util';

/** A path as raw bytes (names need not be valid UTF-8) or as a string (encoded as UTF-8). */
export type PathLike = Buffer | string;

interface Addon {
  lgetxattr(path: PathLike, name: PathLike): Buffer | null;
  llistxattr(path: PathLike): string[];
  lsetxattr(path: PathLike, name: PathLike, value: Buffer, flags?: number): void;
  lremovexattr(path: PathLike, name: PathLike): void;
  dataExtents(fd: number, size: number | bigint): Array<[number, number]>;
  mknod(path: PathLike, mode: number, major: number, minor: number): void;
  lchmod(path: PathLike, mode: number): void;
  lutimensNs(path: PathLike, atimeNs: bigint | number | null, mtimeNs: bigint | number | null): void;
  scanDir(path: PathLike, withXattrs: boolean): Promise<RawScan>;
  scanDirSync(path: PathLike, withXattrs: boolean): RawScan;
  readSmallFiles(dir: PathLike, names: Buffer, ends: Uint32Array, expect: BigInt64Array, out: Buffer, macKey?: Buffer, ids?: Buffer): Promise<Int32Array>;
  openBlobs(sealed: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, keyOf: Uint16Array, keys: Uint8Array, ids: Uint8Array, macKey: Uint8Array, rawLengths: Uint32Array, out: Uint8Array, outOffsets: Uint32Array, ok: Uint8Array): void;
  writeFiles(...a: WriteFilesArgs): void;
  openBlobsAsync(...a: Parameters<Addon['openBlobs']>): Promise<void>;
  sealBlobs(...a: SealBlobsArgs): void;
  sealBlobsAsync(...a: SealBlobsArgs): Promise<void>;
  writeFilesAsync(...a: WriteFilesArgs): Promise<void>;
  openBlobToFileAsync(sealed: Uint8Array, key: Uint8Array, id: Uint8Array, macKey: Uint8Array, where: Float64Array, res: Int32Array): Promise<void>;
  blobIdAsync(macKey: Uint8Array, data: Uint8Array, out: Uint8Array): Promise<void>;
  copyRangeAsync?(where: Float64Array, res: Int32Array): Promise<void>;
  gearScan(buf: Uint8Array, from: number, to: number, mask: number, gear: Int32Array, state: Int32Array): number;
}

type SealBlobsArgs = [key: Uint8Array, params: Int32Array, data: Uint8Array, ids: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, out: Uint8Array, outLengths: Uint32Array];

type WriteFilesArgs = [paths: Uint8Array, pathStarts: Uint32Array, replace: Uint8Array, chown: Uint8Array, uids: Uint32Array, gids: Uint32Array, modes: Uint32Array, times: BigInt64Array, data: Uint8Array, segStart: Uint32Array, segOff: Uint32Array, segLen: Uint32Array, res: Int32Array, dirfds: Int32Array];

interface RawScan {
  names: Buffer;
  ends: Uint32Array;
  stats: BigInt64Array;
  xattrs: Buffer;
  xends: Uint32Array;
}

/** lsetxattr flags (linux/xattr.h). */
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

let addon: Addon | undefined;

/** The package root: the nearest ancestor of this file holding tsbak's package.json. */
function packageRoot(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  let dir = start;
  let firstFound: string | undefined;
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      firstFound ??= dir;
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'tsbak') return dir;
      } catch {
        // unreadable package.json: keep walking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  if (firstFound) return firstFound;
  throw new Error(`tsbak: cannot find the package root (package.json) above ${start}`);
}

/** Path of the compiled addon; TSBAK_NATIVE overrides it (packagers, tests). */
export function addonPath(): string {
  return process.env.TSBAK_NATIVE || join(packageRoot(), 'native', 'build', 'Release', 'tsbak_native.node');
}

function load(): Addon {
  if (addon) return addon;
  const p = addonPath();
  if (!existsSync(p)) {
    throw new Error(`tsbak: native addon not built (${p} is missing): run "npm ci" or "npm run build:native"`);
  }
  try {
    addon = createRequire(import.meta.url)(p) as Addon;
  } catch (e) {
    const err = new Error(
      `tsbak: cannot load native addon ${p}: ${(e as Error).message}; rebuild it with "npm run build:native"`,
    );
    (err as Error & { cause?: unknown }).cause = e;
    throw err;
  }
  return addon;
}

// Every function below throws Node-style errors: err.code ('ENOENT', 'ENOTSUP', ...),
// err.errno (negative), err.syscall, err.path. None of them follows symlinks.

/** Value of one extended attribute, or null if the entry has no such attribute (ENODATA). */
export function lgetxattr(path: PathLike, name: PathLike): Buffer | null {
  return load().lgetxattr(path, name);
}

/** Names of all extended attributes the caller may see (trusted.* only as root). */
export function llistxattr(path: PathLike): string[] {
  return load().llistxattr(path);
}

/** Set an extended attribute; flags: 0, XATTR_CREATE or XATTR_REPLACE. */
export function lsetxattr(path: PathLike, name: PathLike, value: Buffer, flags = 0): void {
  load().lsetxattr(path, name, value, flags);
}

export function lremovexattr(path: PathLike, name: PathLike): void {
  load().lremovexattr(path, name);
}

/**
 * Data extents [offset, length] of the open file within [0, size), from SEEK_DATA/SEEK_HOLE.
 * Holes are whatever the filesystem reports (block granularity). On a filesystem without
 * hole support the whole file is one extent. The fd's file offset is left unchanged.
 */
export function dataExtents(fd: number, size: number | bigint): Array<[number, number]> {
  return load().dataExtents(fd, size);
}

/** mknod(2): mode includes the type bits (S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK); subject to umask. */
export function mknod(path: PathLike, mode: number, major = 0, minor = 0): void {
  load().mknod(path, mode, major, minor);
}

/** chmod of the entry at path itself, never a symlink's target (ENOTSUP on a symlink). */
export function lchmod(path: PathLike, mode: number): void {
  load().lchmod(path, mode);
}

/**
 * Set atime and mtime in nanoseconds since the epoch (negative = before 1970) on the entry
 * itself, not a symlink's target. null leaves that time unchanged. The filesystem may clamp
 * times it cannot store (ext4: 1901-12-13 .. 2446-05-10).
 */
export function lutimensNs(path: PathLike, atimeNs: bigint | null, mtimeNs: bigint | null): void {
  load().lutimensNs(path, atimeNs, mtimeNs);
}

// Device numbers, in glibc's dev_t encoding (the one fs.Stats.rdev/dev carry on Linux).
// Pure arithmetic, so it lives here rather than in C.

/** major(3) of a dev_t. */
export function major(dev: bigint | number): number {
  const d = BigInt(dev);
  return Number(((d & 0x00000000000fff00n) >> 8n) | ((d & 0xfffff00000000000n) >> 32n));
}

/** minor(3) of a dev_t. */
export function minor(dev: bigint | number): number {
  const d = BigInt(dev);
  return Number((d & 0xffn) | ((d & 0x00000ffffff00000n) >> 12n));
}

/** makedev(3): the dev_t for a major/minor pair (32 bits each). */
export function makedev(maj: number, min: number): bigint {
  const M = BigInt(maj);
  const m = BigInt(min);
  return ((M & 0xfffn) << 8n) | ((M & 0xfffff000n) << 32n) | (m & 0xffn) | ((m & 0xffffff00n) << 12n);
}

// ---- batched directory work (native/scan.c), on libuv's thread pool ----

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
  return dirScan(await load().scanDir(path, withXattrs), withXattrs);
}

/**
 * The same on this thread. For a small directory (a few dozen entries), handing the scan
 * to the pool and taking the result back costs more of this thread's time than the scan.
 */
export function scanDirSync(path: PathLike, withXattrs: boolean): DirScan {
  return dirScan(load().scanDirSync(path, withXattrs), withXattrs);
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
  return hash ? load().readSmallFiles(dir, all, ends, expect, out, hash.macKey, hash.ids) : load().readSmallFiles(dir, all, ends, expect, out);
}

/** Sealed blobs to open at once (openBlobs): blob i is bytes [offsets[i], +lengths[i]) of sealed, under keys[keyOf[i]]. */
export interface SealedBlobs {
  sealed: Uint8Array;
  offsets: Uint32Array;
  lengths: Uint32Array;
  keyOf: Uint16Array;
  keys: Uint8Array[];
  /** 32 bytes per blob */
  ids: Uint8Array;
  macKey: Uint8Array;
  /** Plaintext length of each blob, from the index. */
  rawLengths: Uint32Array;
}

function openArgs(b: SealedBlobs, out: Uint8Array, outOffsets: Uint32Array, ok: Uint8Array): Parameters<Addon['openBlobs']> {
  const keys = b.keys.length === 1 ? b.keys[0]! : Buffer.concat(b.keys);
  return [b.sealed, b.offsets, b.lengths, b.keyOf, keys, b.ids, b.macKey, b.rawLengths, out, outOffsets, ok];
}

/**
 * Opens many blobs in one synchronous call (native/blob.c; docs/FORMAT.md "Blob"): blob i's
 * plaintext goes to out at outOffsets[i], and ok[i] says whether it opened and matched its id.
 */
export function openBlobs(b: SealedBlobs, out: Uint8Array, outOffsets: Uint32Array): Uint8Array {
  const ok = new Uint8Array(b.offsets.length);
  load().openBlobs(...openArgs(b, out, outOffsets, ok));
  return ok;
}

/** The same on libuv's thread pool: nothing passed in may be touched until it settles. */
export async function openBlobsAsync(b: SealedBlobs, out: Uint8Array, outOffsets: Uint32Array): Promise<Uint8Array> {
  const ok = new Uint8Array(b.offsets.length);
  await load().openBlobsAsync(...openArgs(b, out, outOffsets, ok));
  return ok;
}

/** A file for writeFiles: its directory and name, and which parts of the data make it up. */
/** openat's "relative to the current directory": `dir` is then a path. */
const AT_FDCWD = -100;

export interface NewFile {
  /** The directory: an open descriptor (the restore's O_PATH handles; `name` is then one name in it), or a path. */
  dir: Buffer | number;
  name: Buffer;
  /** Remove what is at the path first. */
  replace: boolean;
  /** Owner to set (fchown), if any. */
  owner?: { uid: number; gid: number } | undefined;
  mode: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  /** Its parts, in order: parts.list[start .. end) (indices into parts.offsets and parts.lengths). */
  start: number;
  end: number;
}

/** The pieces of data files are made of: piece i is data[offsets[i], +lengths[i]); files list pieces by index. */
export interface Parts {
  offsets: Uint32Array;
  lengths: Uint32Array;
  list: Uint32Array;
}

/** How writeFiles went for one file: errno of a hard failure (0: none) and where, and the errno of chown, chmod and the times (0: done). */
export interface NewFileResult {
  errno: number;
  step: 'create' | 'write' | 'close' | null;
  chownErrno: number;
  chmodErrno: number;
  timesErrno: number;
}

const STEPS = [null, 'create', 'write', 'close'] as const;

function writeArgs(files: NewFile[], data: Uint8Array, parts: Parts): WriteFilesArgs {
  const n = files.length;
  const starts = new Uint32Array(n);
  let len = 0;
  let segs = 0;
  for (let i = 0; i < n; i++) {
    const f = files[i]!;
    starts[i] = len;
    len += (typeof f.dir === 'number' ? 0 : f.dir.length + 1) + f.name.length + 1;
    segs += f.end - f.start;
  }
  const paths = Buffer.alloc(len); // zero-filled: each path ends with a NUL
  const dirfds = new Int32Array(n);
  const replace = new Uint8Array(n);
  const chown = new Uint8Array(n);
  const uids = new Uint32Array(n);
  const gids = new Uint32Array(n);
  const modes = new Uint32Array(n);
  const times = new BigInt64Array(2 * n);
  const segStart = new Uint32Array(n + 1);
  const segOff = new Uint32Array(segs);
  const segLen = new Uint32Array(segs);
  segs = 0;
  for (let i = 0; i < n; i++) {
    const f = files[i]!;
    let at = starts[i]!;
    if (typeof f.dir === 'number') dirfds[i] = f.dir;
    else {
      dirfds[i] = AT_FDCWD;
      at += f.dir.copy(paths, at);
      paths[at++] = 0x2f; // '/'
    }
    f.name.copy(paths, at);
    replace[i] = f.replace ? 1 : 0;
    if (f.owner) {
      chown[i] = 1;
      uids[i] = f.owner.uid;
      gids[i] = f.owner.gid;
    }
    modes[i] = f.mode;
    times[2 * i] = f.atimeNs;
    times[2 * i + 1] = f.mtimeNs;
    segStart[i] = segs;
    for (let k = f.start; k < f.end; k++) {
      const piece = parts.list[k]!;
      segOff[segs] = parts.offsets[piece]!;
      segLen[segs++] = parts.lengths[piece]!;
    }
  }
  segStart[n] = segs;
  return [paths, starts, replace, chown, uids, gids, modes, times, data, segStart, segOff, segLen, new Int32Array(5 * n), dirfds];
}

function results(res: Int32Array, n: number): NewFileResult[] {
  const out: NewFileResult[] = [];
  for (let i = 0; i < n; i++) out.push({ errno: res[5 * i]!, step: STEPS[res[5 * i + 1]!] ?? null, chownErrno: res[5 * i + 2]!, chmodErrno: res[5 * i + 3]!, timesErrno: res[5 * i + 4]! });
  return out;
}

/**
 * Creates and writes many files in one synchronous call (native/restore.c), each with its
 * owner, mode and times set through its descriptor: what the restore does for small files it
 * creates itself. Paths (dir/name, or name in the directory descriptor dir) must be
 * shorter than PATH_MAX and times within int64 nanoseconds.
 */
export function writeFiles(files: NewFile[], data: Uint8Array, parts: Parts): NewFileResult[] {
  const args = writeArgs(files, data, parts);
  load().writeFiles(...args);
  return results(args[12], files.length);
}

/** The same on libuv's thread pool: nothing passed in may be touched until it settles. */
export async function writeFilesAsync(files: NewFile[], data: Uint8Array, parts: Parts): Promise<NewFileResult[]> {
  const args = writeArgs(files, data, parts);
  await load().writeFilesAsync(...args);
  return results(args[12], files.length);
}

let oneBlob: { offsets: Uint32Array; lengths: Uint32Array; keyOf: Uint16Array; rawLengths: Uint32Array; ok: Uint8Array } | null | undefined;

/**
 * One blob through openBlobs: its plaintext, or null when it did not open or match its id, or
 * when the addon cannot be loaded (the caller then opens it in TypeScript, which says why).
 */
export function openBlobNative(key: Uint8Array, macKey: Uint8Array, id: Uint8Array, sealed: Uint8Array, rawLength: number): Buffer | null {
  if (oneBlob === undefined) oneBlob = nativeAvailable() ? { offsets: new Uint32Array(1), lengths: new Uint32Array(1), keyOf: new Uint16Array(1), rawLengths: new Uint32Array(1), ok: new Uint8Array(1) } : null;
  if (!oneBlob) return null;
  const out = Buffer.allocUnsafeSlow(rawLength);
  oneBlob.lengths[0] = sealed.length;
  oneBlob.rawLengths[0] = rawLength;
  load().openBlobs(sealed, oneBlob.offsets, oneBlob.lengths, oneBlob.keyOf, key, id, macKey, oneBlob.rawLengths, out, oneBlob.offsets, oneBlob.ok);
  return oneBlob.ok[0] ? out : null;
}

/**
 * Opens one large blob on libuv's thread pool and writes its plaintext (rawLength bytes) at
 * `pos` of the open file `fd` from there: no plaintext buffer on this thread (a compressed
 * blob's is one of a few the pool's threads share). `sealed` is decrypted in place: it must be
 * the caller's own copy, not touched until this settles, and is garbage after. Resolves to
 * the bytes written; 'auth' when the blob does not open (damaged), 'id' when its plaintext
 * does not match the id (nothing is written then); null when the addon cannot be loaded. A
 * failed write rejects with a Node-style error (code, errno, syscall 'write').
 */
export async function openBlobToFileAsync(key: Uint8Array, macKey: Uint8Array, id: Uint8Array, sealed: Uint8Array, rawLength: number, fd: number, pos: number): Promise<number | 'auth' | 'id' | null> {
  if (!nativeAvailable()) return null;
  const res = new Int32Array(2);
  await load().openBlobToFileAsync(sealed, key, id, macKey, Float64Array.of(fd, pos, rawLength), res);
  switch (res[0]) {
    case 1:
      return rawLength;
    case 2:
      return 'id';
    case -1:
      throw errnoError(res[1]!, 'write');
    default:
      return 'auth';
  }
}

/**
 * A blob's id, HMAC-SHA256(macKey, data), computed on libuv's thread pool without copying
 * `data` (which must not change until this settles).
 */
export async function blobIdNativeAsync(macKey: Uint8Array, data: Uint8Array): Promise<Buffer> {
  const out = Buffer.allocUnsafe(32);
  await load().blobIdAsync(macKey, data, out);
  return out;
}

/** An errno as Node's fs words it: code "ENOSPC", message "ENOSPC: no space left on device, write". */
/**
 * Copies `length` bytes of the open file `fd` from offset `from` to offset `to`, in the kernel
 * (copy_file_range, on libuv's pool). True when all were copied; false when the addon, the
 * kernel or the file system cannot (nothing to report: the caller writes the bytes itself).
 */
export async function copyRangeAsync(fd: number, from: number, to: number, length: number): Promise<boolean> {
  if (!nativeAvailable()) return false;
  const addon = load();
  if (!addon.copyRangeAsync) return false; // an addon built before it
  const res = new Int32Array(1);
  await addon.copyRangeAsync(Float64Array.of(fd, from, to, length), res);
  return res[0] === 0;
}

function errnoError(errno: number, syscall: string): NodeJS.ErrnoException {
  const [code, text] = getSystemErrorMap().get(-errno) ?? [`errno ${errno}`, 'unknown error'];
  return Object.assign(new Error(`${code}: ${text}, ${syscall}`), { code, errno: -errno, syscall });
}

/** Blobs to seal (sealBlobs): blob i is bytes [offsets[i], +lengths[i]) of data, with id ids[i] (32 bytes each). */
export interface PlainBlobs {
  key: Uint8Array;
  level: number;
  data: Uint8Array;
  ids: Uint8Array;
  offsets: Uint32Array;
  lengths: Uint32Array;
}

function sealArgs(b: PlainBlobs, out: Uint8Array, outLengths: Uint32Array): SealBlobsArgs {
  return [b.key, Int32Array.of(b.level), b.data, b.ids, b.offsets, b.lengths, out, outLengths];
}

/**
 * Seals blobs as sealBlob does (docs/FORMAT.md "Blob"), one after the other into out (room
 * for the sum of sealedBound(length) needed); returns each one's sealed length.
 */
export function sealBlobs(b: PlainBlobs, out: Uint8Array): Uint32Array {
  const outLengths = new Uint32Array(b.offsets.length);
  load().sealBlobs(...sealArgs(b, out, outLengths));
  return outLengths;
}

/** The same on libuv's thread pool: nothing passed in may be touched until it settles. */
export async function sealBlobsAsync(b: PlainBlobs, out: Uint8Array): Promise<Uint32Array> {
  const outLengths = new Uint32Array(b.offsets.length);
  await load().sealBlobsAsync(...sealArgs(b, out, outLengths));
  return outLengths;
}

/** Most bytes sealBlobs writes for a blob of n bytes: src/format/blob.ts sealedBound (platform imports nothing of ours). */
function sealedBound(n: number): number {
  const l = n + 33;
  return l + Math.floor(l / 8) + 1;
}

let oneSeal: { params: Int32Array; offsets: Uint32Array; lengths: Uint32Array; outLengths: Uint32Array } | null | undefined;

/**
 * One blob through sealBlobs, on this thread: the sealed bytes, or null when the addon cannot
 * be loaded (the caller then seals it in TypeScript). A tree costs a few µs here and ~40 µs
 * of cipher and zstd objects there.
 */
export function sealBlobNative(key: Uint8Array, id: Uint8Array, plain: Uint8Array, level: number): Buffer | null {
  if (oneSeal === undefined) oneSeal = nativeAvailable() ? { params: new Int32Array(1), offsets: new Uint32Array(1), lengths: new Uint32Array(1), outLengths: new Uint32Array(1) } : null;
  if (!oneSeal) return null;
  const out = Buffer.allocUnsafe(sealedBound(plain.length));
  oneSeal.params[0] = level;
  oneSeal.lengths[0] = plain.length;
  load().sealBlobs(key, oneSeal.params, plain, id, oneSeal.offsets, oneSeal.lengths, out, oneSeal.outLengths);
  return out.subarray(0, oneSeal.outLengths[0]);
}

let available: boolean | undefined;

/** Whether the addon loads (callers that have a TypeScript way too); asked once. */
/**
 * FastCDC's gear hash rolled over buf[from, to) from state[0] (native/chunk.c): the index of
 * the first byte after which (h & mask) == 0, or -1 with the hash left in state[0].
 */
export function gearScan(buf: Uint8Array, from: number, to: number, mask: number, gear: Int32Array, state: Int32Array): number {
  return load().gearScan(buf, from, to, mask, gear, state);
}

export function nativeAvailable(): boolean {
  if (available === undefined) {
    try {
      load();
      available = true;
    } catch {
      available = false;
    }
  }
  return available;
}

// A restore's batches of small files (native/restore.c): each created, written, chowned,
// chmodded and timed through its descriptor in one call, at once or on libuv's thread pool.
import { addon } from './addon.js';

type WriteFilesArgs = [paths: Uint8Array, pathStarts: Uint32Array, replace: Uint8Array, chown: Uint8Array, uids: Uint32Array, gids: Uint32Array, modes: Uint32Array, times: BigInt64Array, data: Uint8Array, segStart: Uint32Array, segOff: Uint32Array, segLen: Uint32Array, res: Int32Array, dirfds: Int32Array];

interface Restore {
  writeFiles(...a: WriteFilesArgs): void;
  writeFilesAsync(...a: WriteFilesArgs): Promise<void>;
  copyRangeAsync(where: Float64Array, res: Int32Array): Promise<void>;
}

const native = (): Restore => addon<Restore>();

/** openat's "relative to the current directory": `dir` is then a path. */
const AT_FDCWD = -100;

/** A file for writeFiles: its directory and name, and which parts of the data make it up. */
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
  native().writeFiles(...args);
  return results(args[12], files.length);
}

/** The same on libuv's thread pool: nothing passed in may be touched until it settles. */
export async function writeFilesAsync(files: NewFile[], data: Uint8Array, parts: Parts): Promise<NewFileResult[]> {
  const args = writeArgs(files, data, parts);
  await native().writeFilesAsync(...args);
  return results(args[12], files.length);
}


/**
 * Copies `length` bytes of the open file `fd` from offset `from` to offset `to`, in the kernel
 * (copy_file_range, on libuv's pool); from the open file `sourceFd` when given (readable). True when all were copied; false when the kernel or the
 * file system cannot (nothing to report: the caller writes the bytes itself).
 */
export async function copyRangeAsync(fd: number, from: number, to: number, length: number, sourceFd = fd): Promise<boolean> {
  const res = new Int32Array(1);
  const where = sourceFd === fd ? Float64Array.of(fd, from, to, length) : Float64Array.of(fd, from, to, length, sourceFd);
  await native().copyRangeAsync(where, res);
  return res[0] === 0;
}

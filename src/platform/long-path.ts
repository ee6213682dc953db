// Paths longer than PATH_MAX (4096 bytes with its NUL on Linux). A tree can be nested
// deeper than that: the kernel refuses the joined path (ENAMETOOLONG) in every syscall,
// although each entry is reachable step by step. tar and rsync handle it by walking with
// directory fds (openat & co.); Node has no *at() calls, so we get the same effect through
// procfs: open the longest prefix that fits as an O_PATH directory handle and name the rest
// relative to it as /proc/self/fd/<fd>/<rest>, hop by hop until what is left fits.
//
// No process.chdir (process-wide, so unsafe with concurrent operations). Paths that fit
// are returned unchanged, at no cost: only deep entries pay a few open/close calls.
// Semantics are those of the original path: the kernel resolves the prefix exactly as it
// would have (symlinks in the middle are followed, the last component is untouched).

import { closeSync, constants as C, openSync } from 'node:fs'; // libuv opens with O_CLOEXEC

/** Longest path handed to a syscall (PATH_MAX 4096 minus the NUL, with margin). */
const MAX = 4000;
/** O_PATH (Linux, 010000000 on every common architecture): a handle for lookups only, no read permission needed. */
const O_PATH = 0o10000000;

export interface ShortPath {
  /** A path naming the same entry, shorter than PATH_MAX. */
  path: Buffer;
  /** Closes the directory handles `path` goes through (no-op for a path that fit). */
  close(): void;
}

function tooLong(p: Buffer): Error {
  const e = new Error(`ENAMETOOLONG: name too long, '${p.toString()}'`) as NodeJS.ErrnoException;
  e.code = 'ENAMETOOLONG';
  return e;
}

/** A syscall-usable path for `p`. Close it when done (the handle must stay open while the path is used). */
export function shortPath(p: Buffer | string): ShortPath {
  const full = Buffer.isBuffer(p) ? p : Buffer.from(p);
  if (full.length < MAX) return { path: full, close() {} };
  let fd = -1;
  let base = Buffer.alloc(0); // '' or '/proc/self/fd/<fd>/'
  let rest = full;
  try {
    while (base.length + rest.length >= MAX) {
      // The longest directory prefix of `rest` that fits after `base` (a component is at
      // most 255 bytes, so there is always one unless a name is longer than NAME_MAX).
      const cut = rest.lastIndexOf(0x2f, MAX - base.length - 1);
      if (cut <= 0) throw tooLong(full);
      const next = openSync(Buffer.concat([base, rest.subarray(0, cut)]), O_PATH | C.O_DIRECTORY);
      if (fd >= 0) closeSync(fd); // the new handle does not depend on the old one
      fd = next;
      base = Buffer.from(`/proc/self/fd/${fd}/`);
      rest = rest.subarray(cut + 1);
    }
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    throw e;
  }
  const held = fd;
  let open = true;
  return {
    path: Buffer.concat([base, rest]),
    close() {
      if (open && held >= 0) closeSync(held);
      open = false;
    },
  };
}

/** Runs fn with a syscall-usable path for p, closing the handles afterwards. */
export async function withShortPath<T>(p: Buffer | string, fn: (path: Buffer) => T | Promise<T>): Promise<T> {
  const sp = shortPath(p);
  try {
    return await fn(sp.path);
  } finally {
    sp.close();
  }
}

/** The synchronous form of withShortPath. */
export function withShortPathSync<T>(p: Buffer | string, fn: (path: Buffer) => T): T {
  const sp = shortPath(p);
  try {
    return fn(sp.path);
  } finally {
    sp.close();
  }
}

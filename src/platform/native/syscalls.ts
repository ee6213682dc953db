// The syscalls Node's fs does not expose (native/syscalls.c): xattrs, SEEK_DATA/SEEK_HOLE,
// mknod, lchmod, utimensat with nanoseconds; and dev_t arithmetic.
//
// Every function throws Node-style errors: err.code ('ENOENT', 'ENOTSUP', ...), err.errno
// (negative), err.syscall, err.path. None of them follows symlinks.
import { addon, type PathLike } from './addon.js';

interface Syscalls {
  lgetxattr(path: PathLike, name: PathLike): Buffer | null;
  llistxattr(path: PathLike): string[];
  lsetxattr(path: PathLike, name: PathLike, value: Buffer, flags?: number): void;
  lremovexattr(path: PathLike, name: PathLike): void;
  dataExtents(fd: number, size: number | bigint): Array<[number, number]>;
  mknod(path: PathLike, mode: number, major: number, minor: number): void;
  lchmod(path: PathLike, mode: number): void;
  lutimensNs(path: PathLike, atimeNs: bigint | number | null, mtimeNs: bigint | number | null): void;
  mallocTrim?(): boolean;
}

const native = (): Syscalls => addon<Syscalls>();

/** lsetxattr flags (linux/xattr.h). */
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

/** Value of one extended attribute, or null if the entry has no such attribute (ENODATA). */
export function lgetxattr(path: PathLike, name: PathLike): Buffer | null {
  return native().lgetxattr(path, name);
}

/** Names of all extended attributes the caller may see (trusted.* only as root). */
export function llistxattr(path: PathLike): string[] {
  return native().llistxattr(path);
}

/** Set an extended attribute; flags: 0, XATTR_CREATE or XATTR_REPLACE. */
export function lsetxattr(path: PathLike, name: PathLike, value: Buffer, flags = 0): void {
  native().lsetxattr(path, name, value, flags);
}

export function lremovexattr(path: PathLike, name: PathLike): void {
  native().lremovexattr(path, name);
}

/**
 * Data extents [offset, length] of the open file within [0, size), from SEEK_DATA/SEEK_HOLE.
 * Holes are whatever the filesystem reports (block granularity). On a filesystem without
 * hole support the whole file is one extent. The fd's file offset is left unchanged.
 */
export function dataExtents(fd: number, size: number | bigint): Array<[number, number]> {
  return native().dataExtents(fd, size);
}

/** mknod(2): mode includes the type bits (S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK); subject to umask. */
export function mknod(path: PathLike, mode: number, major = 0, minor = 0): void {
  native().mknod(path, mode, major, minor);
}

/** chmod of the entry at path itself, never a symlink's target (ENOTSUP on a symlink). */
export function lchmod(path: PathLike, mode: number): void {
  native().lchmod(path, mode);
}

/**
 * Set atime and mtime in nanoseconds since the epoch (negative = before 1970) on the entry
 * itself, not a symlink's target. null leaves that time unchanged. The filesystem may clamp
 * times it cannot store (ext4: 1901-12-13 .. 2446-05-10).
 */
export function lutimensNs(path: PathLike, atimeNs: bigint | null, mtimeNs: bigint | null): void {
  native().lutimensNs(path, atimeNs, mtimeNs);
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

/**
 * glibc's malloc_trim(0): the free pages inside the C heaps back to the kernel. For a
 * long-lived process after a burst of work (tsbak watch after a snapshot). False when none
 * were released, on another libc, or with an addon built before it.
 */
export function mallocTrim(): boolean {
  return native().mallocTrim?.() ?? false;
}

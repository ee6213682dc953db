// fuse-native operations over a SnapshotFs: promises to callbacks, errors to errno.
// Every operation that would change something answers EROFS (the kernel already refuses
// most of them, since the mount is made with `ro`).
import { constants as F } from 'node:fs';
import { constants } from 'node:os';
import { TsbakError } from '../errors.js';
import { FsError, type SnapshotFs } from './fs.js';
import { COLD_ERRNO } from './cold.js';

const ERRNO = constants.errno as Record<string, number>;

/** fuse-native takes negative errno values. */
export function errno(name: string): number {
  return -(ERRNO[name] ?? ERRNO.EIO!);
}

export const EROFS = errno('EROFS');
export const ENODATA = errno('ENODATA');
export const ERANGE = errno('ERANGE');

/** The errno a failed operation answers, and whether the failure is worth a log line. */
export function errnoFor(e: unknown): { errno: number; report: boolean } {
  if (e instanceof FsError) return { errno: errno(e.errno), report: false };
  if (e instanceof TsbakError) {
    switch (e.code) {
      case 'COLD':
        return { errno: errno(COLD_ERRNO), report: true };
      case 'WRITE_ONLY_KEY':
        return { errno: errno('EACCES'), report: true };
      default:
        return { errno: errno('EIO'), report: true };
    }
  }
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code && ERRNO[code]) return { errno: errno(code), report: true };
  return { errno: errno('EIO'), report: true };
}

type Cb = (...args: any[]) => void;

const O_ACCMODE = 3;
const WRITE_FLAGS = F.O_CREAT | F.O_TRUNC | F.O_APPEND;

export function makeOps(fs: SnapshotFs, log: (msg: string) => void): Record<string, Cb> {
  const fail = (op: string, path: string, cb: Cb) => (e: unknown) => {
    const { errno: n, report } = errnoFor(e);
    if (report) log(`${op} ${path}: ${(e as Error)?.message ?? String(e)}`);
    cb(n);
  };
  const erofs = (...args: any[]) => (args[args.length - 1] as Cb)(EROFS);

  return {
    getattr(path: string, cb: Cb) {
      fs.getattr(path).then((st) => cb(0, st), fail('getattr', path, cb));
    },
    readdir(path: string, cb: Cb) {
      fs.readdir(path).then(({ names, stats }) => cb(0, names, stats), fail('readdir', path, cb));
    },
    readlink(path: string, cb: Cb) {
      fs.readlink(path).then((target) => cb(0, target), fail('readlink', path, cb));
    },
    access(path: string, mode: number, cb: Cb) {
      if (mode & F.W_OK) return cb(EROFS);
      fs.resolve(path).then((e) => cb(e ? 0 : errno('ENOENT')), fail('access', path, cb));
    },
    open(path: string, flags: number, cb: Cb) {
      if ((flags & O_ACCMODE) !== F.O_RDONLY || flags & WRITE_FLAGS) return cb(EROFS);
      fs.open(path).then((fd) => cb(0, fd), fail('open', path, cb));
    },
    read(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) {
      try {
        const n = fs.read(fd, buf, len, pos);
        if (typeof n === 'number') cb(n);
        else n.then((k) => cb(k), fail('read', path, cb));
      } catch (e) {
        fail('read', path, cb)(e);
      }
    },
    release(_path: string, fd: number, cb: Cb) {
      fs.release(fd);
      cb(0);
    },
    getxattr(path: string, name: string, _position: number, cb: Cb) {
      fs.getxattr(path, name).then((v) => (v ? cb(0, v) : cb(ENODATA)), fail('getxattr', path, cb));
    },
    listxattr(path: string, cb: Cb) {
      fs.listxattr(path).then((names) => cb(0, names), fail('listxattr', path, cb));
    },
    statfs(_path: string, cb: Cb) {
      // ST_RDONLY; no free space: nothing can be written here.
      cb(0, { bsize: 4096, frsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: fs.snapshotCount, ffree: 0, favail: 0, fsid: 0, flag: 1, namemax: 255 });
    },
    // Everything that writes.
    write: erofs,
    create: erofs,
    truncate: erofs,
    ftruncate: erofs,
    unlink: erofs,
    rename: erofs,
    link: erofs,
    symlink: erofs,
    mkdir: erofs,
    rmdir: erofs,
    mknod: erofs,
    chmod: erofs,
    chown: erofs,
    utimens: erofs,
    setxattr: erofs,
    removexattr: erofs,
  };
}

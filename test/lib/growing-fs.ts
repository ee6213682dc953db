// A FUSE file system, served by this test process through our libfuse binding, whose file
// `growing.log` grows by GROW bytes at every read the kernel passes on. A reader's stat after
// any read differs from the stat before it, every time: "changed while being read" without a
// second process racing the reader. Attributes are never cached (timeouts 0), nor pages.
import { spawnSync } from 'node:child_process';
import { constants } from 'node:os';
import * as path from 'node:path';
import { FuseOp, STAT_FIELDS, fuseNative, type FuseReq, type FuseSession } from '../../src/platform/native/fuse.js';
import { statFields, S_IFDIR, S_IFREG } from '../../src/fuse/stat.js';

export const GROW = 4096;

export interface GrowingFs {
  /** The bytes of growing.log as it is now (a prefix of `full`). */
  current(): Buffer;
  /** Reads of growing.log served so far. */
  reads(): number;
  unmount(): void;
}

const { ENOENT, ENODATA, ENOSYS, EISDIR } = constants.errno;

/** `full`: everything growing.log may become; it starts as its first `initial` bytes. `steady`: steady.txt, which never changes. */
export function mountGrowingFs(mountpoint: string, full: Buffer, initial: number, steady: Buffer): GrowingFs {
  const native = fuseNative();
  let size = initial;
  let reads = 0;
  const ROOT = 1;
  const GROWING = 2;
  const STEADY = 3;
  const names: Array<[string, number]> = [['growing.log', GROWING], ['steady.txt', STEADY]];
  const t0 = 1_700_000_000n * 1_000_000_000n;
  const statOf = (ino: number, out = new Float64Array(STAT_FIELDS), at = 0): Float64Array => {
    const sz = ino === GROWING ? size : ino === STEADY ? steady.length : 0;
    // Every read moves the file's times too, as an append would.
    const t = ino === GROWING ? t0 + BigInt(reads) * 1_000_000n : t0;
    statFields({ ino, mode: ino === ROOT ? S_IFDIR | 0o755 : S_IFREG | 0o644, nlink: ino === ROOT ? 2 : 1, uid: 0, gid: 0, rdev: 0, size: sz, blksize: 4096, blocks: Math.ceil(sz / 512), atimeNs: t, mtimeNs: t, ctimeNs: t }, out, at);
    return out;
  };
  const onRequest = (op: number, req: FuseReq, ino: number, a: number, b: number, _fh: number, name: Buffer | undefined): void => {
    switch (op) {
      case FuseOp.lookup: {
        const hit = ino === ROOT ? names.find(([n]) => n === name!.toString()) : undefined;
        return hit ? native.fuseReplyEntry(req, statOf(hit[1]), 0, 0) : native.fuseReplyErr(req, ENOENT);
      }
      case FuseOp.getattr:
        return native.fuseReplyAttr(req, statOf(ino), 0);
      case FuseOp.open:
        return ino === ROOT ? native.fuseReplyErr(req, EISDIR) : native.fuseReplyOpen(req, ino, false);
      case FuseOp.read: {
        const data = ino === GROWING ? full : steady;
        const end = Math.min(b + a, ino === GROWING ? size : steady.length);
        const piece = Buffer.from(data.subarray(Math.min(b, end), end));
        if (ino === GROWING) {
          reads++;
          size = Math.min(full.length, size + GROW);
        }
        return native.fuseReplyBuf(req, piece);
      }
      case FuseOp.release:
      case FuseOp.releasedir:
        return native.fuseReplyErr(req, 0);
      case FuseOp.opendir:
        return native.fuseReplyOpen(req, 1, false);
      case FuseOp.readdir:
      case FuseOp.readdirplus: {
        const all: Array<[string, number]> = [['.', ROOT], ['..', ROOT], ...names];
        const from = Math.max(0, b);
        const list = all.slice(from);
        const stats = new Float64Array(list.length * STAT_FIELDS);
        list.forEach(([, i], k) => statOf(i, stats, k * STAT_FIELDS));
        const offsets = Float64Array.from(list, (_, k) => from + k + 1);
        native.fuseReplyDir(req, op === FuseOp.readdirplus, a, list.map(([n]) => Buffer.from(n)), stats, offsets, 0, ino, 0);
        return;
      }
      case FuseOp.getxattr:
        return native.fuseReplyErr(req, ENODATA);
      case FuseOp.listxattr:
        return a === 0 ? native.fuseReplyXattrSize(req, 0) : native.fuseReplyBuf(req, Buffer.alloc(0));
      case FuseOp.statfs:
        return native.fuseReplyStatfs(req, 3);
      default:
        return native.fuseReplyErr(req, ENOSYS);
    }
  };
  let session: FuseSession | undefined = native.fuseMount(mountpoint, ['-o', 'fsname=growing,subtype=growing,ro'], { onRequest, onEnd: () => {} });
  return {
    current: () => full.subarray(0, size),
    reads: () => reads,
    unmount: () => {
      if (session) native.fuseExit(session);
      session = undefined;
      spawnSync('fusermount', ['-u', '-z', path.resolve(mountpoint)]);
    },
  };
}


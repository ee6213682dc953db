// Reads one regular file's data extents in blocks, for the chunker. Holes (found with
// SEEK_DATA/SEEK_HOLE) are never read. Detects a file that changes while it is read.
import { closeSync, constants as C, fstatSync, openSync, promises as fsp, readSync, type BigIntStats } from 'node:fs';
import { fileExtents } from './capture.js';
import { shortPath, withShortPath } from '../platform/long-path.js';
import type { EntryStat } from '../platform/native/scan.js';


export interface OpenedFile {
  fh: fsp.FileHandle;
  st: BigIntStats;
  /** Data extents; one extent [0, size) for a file without holes, [] when empty. */
  extents: Array<[number, number]>;
}

export async function openForBackup(path: Buffer): Promise<OpenedFile> {
  // withShortPath: paths deeper than PATH_MAX are opened through a directory handle.
  const fh = await withShortPath(path, async (sp) => {
    try {
      // O_NOATIME: reading for a backup should not change what the backup records next time.
      return await fsp.open(sp, C.O_RDONLY | C.O_NOATIME | C.O_NOFOLLOW);
    } catch (e: any) {
      if (e.code !== 'EPERM') throw e;
      return await fsp.open(sp, C.O_RDONLY | C.O_NOFOLLOW);
    }
  });
  try {
    const st = await fh.stat({ bigint: true });
    const size = Number(st.size);
    // Only ask for holes when the allocation says there may be some.
    const maybeSparse = Number(st.blocks) * 512 < size;
    const extents = size === 0 ? [] : maybeSparse ? fileExtents(fh.fd, size) : ([[0, size]] as Array<[number, number]>);
    return { fh, st, extents };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** Whether the file changed between two fstat results (size, mtime or ctime). */
export function changedBetween(a: EntryStat, b: EntryStat): boolean {
  return a.size !== b.size || a.mtimeNs !== b.mtimeNs || a.ctimeNs !== b.ctimeNs;
}

/**
 * Small files (one chunk) are read with synchronous calls: for page-cached data an
 * open/read/fstat/close costs a few microseconds, while the promise API pays a thread-pool
 * round trip per call (measured: 4x slower on a tree of 54,000 small files).
 * Reads the whole file into `buf` and returns its length, or null when the file changed
 * against `st` (size, mtime or ctime) while it was read: the caller then uses the general
 * path, which retries.
 */
export function readSmallSync(path: Buffer, st: EntryStat, buf: Buffer): number | null {
  const size = Number(st.size);
  const sp = shortPath(path);
  try {
    let fd: number;
    try {
      fd = openSync(sp.path, C.O_RDONLY | C.O_NOATIME | C.O_NOFOLLOW);
    } catch (e: any) {
      if (e.code !== 'EPERM') throw e;
      fd = openSync(sp.path, C.O_RDONLY | C.O_NOFOLLOW);
    }
    try {
      let got = 0;
      while (got < size) {
        const n = readSync(fd, buf, got, size - got, got);
        if (n === 0) break;
        got += n;
      }
      const after = fstatSync(fd, { bigint: true });
      return got === size && !changedBetween(st, after) ? got : null;
    } finally {
      closeSync(fd);
    }
  } finally {
    sp.close();
  }
}

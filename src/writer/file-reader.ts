// Reads one regular file's data extents in blocks, for the chunker. Holes (found with
// SEEK_DATA/SEEK_HOLE) are never read. Detects a file that changes while it is read.
import { constants as C, promises as fsp, type BigIntStats } from 'node:fs';
import { fileExtents } from './capture.js';

const BLOCK = 4 << 20;

export interface OpenedFile {
  fh: fsp.FileHandle;
  st: BigIntStats;
  /** Data extents; one extent [0, size) for a file without holes, [] when empty. */
  extents: Array<[number, number]>;
}

export async function openForBackup(path: Buffer): Promise<OpenedFile> {
  let fh: fsp.FileHandle;
  try {
    // O_NOATIME: reading for a backup should not change what the backup records next time.
    fh = await fsp.open(path, C.O_RDONLY | C.O_NOATIME | C.O_NOFOLLOW);
  } catch (e: any) {
    if (e.code !== 'EPERM') throw e;
    fh = await fsp.open(path, C.O_RDONLY | C.O_NOFOLLOW);
  }
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

/** Blocks of one extent. A file that shrinks while read yields what was there. */
export async function* readExtent(fh: fsp.FileHandle, offset: number, length: number): AsyncGenerator<Buffer> {
  let pos = offset;
  const end = offset + length;
  while (pos < end) {
    const want = Math.min(BLOCK, end - pos);
    const buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await fh.read(buf, got, want - got, pos + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got === 0) return;
    yield got === want ? buf : buf.subarray(0, got);
    pos += got;
    if (got < want) return;
  }
}

/** Whether the file changed between two fstat results (size, mtime or ctime). */
export function changedBetween(a: BigIntStats, b: BigIntStats): boolean {
  return a.size !== b.size || a.mtimeNs !== b.mtimeNs || a.ctimeNs !== b.ctimeNs;
}

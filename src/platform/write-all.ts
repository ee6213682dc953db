// Positioned writes that put every byte down or fail: a write that takes nothing and reports
// no error (a full device, on some filesystems) would otherwise make the loop spin forever.
import { write, writeSync } from 'node:fs';

/** Writes all of data at pos of fd; returns its length. Throws ENOSPC when a write takes nothing. */
export function writeAllAtSync(fd: number, data: Uint8Array, pos: number): number {
  let done = 0;
  while (done < data.length) {
    const n = writeSync(fd, data, done, data.length - done, pos + done);
    if (n === 0) throw Object.assign(new Error(`ENOSPC: no space left on device, write (0 of ${data.length - done} bytes taken)`), { code: 'ENOSPC' });
    done += n;
  }
  return data.length;
}

/** writeAllAtSync on libuv's pool: appends all of data at fd's offset (pos null) or at pos. */
export async function writeAllAt(fd: number, data: Uint8Array, pos: number | null): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const n = await new Promise<number>((resolve, reject) => write(fd, data, done, data.length - done, pos === null ? null : pos + done, (e, written) => (e ? reject(e) : resolve(written))));
    if (n === 0) throw Object.assign(new Error(`ENOSPC: no space left on device, write (0 of ${data.length - done} bytes taken)`), { code: 'ENOSPC' });
    done += n;
  }
}

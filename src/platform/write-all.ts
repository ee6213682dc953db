// Positioned writes that put every byte down or fail: a write that takes nothing and reports
// no error (a full device, on some filesystems) would otherwise make the loop spin forever.
import { writeSync } from 'node:fs';

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

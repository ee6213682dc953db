// Replacing a small local file whole: written beside it under a name of this process, then
// renamed over it, so a reader sees the old file or the new one, never half of one.
import { promises as fsp } from 'node:fs';

export async function replaceFile(file: string, data: Buffer | string, mode = 0o600): Promise<void> {
  const tmp = `${file}.${process.pid}`;
  await fsp.writeFile(tmp, data, { mode });
  await fsp.rename(tmp, file);
}

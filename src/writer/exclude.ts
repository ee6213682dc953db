// What the file finder leaves out. The full implementation (gitignore-style patterns,
// CACHEDIR.TAG, size limits) lives in exclude-rules.ts; the walker only sees this interface.
import type { BigIntStats } from 'node:fs';

export interface Excluder {
  /** True if the entry (and, for a directory, everything below it) is left out. */
  excludes(path: Buffer, isDir: boolean, st: BigIntStats): Promise<boolean>;
}

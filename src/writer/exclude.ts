// What the file finder leaves out. The full implementation (gitignore-style patterns,
// CACHEDIR.TAG, size limits) lives in exclude-rules.ts; the walker only sees this interface.
import type { EntryStat } from '../platform/native/scan.js';

export interface Excluder {
  /** True if the entry (and, for a directory, everything below it) is left out. */
  excludes(path: Buffer, isDir: boolean, st: EntryStat): Promise<boolean>;
  /** Everything the answers depend on besides the entry, as a string (the writer's directory cache compares it); absent: unknown. */
  readonly fingerprint?: string;
}

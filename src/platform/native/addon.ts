// The native addon (native/, built by `npm run build:native`), loaded on first use. One
// module per C file wraps its part: syscalls.ts, scan.ts, blob.ts, restore.ts, chunk.ts.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../package.js';

/** A path as raw bytes (names need not be valid UTF-8) or as a string (encoded as UTF-8). */
export type PathLike = Buffer | string;

let loaded: unknown;

/** Path of the compiled addon; TSBAK_NATIVE overrides it (packagers, tests). */
export function addonPath(): string {
  return process.env.TSBAK_NATIVE || join(packageRoot(), 'native', 'build', 'Release', 'tsbak_native.node');
}

/**
 * The addon's exports, as the caller's view of them (each module declares the functions of
 * its C file). Throws a one-line Error naming `npm run build:native` when it cannot load.
 */
export function addon<T>(): T {
  if (loaded) return loaded as T;
  const p = addonPath();
  if (!existsSync(p)) throw new Error(`the native addon is not built (${p} is missing): run "npm run build:native"`);
  try {
    loaded = createRequire(import.meta.url)(p);
  } catch (e) {
    throw new Error(`cannot load the native addon ${p} (${(e as Error).message.split('\n')[0]}): rebuild it with "npm run build:native"`, { cause: e });
  }
  return loaded as T;
}

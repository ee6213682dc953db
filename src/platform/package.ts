// Where tsbak is installed, and its version: read from the package.json at the package root.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: the nearest ancestor of this file holding tsbak's package.json. */
export function packageRoot(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  let dir = start;
  let firstFound: string | undefined;
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      firstFound ??= dir;
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'tsbak') return dir;
      } catch {
        // unreadable package.json: keep walking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  if (firstFound) return firstFound;
  throw new Error(`tsbak: cannot find the package root (package.json) above ${start}`);
}

let version: string | undefined;

/** The program's version, from package.json (read once). */
export function programVersion(): string {
  version ??= (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  return version;
}

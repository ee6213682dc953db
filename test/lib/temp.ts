// Temporary directories for tests, always removed.
//
// tempDir(t) makes a directory under os.tmpdir() and removes it when `t` ends, passed or
// failed. tap runs a test's teardowns last-registered first, so whatever is registered
// after the directory (a mount on it, a server writing into it) is stopped before the
// directory goes. Removal is by rm(1): it walks with openat(), so trees deeper than
// PATH_MAX go too, and with --one-file-system it never descends into a mount left behind.
// Directories whose teardown never ran (the process ended early) are removed at exit.
// TSBAK_KEEP_TMP=1 keeps them all, for a look.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** What tempDir needs of a tap test: its teardown. */
export interface HasTeardown {
  teardown(fn: () => unknown): void;
}

const live = new Set<string>();

/** Removes `dir` and everything below it, now (unless TSBAK_KEEP_TMP is set). Never throws. */
export function removeDir(dir: string): void {
  live.delete(dir);
  if (process.env.TSBAK_KEEP_TMP) return;
  const r = spawnSync('rm', ['-rf', '--one-file-system', '--', dir], { encoding: 'utf8' });
  if (existsSync(dir)) process.stderr.write(`warning: could not remove the temporary directory ${dir}: ${r.stderr || r.error?.message || `rm exited ${r.status}`}\n`);
}

/** A new directory whose removal is up to the caller (removeDir); removed at process exit if still there. */
export function makeTempDir(prefix = 'tsbak-test-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  live.add(dir);
  return dir;
}

/** A new empty directory, removed when `t` ends. */
export function tempDir(t: HasTeardown, prefix = 'tsbak-test-'): string {
  const dir = makeTempDir(prefix);
  t.teardown(() => removeDir(dir));
  return dir;
}

process.once('exit', () => {
  for (const dir of [...live]) removeDir(dir);
});

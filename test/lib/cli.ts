// Runs the real executables (bin/*) as child processes, as a user would.
import { spawnSync, spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, tempDir, type HasTeardown } from './temp.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = (name: string) => path.join(ROOT, 'bin', name);

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

// The programs' cache directory unless a test names its own: one per test process, removed
// when it exits (test/lib/temp.ts).
let cacheDir: string | undefined;

export function testEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // tap's loader hooks (NODE_OPTIONS) must not leak into the programs under test.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('TAP')));
  const cache = extra.TSBAK_CACHE_DIR ?? (cacheDir ??= makeTempDir('tsbak-test-cache-'));
  return { ...env, TSBAK_PASSWORD: 'correct horse', TSBAK_FAST_KDF: '1', TSBAK_CACHE_DIR: cache, ...extra };
}

export function run(bin: string, args: string[], env: Record<string, string> = {}, input?: string): RunResult {
  const r = spawnSync(BIN(bin), args, { env: testEnv(env), encoding: 'utf8', input, maxBuffer: 64 << 20 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function start(bin: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(BIN(bin), args, { env: testEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The last line of a command's stdout as JSON (the --json summary after any progress lines). */
export function lastJson(stdout: string): any {
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

/** `tsbak init` of a new local repository (`<temporary dir>/repo`, removed when `t` ends). */
export function newRepo(t: HasTeardown, env: Record<string, string> = {}): string {
  const repo = path.join(tempDir(t), 'repo');
  const r = run('tsbak', ['init', repo], env);
  if (r.code !== 0) throw new Error(`tsbak init ${repo} exited ${r.code}: ${r.stderr}`);
  return repo;
}

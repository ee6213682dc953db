// Runs the real executables (bin/*) as child processes, as a user would.
import { spawnSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = (name: string) => path.join(ROOT, 'bin', name);

export function tmp(prefix = 'tsbak-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function testEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // tap's loader hooks (NODE_OPTIONS) must not leak into the programs under test.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !k.startsWith('TAP')));
  return { ...env, TSBAK_PASSWORD: 'correct horse', TSBAK_FAST_KDF: '1', TSBAK_CACHE_DIR: path.join(tmpdir(), 'tsbak-test-cache'), ...extra };
}

export function run(bin: string, args: string[], env: Record<string, string> = {}, input?: string): RunResult {
  const r = spawnSync(BIN(bin), args, { env: testEnv(env), encoding: 'utf8', input, maxBuffer: 64 << 20 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function start(bin: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(BIN(bin), args, { env: testEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
}

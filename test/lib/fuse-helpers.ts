// Real FUSE mounts in tests: mount with bin/mount.tsbak, find the daemon, and always
// unmount (t.teardown), even when a test fails halfway.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseMountinfo } from '../../src/fuse/mountinfo.js';
import { run, type RunResult } from './cli.js';
import type { HasTeardown } from './temp.js';

export function isMounted(dir: string): boolean {
  const abs = path.resolve(dir);
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'latin1')).some((m) => m.mountpoint === abs && m.fstype === 'fuse.tsbak');
}

/** Pids of mount daemons serving `dir` (node .../mount.js <repo> <dir> ...). */
export function daemonPids(dir: string): number[] {
  const abs = path.resolve(dir);
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (argv.some((a) => a.endsWith('/cli/mount.js')) && argv.includes(abs)) pids.push(Number(p));
  }
  return pids;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, everyMs = 100): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** mount.tsbak in its default (background) mode. */
export function mountBg(repo: string, dir: string, options: string[] = [], env: Record<string, string> = {}): RunResult {
  return run('mount.tsbak', [repo, dir, ...(options.length ? ['-o', options.join(',')] : [])], env);
}

/** Unmounts if mounted and makes sure no daemon for `dir` is left. Safe to call any time. */
export async function cleanupMount(dir: string): Promise<void> {
  if (isMounted(dir)) spawnSync('fusermount', ['-u', '-z', path.resolve(dir)]);
  try {
    await waitFor(`the daemon of ${dir} to exit`, () => daemonPids(dir).length === 0, 5000);
  } catch {
    for (const pid of daemonPids(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // it exited in the meantime
      }
    }
  }
  if (isMounted(dir)) spawnSync('fusermount', ['-u', '-z', path.resolve(dir)]);
}

/**
 * Makes `dir` (an empty directory to mount on) and unmounts it when `t` ends (cleanupMount).
 * Call it after creating the temporary directory that holds `dir`: tap runs teardowns last
 * registered first, so the unmount comes before that directory is removed.
 */
export function mountPoint(t: HasTeardown, dir: string): string {
  mkdirSync(dir);
  t.teardown(() => cleanupMount(dir));
  return dir;
}

/**
 * Backs `src` up into a new repository and mounts it at `dir/mnt` (unmounted at teardown):
 * the mount point, and where `src` is inside it.
 */
export function backupAndMount(t: HasTeardown & { equal(found: unknown, wanted: unknown, msg: string): unknown }, src: string, dir: string, repo: string): { mnt: string; inMount: string } {
  const w = run('tsbak-write', [repo, src]);
  t.equal(w.code, 0, w.stderr);
  const mnt = mountPoint(t, path.join(dir, 'mnt'));
  const m = mountBg(repo, mnt);
  t.equal(m.code, 0, m.stderr);
  return { mnt, inMount: path.join(mnt, 'snapshots/latest', src) };
}

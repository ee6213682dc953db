// Killed at every step: a command stopped by SIGKILL just before or just after each change
// it makes to the repository (TSBAK_CRASH_AT, src/backend/crash-point.ts) leaves a
// repository that `check --read-data` passes and whose every snapshot restores identical to
// what it saved; running the command again then completes.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { BIN, run, testEnv } from './lib/cli.js';
import { tempDir } from './lib/temp.js';
import { compareTrees, walkTree, type Entry } from './lib/tree-compare.js';

interface Crashed {
  killed: boolean;
  code: number | null;
  stderr: string;
}

function runCrashing(bin: string, args: string[], crashAt: string, env: Record<string, string> = {}): Crashed {
  const r = spawnSync(BIN(bin), args, { env: testEnv({ ...env, TSBAK_CRASH_AT: crashAt }), encoding: 'utf8', maxBuffer: 64 << 20 });
  return { killed: r.signal === 'SIGKILL', code: r.status, stderr: r.stderr };
}

/** Deterministic bytes: a file's content depends only on its name and generation. */
function bytesFor(name: string, gen: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  let x = [...`${name}:${gen}`].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Generation `gen` of the source tree: some files change, some come and go. */
function writeGeneration(src: string, gen: number): void {
  rmSync(src, { recursive: true, force: true });
  mkdirSync(path.join(src, 'sub'), { recursive: true });
  for (let i = 0; i < 12; i++) {
    const name = `f${i}`;
    if ((i + gen) % 5 === 0) continue; // comes and goes
    const changes = i % 3 === 0 ? gen : 0; // a third change every generation
    const size = [100, 3000, 70_000, 300_000][i % 4]!;
    writeFileSync(path.join(src, i % 2 ? 'sub' : '', name), bytesFor(name, changes, size));
  }
  writeFileSync(path.join(src, 'big'), bytesFor('big', gen % 2, 1_500_000));
}

class Repo {
  readonly sources = new Map<string, Map<string, Entry>>(); // snapshot id -> the tree it saved
  constructor(
    readonly repo: string,
    readonly src: string,
    readonly scratch: string,
  ) {}

  snapshotIds(): string[] {
    const r = run('tsbak', ['snapshots', this.repo, '--json']);
    if (r.code !== 0) throw new Error(`snapshots exited ${r.code}: ${r.stderr}`);
    return (JSON.parse(r.stdout) as Array<{ id: string }>).map((s) => s.id);
  }

  /** Every snapshot restores identical to the tree it saved; check --read-data passes. */
  verify(t: Test, label: string): void {
    const c = run('tsbak', ['check', '--read-data', this.repo]);
    t.equal(c.code, 0, `${label}: check --read-data passes${c.code ? `: ${c.stdout}${c.stderr}` : ''}`);
    for (const id of this.snapshotIds()) {
      const want = this.sources.get(id);
      if (!want) {
        t.fail(`${label}: snapshot ${id.slice(0, 8)} is not one a completed or killed backup could have made`);
        continue;
      }
      const target = path.join(this.scratch, 'restore');
      rmSync(target, { recursive: true, force: true });
      const r = run('tsbak', ['restore', this.repo, id, '--target', target]);
      t.equal(r.code, 0, `${label}: snapshot ${id.slice(0, 8)} restores${r.code ? `: ${r.stderr}` : ''}`);
      if (r.code === 0) t.same(compareTrees(want, walkTree(path.join(target, this.src)), { skip: ['atimeNs'] }), [], `${label}: snapshot ${id.slice(0, 8)} is identical`);
    }
  }

  /** Snapshots that appeared since `before` saved the source as it is now. */
  recordNew(before: string[], tree: Map<string, Entry>): void {
    for (const id of this.snapshotIds()) if (!before.includes(id)) this.sources.set(id, tree);
  }
}

t.test('backup killed before each of its changes, then after each', async (t) => {
  const dir = tempDir(t, 'tsbak-kill-');
  const src = path.join(dir, 'src');
  const repoDir = path.join(dir, 'repo');
  t.equal(run('tsbak', ['init', repoDir, '--pack-size', '1']).code, 0);
  const r = new Repo(repoDir, src, dir);
  writeGeneration(src, 0);
  let before = r.snapshotIds();
  t.equal(run('tsbak-write', [repoDir, src, '-q']).code, 0, 'a first complete backup');
  r.recordNew(before, walkTree(src));

  let steps = 0;
  for (let gen = 1; gen <= 2; gen++) {
    writeGeneration(src, gen);
    const tree = walkTree(src);
    for (const after of [gen === 2]) {
      for (let n = 1; n < 200; n++) {
        before = r.snapshotIds();
        const c = runCrashing('tsbak-write', [repoDir, src, '-q'], `${n}${after ? ':after' : ''}`);
        r.recordNew(before, tree);
        if (!c.killed) {
          t.equal(c.code, 0, `gen ${gen}: the backup completes once it makes fewer than ${n} changes${c.code ? `: ${c.stderr}` : ''}`);
          break;
        }
        steps++;
        r.verify(t, `gen ${gen}, killed ${after ? 'after' : 'before'} change ${n}`);
      }
    }
  }
  t.ok(steps >= 8, `the backups were killed at ${steps} points`);
});

/** A repository with `gens` snapshots of a changing tree (generations 0..gens-1). */
function repoWithHistory(t: Test, gens: number): Repo {
  const dir = tempDir(t, 'tsbak-kill-');
  const src = path.join(dir, 'src');
  const repoDir = path.join(dir, 'repo');
  if (run('tsbak', ['init', repoDir, '--pack-size', '1']).code !== 0) throw new Error('init failed');
  const r = new Repo(repoDir, src, dir);
  for (let gen = 0; gen < gens; gen++) {
    writeGeneration(src, gen);
    const before = r.snapshotIds();
    const b = run('tsbak-write', [repoDir, src, '-q']);
    if (b.code !== 0) throw new Error(`backup exited ${b.code}: ${b.stderr}`);
    r.recordNew(before, walkTree(src));
  }
  return r;
}

/** Runs `args` killed at change 1, 2, ... until it completes; verifies after each kill. */
function killAtEachStep(t: Test, r: Repo, args: string[], after: boolean): number {
  for (let n = 1; n < 500; n++) {
    const c = runCrashing('tsbak', args, `${n}${after ? ':after' : ''}`);
    if (!c.killed) {
      t.equal(c.code, 0, `${args[0]} completes once it makes fewer than ${n} changes${c.code ? `: ${c.stderr}` : ''}`);
      return n - 1;
    }
    r.verify(t, `${args[0]} killed ${after ? 'after' : 'before'} change ${n}`);
  }
  t.fail(`${args.join(' ')} never completed`);
  return 0;
}

t.test('forget --prune killed before each of its changes, and after each', async (t) => {
  for (const after of [false, true]) {
    const r = repoWithHistory(t, 4);
    const steps = killAtEachStep(t, r, ['forget', r.repo, '--keep-last', '2', '--prune', '--max-unused', '0%'], after);
    t.ok(steps >= 3, `killed at ${steps} points`);
    t.equal(r.snapshotIds().length, 2, 'two snapshots kept');
    r.verify(t, 'after the forget and prune completed');
  }
});

t.test('repair index killed before each of its changes, then completed: the repository is whole', async (t) => {
  const r = repoWithHistory(t, 3);
  // The damage to repair: the newest index file is lost (its packs are intact).
  const indexDir = path.join(r.repo, 'index');
  const newest = readdirSync(indexDir)
    .map((n) => ({ n, m: statSync(path.join(indexDir, n)).mtimeMs }))
    .sort((a, b) => b.m - a.m)[0]!.n;
  rmSync(path.join(indexDir, newest));
  const template = path.join(r.scratch, 'damaged');
  cpSync(r.repo, template, { recursive: true });
  let n = 1;
  for (; n < 200; n++) {
    rmSync(r.repo, { recursive: true, force: true });
    cpSync(template, r.repo, { recursive: true });
    const c = runCrashing('tsbak', ['repair', 'index', r.repo], String(n));
    if (!c.killed) {
      t.equal(c.code, 0, `repair index completes once it makes fewer than ${n} changes${c.code ? `: ${c.stderr}` : ''}`);
      break;
    }
    const again = run('tsbak', ['repair', 'index', r.repo]);
    t.equal(again.code, 0, `killed before change ${n}, a second repair index completes${again.code ? `: ${again.stderr}` : ''}`);
    r.verify(t, `repair index killed before change ${n}, then run again`);
  }
  t.ok(n > 2, `killed at ${n - 1} points`);
  r.verify(t, 'after repair index completed');
});

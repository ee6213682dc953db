// `tsbak watch` (issue 21): the real watcher process on a temporary tree. Nothing here waits
// on the wall clock: each step waits for the watcher's next --json-lines event (with a
// generous bound), the quiet period is tiny, and bursts are made while the watcher is
// stopped (SIGSTOP): the kernel queues the events, and SIGCONT hands them over at once.
// So is any change whose snapshot a test counts or reads (changeStopped): with the watcher
// running, a stall of --quiet-for (150 ms) on a loaded machine between writeFileSync's
// truncate and its write, or between two files, would start a snapshot of half the change.
import t from 'tap';
import { type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, newRepo, run, start, testEnv } from './lib/cli.js';
import { tempDir } from './lib/temp.js';

const BOUND_MS = 120_000;

/** A running watcher and its events, read line by line from its stdout. */
class Watcher {
  readonly events: any[] = [];
  private seen = 0;
  private waiters: Array<() => void> = [];
  stderr = '';
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly proc: ChildProcess) {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.events.push(JSON.parse(line));
        } catch {
          this.events.push({ event: 'unparsed', line });
        }
      }
      for (const w of this.waiters.splice(0)) w();
    });
    proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
      resolve({ code, signal });
      for (const w of this.waiters.splice(0)) w();
    }));
  }

  /** The next event (after those already taken) matching `pred`; earlier ones are skipped. */
  async next(pred: (e: any) => boolean, what: string): Promise<any> {
    const deadline = Date.now() + BOUND_MS;
    for (;;) {
      while (this.seen < this.events.length) {
        const e = this.events[this.seen++];
        if (e.event === 'error') throw new Error(`watcher error: ${JSON.stringify(e)}`);
        if (pred(e)) return e;
      }
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) throw new Error(`watcher exited waiting for ${what}: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`no ${what} within ${BOUND_MS / 1000} s; stderr: ${this.stderr}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 1000).unref();
      });
    }
  }

  /** Events of a kind taken so far. */
  count(kind: string): number {
    return this.events.slice(0, this.seen).filter((e) => e.event === kind).length;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    await this.exited;
  }
}

function startWatcher(repo: string, tree: string, extra: string[] = [], env: Record<string, string> = {}): Watcher {
  return new Watcher(start('tsbak', ['watch', repo, tree, '--quiet-for', '150ms', '--json-lines', ...extra], env));
}

function makeTree(t: Parameters<typeof tempDir>[0]): string {
  const tree = path.join(tempDir(t), 'tree');
  for (const d of ['a/x', 'a/y', 'b/z', 'c']) mkdirSync(path.join(tree, d), { recursive: true });
  writeFileSync(path.join(tree, 'a/x/one'), 'one\n');
  writeFileSync(path.join(tree, 'b/z/two'), 'two\n');
  writeFileSync(path.join(tree, 'c/three'), 'three\n');
  return tree;
}

const snapshotCount = (repo: string) => (JSON.parse(run('tsbak', ['snapshots', repo, '--json']).stdout) as unknown[]).length;

/** SIGSTOP, then wait until the process is stopped (state T in /proc/PID/stat). */
async function pause(w: Watcher): Promise<void> {
  w.proc.kill('SIGSTOP');
  const deadline = Date.now() + BOUND_MS;
  while (readFileSync(`/proc/${w.proc.pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'T') {
    if (Date.now() > deadline) throw new Error('the watcher did not stop');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const dump = (repo: string, snap: string, file: string) => run('tsbak', ['dump', repo, snap, file]);

/**
 * Makes a change while the watcher is stopped, then lets it go on. Its events wait in the
 * kernel's queue and reach the watcher in one go: native/inotify.c reads until EAGAIN in one
 * callback, so no timer (the quiet period) runs between them, and every file is complete
 * before the watcher can read it. One change, one batch, one snapshot, whatever the scheduling.
 */
async function changeStopped(w: Watcher, change: () => void): Promise<void> {
  await pause(w);
  try {
    change();
  } finally {
    w.proc.kill('SIGCONT');
  }
}

t.test('a change is in a snapshot that re-reads only its directories; a burst of 1,000 files gives one snapshot; no change gives none', async (t) => {
  const repo = newRepo(t);
  const tree = makeTree(t);
  const w = startWatcher(repo, tree);
  t.teardown(() => w.stop());
  const ready = await w.next((e) => e.event === 'watching', 'watching');
  t.equal(ready.watches, 7, 'one watch per directory');
  const first = await w.next((e) => e.event === 'snapshot', 'the first snapshot');
  t.ok(first.full_check, 'the first snapshot checks everything');

  await changeStopped(w, () => writeFileSync(path.join(tree, 'b/z/two'), 'two, changed\n'));
  const second = await w.next((e) => e.event === 'snapshot', 'a snapshot of the change');
  t.notOk(second.full_check);
  t.equal(second.parent, first.snapshot_id);
  // Taken from the parent unlisted: a (and a/x, a/y) and c; re-read: the root's chain, tree, b, b/z.
  t.ok(second.dirs_unchanged >= 2, `directories taken from the parent (${second.dirs_unchanged})`);
  t.equal(second.files, 3, 'the files of the unlisted directories still count');
  t.equal(dump(repo, second.snapshot_id, path.join(tree, 'b/z/two')).stdout, 'two, changed\n');
  t.equal(dump(repo, second.snapshot_id, path.join(tree, 'a/x/one')).stdout, 'one\n', 'an unlisted directory keeps its files');

  // The burst: queued by the kernel while the watcher is stopped, handed over at once.
  await changeStopped(w, () => {
    mkdirSync(path.join(tree, 'burst'));
    for (let i = 0; i < 1000; i++) writeFileSync(path.join(tree, 'burst', `f${i}`), `file ${i}\n`);
    writeFileSync(path.join(tree, 'a/y/marker'), 'after the burst\n');
  });
  const burst = await w.next((e) => e.event === 'snapshot', 'the burst snapshot');
  t.equal(burst.files, 1004, 'every file of the burst in the one snapshot');
  t.equal(dump(repo, burst.snapshot_id, path.join(tree, 'burst/f999')).stdout, 'file 999\n');

  // One more change: its snapshot's parent is the burst's, so the burst made exactly one.
  await changeStopped(w, () => writeFileSync(path.join(tree, 'c/three'), 'three, changed\n'));
  const after = await w.next((e) => e.event === 'snapshot', 'a snapshot after the burst');
  t.equal(after.parent, burst.snapshot_id, 'the burst gave one snapshot');
  t.equal(w.count('snapshot'), 4);

  const ids = JSON.parse(run('tsbak', ['snapshots', repo, '--json']).stdout) as unknown[];
  t.equal(ids.length, w.count('snapshot'), 'the repository holds the snapshots the events name');
});

t.test('restart with nothing changed writes no snapshot; kill -9 during a snapshot, then a restart: check passes and the snapshot has the changes', async (t) => {
  // Without parity (a local repository's default is 10+2): with it a checkpoint lists only
  // packs whose group's parity is written, so a snapshot killed before its short group's
  // parity has nothing indexed to reuse (parity-resume.test.ts covers that case).
  const repo = path.join(tempDir(t), 'repo');
  t.equal(run('tsbak', ['init', repo, '--parity', 'none']).code, 0);
  const tree = makeTree(t);
  let w = startWatcher(repo, tree);
  await w.next((e) => e.event === 'snapshot', 'the first snapshot');
  await w.stop();

  w = startWatcher(repo, tree);
  const same = await w.next((e) => e.event === 'unchanged' || e.event === 'snapshot', 'the full check at start');
  t.equal(same.event, 'unchanged', 'nothing changed while it was not running: no snapshot');
  await w.stop();

  // Changes while it is not running, then a start that dies (SIGKILL) in its snapshot
  // after some packs and an index file (a checkpoint) are stored.
  const big = randomBytes(8 << 20);
  writeFileSync(path.join(tree, 'a/big'), big);
  writeFileSync(path.join(tree, 'c/three'), 'three, changed\n');
  const before = snapshotCount(repo);
  const crash = startWatcher(repo, tree, [], { TSBAK_CRASH_AT: '4:after', TSBAK_CHECKPOINT_BYTES: '1' });
  const end = await crash.exited;
  t.equal(end.signal, 'SIGKILL', 'killed during its snapshot');
  t.equal(snapshotCount(repo), before, 'no snapshot from the killed run (its packs and an index file are there)');

  w = startWatcher(repo, tree);
  t.teardown(() => w.stop());
  const resumed = await w.next((e) => e.event === 'snapshot', 'the snapshot after the restart');
  t.ok(resumed.full_check, 'a restart checks everything');
  t.ok(resumed.bytes_added < big.length, `the interrupted snapshot's data is reused (${resumed.bytes_added} bytes added)`);
  const got = spawnSync(BIN('tsbak'), ['dump', repo, resumed.snapshot_id, path.join(tree, 'a/big')], { env: testEnv(), maxBuffer: 64 << 20 }).stdout;
  t.ok(got.equals(big), 'the changed file as it is now');
  t.equal(dump(repo, resumed.snapshot_id, path.join(tree, 'c/three')).stdout, 'three, changed\n');
  await w.stop();
  const check = run('tsbak', ['check', repo, '--read-data']);
  t.equal(check.code, 0, `check passes: ${check.stdout}${check.stderr}`);
});

t.test('beyond the watch limit: said once, with the sysctl; the subtrees left are scanned every --interval', async (t) => {
  const repo = newRepo(t);
  const tree = makeTree(t);
  // 7 directories, 3 watches: the rest is scanned.
  const w = startWatcher(repo, tree, ['--interval', '200ms'], { TSBAK_WATCH_MAX_WATCHES: '3' });
  t.teardown(() => w.stop());
  const limit = await w.next((e) => e.event === 'watch_limit', 'the watch limit');
  t.equal(limit.limit, 3);
  const ready = await w.next((e) => e.event === 'watching', 'watching');
  t.equal(ready.watches, 3);
  t.ok(ready.unwatched.length > 0);
  await w.next((e) => e.event === 'snapshot', 'the first snapshot');
  // A directory without a watch: found by the fallback scan.
  const unwatched = ready.unwatched[0] as string;
  // Made while stopped: a scan between the file's creation and its write would store it empty.
  await changeStopped(w, () => writeFileSync(path.join(unwatched, 'found-by-scan'), 'scanned\n'));
  const s = await w.next((e) => e.event === 'snapshot', 'the snapshot of the scan');
  t.equal(dump(repo, s.snapshot_id, path.join(unwatched, 'found-by-scan')).stdout, 'scanned\n');
  // Said once; the human form names the sysctl.
  t.equal(w.events.filter((e) => e.event === 'watch_limit').length, 1);
  const hw = new Watcher(start('tsbak', ['watch', repo, tree, '--quiet-for', '150ms'], { TSBAK_WATCH_MAX_WATCHES: '1' }));
  t.teardown(() => hw.stop());
  const said = await hw.next((e) => e.event === 'unparsed' && e.line.includes('max_user_watches'), 'the line about the limit');
  await hw.stop();
  const out = said.line as string;
  t.match(out, /fs\.inotify\.max_user_watches = 1\).*sysctl fs\.inotify\.max_user_watches=/);
});

t.test('an event queue overflow and a clock jump each lead to a full check', async (t) => {
  const repo = newRepo(t);
  const tree = makeTree(t);
  const offset = path.join(tempDir(t), 'clock-offset');
  writeFileSync(offset, '0');
  const w = startWatcher(repo, tree, [], { TSBAK_WATCH_CLOCK_TICK_MS: '100', TSBAK_WATCH_CLOCK_OFFSET_FILE: offset });
  t.teardown(() => w.stop());
  await w.next((e) => e.event === 'snapshot', 'the first snapshot');

  // More events than the queue holds (16,384 by default: 3 a file written) while stopped.
  const max = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'));
  mkdirSync(path.join(tree, 'flood'));
  await w.next((e) => e.event === 'snapshot', 'the snapshot of the new directory (now watched)');
  const n = Math.ceil(max / 2) + 10;
  await changeStopped(w, () => {
    for (let i = 0; i < n; i++) writeFileSync(path.join(tree, 'flood', `f${i}`), 'x');
  });
  // Invariants rather than "the next snapshot is the full one": nothing but the overflow asks
  // for a full check here (the clock offset is unchanged, --full-check-every is 24 h), so one
  // must come; that no partial snapshot starts before it rests on the one-read drain above
  // and on scheduling, so it is not asserted.
  await w.next((e) => e.event === 'snapshot_start' && e.full_check, 'the full check after the overflow');
  t.pass('overflow: every directory checked');
  await w.next((e) => e.event === 'snapshot' || e.event === 'unchanged', 'the end of the full check');
  // After the full check the newest snapshot holds the tree as it is (its own, or one before
  // it that found everything already: then the full check wrote none).
  const last = w.events.filter((e) => e.event === 'snapshot').pop();
  t.equal(last.files, 3 + n, 'no file missed');
  t.equal(dump(repo, last.snapshot_id, path.join(tree, 'flood', `f${n - 1}`)).stdout, 'x');

  // A suspend: the wall clock jumps an hour ahead of the monotonic one.
  writeFileSync(offset, String(3_600_000));
  const jump = await w.next((e) => e.event === 'clock_jump', 'the clock jump');
  t.equal(jump.seconds, 3600);
  // Nothing else asks for a full check: the jump's must come (a snapshot that had taken its
  // changes before the jump could start in between: not asserted against).
  await w.next((e) => e.event === 'snapshot_start' && e.full_check, 'the full check after the jump');
  t.pass('clock jump: every directory checked');
  await w.next((e) => e.event === 'unchanged' || e.event === 'snapshot', 'the end of the check');
});

t.test('a full check every --full-check-every, on the clock check (time passing, no jump), finds what inotify does not report', async (t) => {
  const repo = newRepo(t);
  const tree = makeTree(t);
  const passed = path.join(tempDir(t), 'time-passed');
  writeFileSync(passed, '0');
  const w = startWatcher(repo, tree, ['--full-check-every', '1h'], { TSBAK_WATCH_CLOCK_TICK_MS: '100', TSBAK_WATCH_TIME_PASSED_FILE: passed });
  t.teardown(() => w.stop());
  const first = await w.next((e) => e.event === 'snapshot', 'the first snapshot');
  // A read moves the file's atime (relatime: once after a write) and is no inotify event we watch.
  const file = path.join(tree, 'c/three');
  const before = statSync(file).atimeMs;
  readFileSync(file);
  const atimeMoved = statSync(file).atimeMs !== before;
  writeFileSync(passed, String(3_600_000 + 1000));
  const due = await w.next((e) => e.event === 'full_check_due', 'the periodic full check');
  t.ok(due.seconds_since_last >= 3600, `an hour since the last (${due.seconds_since_last} s)`);
  t.equal(w.count('snapshot'), 1, 'nothing in between');
  t.equal(w.count('clock_jump'), 0, 'time passing is no clock jump');
  const check = await w.next((e) => e.event === 'snapshot_start', 'the full check');
  t.ok(check.full_check);
  const end = await w.next((e) => e.event === 'unchanged' || e.event === 'snapshot', 'the end of the full check');
  if (atimeMoved) {
    t.equal(end.event, 'snapshot', 'the atime-only change is in a snapshot');
    t.equal(end.parent, first.snapshot_id);
  } else t.equal(end.event, 'unchanged', 'no atime here (noatime): nothing changed');
  // The next one is an hour after this one, not at the next tick.
  writeFileSync(path.join(tree, 'a/x/one'), 'one, changed\n');
  const next = await w.next((e) => e.event === 'snapshot', 'a snapshot of a change');
  t.notOk(next.full_check, 'an ordinary snapshot after it');
  t.equal(w.count('full_check_due'), 1, 'one full check per period');
});

t.test('retention: --keep-last with the full key forgets; with a write-only key it says so once and only writes', async (t) => {
  const repo = newRepo(t);
  const tree = makeTree(t);
  const w = startWatcher(repo, tree, ['--keep-last', '1', '--forget-every', '1ms']);
  await w.next((e) => e.event === 'snapshot', 'the first snapshot');
  await changeStopped(w, () => writeFileSync(path.join(tree, 'c/three'), 'again\n'));
  const s = await w.next((e) => e.event === 'snapshot', 'the second snapshot');
  const f = await w.next((e) => e.event === 'forget' && e.removed.length > 0, 'a forget');
  t.equal(f.kept, 1);
  const left = JSON.parse(run('tsbak', ['snapshots', repo, '--json']).stdout) as Array<{ id: string }>;
  t.same(left.map((x) => x.id), [s.snapshot_id], 'the newest is kept');
  // A prune elsewhere, between snapshots, rewrites the index: the next snapshot reopens the
  // repository instead of deduplicating against blobs that may be gone.
  const prune = run('tsbak', ['prune', repo, '--max-unused', '0%']);
  t.equal(prune.code, 0, prune.stderr);
  await changeStopped(w, () => writeFileSync(path.join(tree, 'c/three'), 'after the prune\n'));
  await w.next((e) => e.event === 'reopened', 'the repository opened again');
  const afterPrune = await w.next((e) => e.event === 'snapshot', 'the snapshot after the prune');
  t.equal(dump(repo, afterPrune.snapshot_id, path.join(tree, 'a/x/one')).stdout, 'one\n');
  await w.stop();
  const check = run('tsbak', ['check', repo, '--read-data']);
  t.equal(check.code, 0, `check passes after prune and watch: ${check.stdout}${check.stderr}`);

  const keyFile = path.join(tempDir(t), 'writer.key');
  const add = run('tsbak', ['key', 'add-writer', repo, '--name', 'watcher', '--out', keyFile]);
  t.equal(add.code, 0, add.stderr);
  const ww = startWatcher(repo, tree, ['--key-file', keyFile, '--keep-last', '1']);
  t.teardown(() => ww.stop());
  const off = await ww.next((e) => e.event === 'forget_disabled', 'the write-only key notice');
  t.equal(off.reason, 'write_only_key');
  await ww.next((e) => e.event === 'snapshot' || e.event === 'unchanged', 'the full check at start');
  writeFileSync(path.join(tree, 'c/three'), 'by the writer\n');
  await ww.next((e) => e.event === 'snapshot' && !e.full_check, 'a snapshot by the writer key');
  t.equal(ww.events.filter((e) => e.event === 'forget_disabled').length, 1, 'said once');
});

t.test('bad options: one line, exit 2', async (t) => {
  const repo = newRepo(t);
  const tree = makeTree(t);
  const r = run('tsbak', ['watch', repo, tree, '--quiet-for', 'soon']);
  t.equal(r.code, 2);
  t.match(r.stderr, /--quiet-for soon: not a duration/);
  const f = run('tsbak', ['watch', repo, tree, '--full-check-every', 'daily']);
  t.equal(f.code, 2);
  t.match(f.stderr, /--full-check-every daily: not a duration/);
  const m = run('tsbak', ['watch', repo, path.join(tree, 'nope')]);
  t.not(m.code, 0);
  t.match(m.stderr, /cannot watch .*nope: ENOENT/);
});

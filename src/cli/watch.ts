// `tsbak watch <repo> <path>...`: continuous backup in the foreground (as a systemd service
// runs it). inotify (writer/tree-watcher.ts) says which directories changed; once the trees
// have been quiet for --quiet-for (or --max-delay after the first change at the latest) a
// snapshot re-reads those directories and takes every other one from the last snapshot
// (BackupOptions.unchangedDirs over the writer's directory cache). Nothing changed: no
// snapshot, and no work at all between events (no timer but the clock check).
//
// Full checks (every directory listed, the directory cache deciding): at start (changes
// while it was not running, an interrupted snapshot: its checkpointed index is reused), after
// an event queue overflow, after a wall-clock jump (a suspend), and every --full-check-every
// (24h): what inotify never reports (writes through mmap, other clients on a network file
// system, atime) reaches the history within a day, as with a daily tsbak-write. Subtrees
// beyond the watch limit are scanned every --interval. With --keep-* and the full key, forget runs every
// --forget-every on this host's snapshots of these paths.
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { backup } from '../writer/backup.js';
import { buildExcluder } from '../writer/exclude-rules.js';
import { TreeWatcher, unchangedIn, type DirtySet, type WatchLimitHit } from '../writer/tree-watcher.js';
import { defaultCacheRoot } from '../repo/cache-root.js';
import { mallocTrim } from '../platform/native/syscalls.js';
import { INDEX } from '../repo/layout.js';
import { isEmptyPolicy } from '../repo/retention.js';
import type { Repository } from '../repo/repository.js';
import { TsbakError } from '../errors.js';
import { EXIT } from './exit-codes.js';
import { cleanUpOnSignals, EXIT_SIGNAL } from './interrupt.js';
import { openRepo } from './open-repo.js';
import { count, fmtBytes, fmtDuration, fmtUsd } from './output.js';
import { tagList } from './select.js';
import { parseSize } from './size.js';
import { decide, policyOf, type KeepArgs } from './forget.js';
import { exclusiveLock } from './prune.js';
import { forgetWhatIf } from './cost-forget.js';
import type { WriteArgs } from './write.js';

export interface WatchArgs extends Omit<WriteArgs, 'stdin' | 'stdinFilename' | 'dryRun' | 'json' | 'filesFrom' | 'filesFromVerbatim'>, KeepArgs {
  interval?: string;
  quietFor?: string;
  maxDelay?: string;
  forgetEvery?: string;
  fullCheckEvery?: string;
  jsonLines?: boolean;
}

/** "30s", "5m", "1h", "250ms", "1d", or a number of seconds. */
export function parseDuration(v: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(v.trim());
  if (!m) throw new TsbakError('USAGE', `${what} ${v}: not a duration; write e.g. 30s, 5m, 1h or 250ms`);
  const n = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'];
  if (!(n > 0) || n > 2 ** 31 - 1) throw new TsbakError('USAGE', `${what} ${v}: out of range (more than 0, at most 24 days)`);
  return n;
}

/** How often the wall clock is compared with the monotonic one (a jump between them is a suspend). */
const CLOCK_TICK_MS = Number(process.env.TSBAK_WATCH_CLOCK_TICK_MS) || 30_000;
/** A jump of at least this much between the two clocks is a suspend (or a clock set): full check. */
const CLOCK_JUMP_MS = 10_000;

export async function cmdWatch(a: WatchArgs): Promise<number> {
  if (!a.paths.length) throw new TsbakError('USAGE', 'nothing to watch: name the paths to back up');
  const interval = parseDuration(a.interval ?? '5m', '--interval');
  const quietFor = parseDuration(a.quietFor ?? '30s', '--quiet-for');
  const maxDelay = parseDuration(a.maxDelay ?? '15m', '--max-delay');
  const forgetEvery = parseDuration(a.forgetEvery ?? '1h', '--forget-every');
  const fullCheckEvery = a.fullCheckEvery === 'off' ? null : parseDuration(a.fullCheckEvery ?? '24h', '--full-check-every');
  if (maxDelay < quietFor) throw new TsbakError('USAGE', `--max-delay ${a.maxDelay} is shorter than --quiet-for ${a.quietFor ?? '30s'}: make it at least as long`);
  const roots = a.paths.map((p) => {
    let real: string;
    try {
      real = realpathSync(path.resolve(p));
    } catch (e: any) {
      throw new TsbakError('NOT_FOUND', `cannot watch ${p}: ${e.code ?? e.message}; name an existing directory`);
    }
    if (!statSync(real).isDirectory()) throw new TsbakError('USAGE', `cannot watch ${p}: not a directory; watch the directory holding it, or back it up with tsbak-write`);
    return real;
  });
  let repo = await openRepo(a);
  const say = new Say(!!a.jsonLines, !!a.quiet);
  const policy = policyOf(a);
  const forgetWanted = !isEmptyPolicy(policy);
  const canForget = repo.canRead && repo.secrets.keyId === 'master';
  if (forgetWanted && !canForget) say.line({ event: 'forget_disabled', reason: 'write_only_key' }, 'the --keep-* policy is not applied: forgetting snapshots needs the full key (the repository passphrase), and this is a write-only key; run `tsbak forget` with the full key elsewhere');
  const exclude = await buildExcluder({ ...a, excludeLargerThan: a.excludeLargerThan !== undefined ? parseSize(a.excludeLargerThan, '--exclude-larger-than') : undefined });
  const cacheRoot = a.noCache ? null : a.cacheDir ?? defaultCacheRoot();
  const ignore = cacheRoot ? [safeReal(cacheRoot)] : [];

  let wake: () => void = () => {};
  const watcher = new TreeWatcher({
    onChange: () => wake(),
    onLimit: (hit) => sayLimit(say, hit, interval),
    ignore,
    ...(process.env.TSBAK_WATCH_MAX_WATCHES ? { maxWatches: Number(process.env.TSBAK_WATCH_MAX_WATCHES) } : {}),
  });
  const t0 = performance.now();
  for (const r of roots) watcher.addTree(r);
  watcher.requireFullCheck(); // what changed while nobody watched
  say.line(
    { event: 'watching', paths: roots, watches: watcher.watches, unwatched: watcher.unwatchedRoots, seconds: (performance.now() - t0) / 1000, rss_bytes: process.memoryUsage().rss },
    `watching ${roots.join(' ')}: ${count(watcher.watches, 'directory', 'directories')} with inotify${watcher.unwatchedRoots.length ? `, ${count(watcher.unwatchedRoots.length, 'subtree')} scanned every ${a.interval ?? '5m'}` : ''}`,
  );

  // ---- the loop: wait for a reason, take a snapshot, repeat ----
  let firstChange: number | null = null;
  let lastChange = 0;
  let timer: NodeJS.Timeout | null = null;
  let running = false;
  /** A snapshot is being taken: a signal is its handler's (cleanUpOnSignals). */
  let snapshotting = false;
  let stopping = false;
  let firstSnapshot = true;
  let lastForget = performance.now();
  let failures = 0;
  /** When the last full check started (the one at start is pending), on the clock check's clock. */
  let lastFullCheck = clocks().mono;

  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (running || stopping) return;
    const now = performance.now();
    let due: number | null = null;
    if (watcher.pending) due = Math.min(lastChange + quietFor, (firstChange ?? now) + maxDelay);
    if (failures) due = Math.max(due ?? now, now + Math.min(interval, 1000 * 2 ** failures));
    if (due === null) return; // idle: nothing scheduled, inotify wakes us
    timer = setTimeout(run, Math.max(0, due - now));
  };
  wake = () => {
    const now = performance.now();
    firstChange ??= now;
    lastChange = now;
    schedule();
  };

  const run = async () => {
    timer = null;
    if (running || stopping) return;
    running = true;
    const dirty = watcher.take();
    const since = firstChange;
    const startedAt = clocks().mono;
    firstChange = null;
    try {
      // Index files gone since they were loaded (a prune or repair elsewhere): the blobs
      // they listed may be gone too, so the repository is opened afresh before dedup trusts them.
      if (await indexShrank(repo)) {
        repo = await openRepo(a);
        say.line({ event: 'reopened', reason: 'index_rewritten' }, null);
      }
      snapshotting = true;
      // --force: the first snapshot reads every file again; the later ones have it as parent.
      await snapshot(repo, { ...a, force: a.force && firstSnapshot }, roots, exclude, dirty, say, since);
      firstSnapshot = false;
      failures = 0;
      if (dirty.full) lastFullCheck = startedAt;
    } catch (e: any) {
      watcher.giveBack(dirty);
      firstChange ??= since ?? performance.now();
      failures++;
      if (e instanceof TsbakError && e.code === 'WRITE_ONLY_KEY') throw e;
      say.line({ event: 'error', code: e?.code ?? null, message: e?.message ?? String(e) }, `snapshot failed: ${e?.message ?? e}; trying again`);
    } finally {
      snapshotting = false;
    }
    if (forgetDue()) await runForget();
    running = false;
    if (stopping) return finish();
    schedule();
  };

  const forgetDue = () => forgetWanted && canForget && !stopping && performance.now() - lastForget >= forgetEvery;
  const runForget = async () => {
    lastForget = performance.now();
    await forget(repo, a, roots, say).catch((e: any) => say.line({ event: 'error', code: e?.code ?? null, message: e?.message ?? String(e) }, `forget failed: ${e?.message ?? e}`));
  };
  let finish: () => void = () => {};

  // The clock check: the wall clock moving apart from the monotonic one is a suspend (the
  // monotonic clock stops meanwhile) or a clock set; either way, look at everything again.
  // The same tick starts the periodic full check: no timer of its own.
  let drift = ((c) => c.wall - c.mono)(clocks());
  const clock = setInterval(() => {
    const { wall, mono: now } = clocks();
    const d = wall - now;
    if (Math.abs(d - drift) >= CLOCK_JUMP_MS) {
      say.line({ event: 'clock_jump', seconds: Math.round((d - drift) / 1000) }, `the clock jumped by ${fmtDuration(Math.abs(d - drift))} (a suspend?): checking every directory`);
      watcher.requireFullCheck();
      wake();
    } else if (fullCheckEvery !== null && now - lastFullCheck >= fullCheckEvery) {
      say.line({ event: 'full_check_due', seconds_since_last: Math.round((now - lastFullCheck) / 1000) }, a.verbose ? `no full check for ${fmtDuration(now - lastFullCheck)}: checking every directory` : null);
      lastFullCheck = now; // once; a failed snapshot keeps its full check pending (giveBack)
      watcher.requireFullCheck();
      wake();
    }
    drift = d;
  }, CLOCK_TICK_MS);
  // The fallback scan of unwatched subtrees (nothing to do while every directory is watched).
  const periodic = setInterval(() => {
    if (watcher.scanUnwatched()) wake();
  }, interval);
  // forget's schedule, between snapshots.
  const forgetTimer = forgetWanted && canForget
    ? setInterval(() => {
        if (running || !forgetDue()) return;
        running = true;
        void runForget().then(() => {
          running = false;
          if (stopping) return finish();
          schedule();
        });
      }, Math.max(forgetEvery, 1000))
    : null;

  // Stopping: during a snapshot as tsbak-write does (its writes abandoned, exit 130/143);
  // between snapshots at once, with nothing to clean up.
  return new Promise<number>((resolve) => {
    const stop = (sig: 'SIGINT' | 'SIGTERM') => {
      if (snapshotting || stopping) return; // during a snapshot its own handler (cleanUpOnSignals) takes over
      stopping = true;
      if (timer) clearTimeout(timer);
      clearInterval(clock);
      clearInterval(periodic);
      if (forgetTimer) clearInterval(forgetTimer);
      watcher.close();
      finish = () => {
        say.line({ event: 'stopped', signal: sig }, `stopped by ${sig}`);
        resolve(sig === 'SIGTERM' ? EXIT.OK : EXIT_SIGNAL.SIGINT);
      };
      // A forget in progress finishes first (its lock is released); then it stops.
      if (!running) finish();
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    wake();
  });
}

/** Whether an index file this process loaded is no longer in the repository. */
async function indexShrank(repo: Repository): Promise<boolean> {
  const present = new Set<string>();
  for await (const o of repo.backend.list(INDEX)) present.add(o.name);
  return repo.indexFiles.some((f) => !present.has(f));
}

/** One snapshot of what `dirty` says changed. */
async function snapshot(repo: Repository, a: WatchArgs, roots: string[], exclude: Awaited<ReturnType<typeof buildExcluder>>, dirty: DirtySet, say: Say, since: number | null): Promise<void> {
  const interrupt = cleanUpOnSignals(repo, (sig) => `watch stopped by ${sig} during a snapshot: no snapshot saved; its lock and temporary files were removed (the next start checks everything and reuses the data indexed so far)`);
  const start = performance.now();
  try {
    say.line({ event: 'snapshot_start', full_check: dirty.full, dirs_changed: dirty.full ? null : dirty.touched.size }, null);
    const res = await backup(repo, {
      paths: roots,
      tags: tagList(a.tag),
      host: a.host,
      parent: a.force ? null : a.parent,
      parentSigner: a.signer,
      cacheDir: a.noCache ? null : a.cacheDir,
      exclude,
      oneFileSystem: a.oneFileSystem,
      unchangedDirs: unchangedIn(dirty),
      skipIfUnchanged: true,
      onWarning: (p, m) => {
        if (interrupt.stopping) return;
        say.line({ event: 'warning', path: p, message: m }, `${p}: ${m}`, true);
      },
    }).catch(async (e) => {
      if (interrupt.stopping) await interrupt.stopping;
      throw e;
    });
    // The snapshot's garbage collected as its last step (bin/tsbak gives watch --expose-gc),
    // rather than by V8's idle-time heap shrinking later, while nothing changes; and the free
    // pages between glibc's live chunks given back, which it would keep for good.
    (globalThis as { gc?: () => void }).gc?.();
    mallocTrim();
    const s = res.info.stats;
    const secs = (performance.now() - start) / 1000;
    const waited = since === null ? null : (start - since) / 1000;
    if (res.unchanged) {
      say.line({ event: 'unchanged', parent: res.info.parent ?? null, full_check: dirty.full, seconds: secs }, a.verbose ? `no changes since snapshot ${res.info.parent?.slice(0, 8)}: no snapshot written` : null);
      return;
    }
    say.line(
      {
        event: 'snapshot',
        snapshot_id: res.snapshotId,
        short_id: res.snapshotId.slice(0, 8),
        parent: res.info.parent ?? null,
        full_check: dirty.full,
        files: s!.files,
        dirs: s!.dirs,
        dirs_unchanged: res.dirsUnchanged,
        bytes_read: s!.bytesRead,
        bytes_added: s!.bytesAdded,
        seconds: secs,
        seconds_since_change: waited,
        cost_usd_per_month: res.info.costUsd ?? 0,
        errors: res.errors,
        changed_while_read: res.changed,
      },
      `snapshot ${res.snapshotId.slice(0, 8)} saved: ${count(s!.files, 'file')}, ${count(s!.dirs - res.dirsUnchanged, 'dir')} re-read, ${count(res.dirsUnchanged, 'dir')} from the parent, ${fmtBytes(s!.bytesRead)} read, ${fmtBytes(s!.bytesAdded)} added (${fmtUsd(res.info.costUsd ?? 0)}/month) in ${fmtDuration(secs * 1000)}` +
        (res.changed.length ? `; ${count(res.changed.length, 'file')} changed while read (stored as last read)` : '') +
        (res.errors.length ? `; ${count(res.errors.length, 'entry', 'entries')} skipped` : ''),
    );
  } finally {
    interrupt.dispose();
  }
}

/** forget of this host's snapshots of these paths by the --keep-* policy (full key only). */
async function forget(repo: Repository, a: WatchArgs, roots: string[], say: Say): Promise<void> {
  const sel = { ...a, host: a.host ?? hostname(), path: roots, tag: undefined, groupBy: undefined };
  const snaps = await repo.listSnapshots(() => {});
  const groups = decide(snaps, sel);
  const removed = groups.flatMap((g) => g.decisions.filter((d) => !d.keep).map((d) => d.snapshot.id));
  const kept = groups.reduce((n, g) => n + g.decisions.filter((d) => d.keep).length, 0);
  if (!removed.length) {
    say.line({ event: 'forget', kept, removed: [] }, null);
    return;
  }
  // The money side, before anything is removed: what prune would then free, and its cost.
  const whatIf = await forgetWhatIf(repo, sel).catch(() => null);
  const lock = await exclusiveLock(repo, 'forget');
  try {
    for (const id of removed) {
      lock.assertHeld();
      await repo.forgetSnapshot(id);
    }
  } finally {
    await lock.release();
  }
  say.line({ event: 'forget', kept, removed, cost: whatIf?.json ?? null }, [`forget: kept ${count(kept, 'snapshot')}, removed ${removed.length}: ${removed.map((id) => id.slice(0, 8)).join(' ')}`, ...(whatIf?.lines ?? []), 'run `tsbak prune` with the full key to free the space'].join('\n'));
}

function sayLimit(say: Say, hit: WatchLimitHit, intervalMs: number): void {
  const limit = hit.limit ?? 'its limit';
  say.line(
    { event: 'watch_limit', limit: hit.limit, first_unwatched: hit.dir, fallback_interval_seconds: intervalMs / 1000 },
    `the inotify watch limit (fs.inotify.max_user_watches = ${limit}) is reached at ${hit.dir}: the directories beyond it are scanned every ${fmtDuration(intervalMs)} instead. ` +
      `Raise it: sudo sysctl fs.inotify.max_user_watches=${typeof hit.limit === 'number' ? Math.max(hit.limit * 4, 524288) : 524288} (and the same line in /etc/sysctl.d/90-tsbak.conf to keep it)`,
  );
}

/**
 * The wall clock and the monotonic one, in milliseconds, as the clock check sees them. Tests:
 * TSBAK_WATCH_CLOCK_OFFSET_FILE holds milliseconds added to the wall clock alone (a jump),
 * TSBAK_WATCH_TIME_PASSED_FILE milliseconds added to both (time passing; read once for both).
 */
function clocks(): { wall: number; mono: number } {
  const passed = offsetIn(process.env.TSBAK_WATCH_TIME_PASSED_FILE);
  return { wall: Date.now() + offsetIn(process.env.TSBAK_WATCH_CLOCK_OFFSET_FILE) + passed, mono: performance.now() + passed };
}

function offsetIn(file: string | undefined): number {
  if (!file) return 0;
  try {
    return Number(readFileSync(file, 'utf8')) || 0;
  } catch {
    return 0;
  }
}


function safeReal(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/** Output: a line for people, or one JSON object a line (--json-lines). */
class Say {
  constructor(
    private readonly json: boolean,
    private readonly quiet: boolean,
  ) {}

  /** human null: nothing for people; toStderr: a warning. */
  line(event: Record<string, unknown>, human: string | null, toStderr = false): void {
    if (this.json) process.stdout.write(JSON.stringify({ time: new Date().toISOString(), ...event }) + '\n');
    else if (human !== null && (toStderr || !this.quiet)) (toStderr ? process.stderr : process.stdout).write(`tsbak watch: ${human}\n`);
  }
}

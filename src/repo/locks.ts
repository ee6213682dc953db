// Locks (FORMAT.md, "Locks"): who is working on the repository. A lock is an object
// locks/<32 hex> of plaintext JSON; it is written, then the others are read, and a conflict
// takes it back. Exclusive (forget, prune, repair) conflicts with every lock, shared
// (backup, check) with exclusive ones. A held lock is rewritten every few minutes, so one
// that is old belongs to a process that is gone.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Backend, ObjectInfo } from '../backend/backend.js';
import { TsbakError } from '../errors.js';
import { LOCKS } from './layout.js';
import { mapLimit } from './map-limit.js';

/** A lock older than this (by its time or by the backend's date of the object) is stale. */
export const LOCK_STALE_MS = 30 * 60_000;
/** How often a held lock is rewritten: well inside LOCK_STALE_MS. */
export const LOCK_REFRESH_MS = 5 * 60_000;
/** Lock objects are a few hundred bytes; a larger one is not read (hostile). */
export const LOCK_MAX_BYTES = 4096;

const NAME = /^locks\/[0-9a-f]{32}$/;

export interface LockHandle {
  /** Deletes the lock object (and stops refreshing it). Safe to call twice. */
  release(): Promise<void>;
  /**
   * Throws LOCKED if the lock may have been taken for stale by others: not refreshed for
   * LOCK_STALE_MS (the machine slept), or its object removed (`tsbak unlock --remove-all`).
   * A writer calls it before the step that makes its work visible (the snapshot).
   */
  assertHeld(): void;
}

export interface LockOptions {
  exclusive: boolean;
  /** What holds it ("backup", "prune"...), shown to whoever it blocks. */
  operation?: string;
}

/** A lock object as read, checked, and judged. */
export interface LockInfo {
  name: string;
  host: string | null;
  pid: number | null;
  time: Date | null;
  /** An unreadable lock counts as exclusive. */
  exclusive: boolean;
  operation: string | null;
  /** The backend's date of the object (when it has one). */
  lastModified: Date | null;
  /** How old it is (ageOf); null when neither its time nor its object's date is known. */
  ageMs: number | null;
  /** Why it could not be used (bad JSON, too large, bad fields, bad name); null when it was read. */
  unreadable: string | null;
  /** Why it is stale (ignored for conflicts, removed by `tsbak unlock`); null when held. */
  stale: string | null;
  /** Held by this very process (never a conflict for it). */
  ours: boolean;
}

interface LockBody {
  host: string;
  pid: number;
  time: string;
  exclusive: boolean;
  operation?: string;
}

export interface LockClock {
  now(): number;
  /** Whether a process of this host is alive (process.kill(pid, 0)). */
  alive(pid: number): boolean;
  host(): string;
}

const systemClock: LockClock = {
  now: () => Date.now(),
  alive: (pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      // EPERM: it exists, under another user.
      return (e as NodeJS.ErrnoException).code === 'EPERM';
    }
  },
  host: () => hostname(),
};

export class LockManager {
  private readonly held = new Set<HeldLock>();

  constructor(
    private readonly backend: Backend,
    private readonly clock: LockClock = systemClock,
    private readonly refreshMs = refreshInterval(),
  ) {}

  /**
   * Writes a lock, then reads every other one: a conflicting lock that is not stale takes
   * ours back and throws LOCKED naming its holder.
   */
  async lock(opts: LockOptions): Promise<LockHandle> {
    const h = new HeldLock(this.backend, this.clock, opts, this.refreshMs, () => this.held.delete(h));
    // Held from before its object exists: releaseAll (a signal) may come while it is written.
    this.held.add(h);
    await h.write().catch(async (e) => {
      await h.release().catch(() => {});
      throw e;
    });
    let conflict: LockInfo | undefined;
    try {
      const others = (await this.listLocks()).filter((l) => l.name !== h.name && !l.ours && !l.stale);
      conflict = others.find((l) => opts.exclusive || l.exclusive);
    } catch (e) {
      await h.release().catch(() => {});
      throw e;
    }
    if (conflict) {
      await h.release().catch(() => {});
      throw new TsbakError('LOCKED', conflictMessage(this.backend.location, conflict, opts.exclusive));
    }
    h.startRefreshing();
    return h;
  }

  /** Every lock object in the repository, read and judged (stale, unreadable, ours). */
  async listLocks(): Promise<LockInfo[]> {
    const objects: ObjectInfo[] = [];
    for await (const o of this.backend.list(LOCKS)) objects.push(o);
    const out: LockInfo[] = [];
    await mapLimit(objects, 8, async (o) => {
      const l = await this.readLock(o);
      if (l) out.push(l);
    });
    return out.sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** Removes stale locks, or every lock with `all`. */
  async removeLocks(opts: { all: boolean }): Promise<{ removed: LockInfo[]; kept: LockInfo[] }> {
    const removed: LockInfo[] = [];
    const kept: LockInfo[] = [];
    for (const l of await this.listLocks()) {
      if (opts.all || l.stale) {
        await this.backend.delete(l.name);
        removed.push(l);
      } else kept.push(l);
    }
    return { removed, kept };
  }

  /** Deletes every lock this manager holds (a signal ends the process). */
  async releaseAll(): Promise<void> {
    await Promise.all([...this.held].map((h) => h.release().catch(() => {})));
  }

  /** Null when the object vanished between the listing and the read (its holder released it). */
  private async readLock(o: ObjectInfo): Promise<LockInfo | null> {
    const now = this.clock.now();
    const info: LockInfo = { name: o.name, host: null, pid: null, time: null, exclusive: true, operation: null, lastModified: o.lastModified ?? null, ageMs: null, unreadable: null, stale: null, ours: false };
    let body: LockBody | string;
    if (!NAME.test(o.name)) body = 'its name is not locks/<32 hex>';
    else if (o.size > LOCK_MAX_BYTES) body = `${o.size} bytes, more than a lock's ${LOCK_MAX_BYTES}`;
    else {
      let bytes: Buffer;
      try {
        bytes = await this.backend.get(o.name);
      } catch (e) {
        if (e instanceof TsbakError && e.code === 'NOT_FOUND') return null;
        throw e;
      }
      body = parseLock(bytes.subarray(0, LOCK_MAX_BYTES + 1), now);
    }
    if (typeof body === 'string') info.unreadable = body;
    else {
      info.host = body.host;
      info.pid = body.pid;
      info.time = new Date(body.time);
      info.exclusive = body.exclusive;
      info.operation = body.operation ?? null;
    }
    info.ageMs = ageOf(info, now);
    const here = info.host !== null && info.host === this.clock.host();
    info.ours = here && info.pid === process.pid;
    if (here && !info.ours && info.pid !== null && !this.clock.alive(info.pid)) info.stale = `its process (pid ${info.pid} on this host) is gone`;
    else if (info.ageMs !== null && info.ageMs > LOCK_STALE_MS) info.stale = `${info.unreadable ? 'unreadable and ' : ''}not refreshed for ${fmtAge(info.ageMs)} (stale after ${fmtAge(LOCK_STALE_MS)})`;
    return info;
  }
}

/** The lock JSON checked field by field, or why it cannot be used. */
export function parseLock(bytes: Buffer, now: number): LockBody | string {
  if (bytes.length > LOCK_MAX_BYTES) return `more than ${LOCK_MAX_BYTES} bytes`;
  let v: any;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    return 'not JSON';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  if (typeof v.host !== 'string' || !v.host || v.host.length > 255 || /[\x00-\x1f\x7f]/.test(v.host)) return 'bad host';
  if (!Number.isSafeInteger(v.pid) || v.pid <= 0 || v.pid > 0x7fffffff) return 'bad pid';
  if (typeof v.exclusive !== 'boolean') return 'bad exclusive';
  if (typeof v.time !== 'string' || !/^\d{4}-\d\d-\d\dT/.test(v.time) || Number.isNaN(Date.parse(v.time))) return 'bad time';
  // A time far ahead would hold the repository for as long: a clock that wrong is damage.
  if (Date.parse(v.time) - now > LOCK_STALE_MS) return `time ${v.time} is in the future`;
  if (v.operation !== undefined && (typeof v.operation !== 'string' || v.operation.length > 64 || /[\x00-\x1f\x7f]/.test(v.operation))) return 'bad operation';
  return { host: v.host, pid: v.pid, time: v.time, exclusive: v.exclusive, ...(v.operation !== undefined ? { operation: v.operation } : {}) };
}

/**
 * How old a lock is: by its time and by its object's date on the backend, the older
 * reading wins. A live holder rewrites it every LOCK_REFRESH_MS, so both stay young; a lock
 * whose time was written ahead still ages by its object's date.
 */
function ageOf(l: LockInfo, now: number): number | null {
  const ages = [l.time, l.lastModified].filter((d): d is Date => d !== null).map((d) => now - d.getTime());
  return ages.length ? Math.max(...ages) : null;
}

/** The refresh interval: TSBAK_LOCK_REFRESH_SECONDS (tests), else LOCK_REFRESH_MS. */
function refreshInterval(): number {
  const s = Number(process.env.TSBAK_LOCK_REFRESH_SECONDS);
  return Number.isFinite(s) && s > 0 ? s * 1000 : LOCK_REFRESH_MS;
}

export function fmtAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}

/** One line about a lock: who, what, how old. */
export function describeLock(l: LockInfo): string {
  const age = l.ageMs !== null ? `, ${fmtAge(l.ageMs)} old` : '';
  if (l.unreadable) return `unreadable lock ${l.name} (${l.unreadable}${age})`;
  return `${l.exclusive ? 'exclusive' : 'shared'} lock ${l.name} of ${l.operation ?? 'a process'} on host ${l.host} pid ${l.pid}${age}`;
}

function conflictMessage(location: string, l: LockInfo, exclusive: boolean): string {
  const why = exclusive ? 'an exclusive lock needs no other lock' : 'it is exclusive';
  if (l.unreadable)
    return `repository ${location} is locked: ${describeLock(l)}, which counts as held until it is ${fmtAge(LOCK_STALE_MS)} old; run \`tsbak unlock --remove-all\` if no tsbak process is at work on it`;
  return `repository ${location} is locked: ${describeLock(l)} (${why}); wait for it to end, or run \`tsbak unlock\` if that process is gone`;
}

class HeldLock implements LockHandle {
  name = '';
  /** A refresh's new object, while it is written. */
  private next: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  private lastWritten = 0;
  private lost: string | null = null;
  private released = false;
  private releasing: Promise<void> | null = null;

  constructor(
    private readonly backend: Backend,
    private readonly clock: LockClock,
    private readonly opts: LockOptions,
    private readonly refreshMs: number,
    private readonly onRelease: () => void,
  ) {}

  /**
   * Writes a new lock object (the first, or a refresh's), and returns its name. Its name is
   * known (`name`, or `next` for a refresh) before the put, so a release meanwhile deletes it.
   */
  async write(): Promise<string> {
    const name = `${LOCKS}${randomBytes(16).toString('hex')}`;
    if (!this.name) this.name = name;
    else this.next = name;
    const now = this.clock.now();
    const body: LockBody = { host: this.clock.host(), pid: process.pid, time: new Date(now).toISOString(), exclusive: this.opts.exclusive, ...(this.opts.operation ? { operation: this.opts.operation } : {}) };
    await this.backend.put(name, Buffer.from(JSON.stringify(body)));
    if (this.released) {
      // Released while it was written: the release's delete may have come first.
      await this.backend.delete(name).catch(() => {});
      throw new TsbakError('IO', `lock ${name} was released while it was written`);
    }
    this.lastWritten = now;
    return name;
  }

  startRefreshing(): void {
    if (this.released) return;
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  /**
   * Objects are immutable: a refresh writes a new lock, then deletes the old one. A refresh
   * that comes too late, or finds the old object gone, marks the lock lost (assertHeld).
   */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      if (this.released) return;
      const old = this.name;
      if (this.clock.now() - this.lastWritten > LOCK_STALE_MS) this.lost ??= `it was not refreshed for ${fmtAge(this.clock.now() - this.lastWritten)} (the machine slept?), so others may have taken it for stale`;
      try {
        if (!(await this.backend.head(old))) this.lost ??= `its object ${old} was removed (tsbak unlock --remove-all?)`;
        const fresh = await this.write();
        this.name = fresh;
        this.next = null;
        await this.backend.delete(old);
      } catch {
        // The next refresh tries again; the lock stays valid until LOCK_STALE_MS.
      }
    })().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  assertHeld(): void {
    if (this.lost) throw new TsbakError('LOCKED', `the repository lock ${this.name} was lost: ${this.lost}; nothing was made visible, run the command again`);
  }

  release(): Promise<void> {
    // A second call (releaseAll on a signal while the command releases it) waits for the
    // same deletes, so that the process does not exit before they are sent.
    this.releasing ??= (async () => {
      this.released = true;
      if (this.timer) clearInterval(this.timer);
      try {
        // Not waiting for a refresh in flight: its put may be the one that hangs.
        const names = [this.name, this.next].filter((n): n is string => !!n);
        await Promise.all(names.map((n) => this.backend.delete(n)));
      } finally {
        this.onRelease();
      }
    })();
    return this.releasing;
  }
}

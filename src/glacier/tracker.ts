// The restore tracker: for every cold pack we asked S3 about, where its restore stands.
//
//   cold --RestoreObject--> requested --HEAD: ongoing-request="true"--> in-progress
//        --HEAD: ongoing-request="false", expiry-date=...--> available (a temporary copy in S3)
//        --GET into the local disk cache--> cached
//   available/cached --expiry-date passes--> cold (cached stays readable from the disk
//   cache as long as the file is there; the tracker only knows about S3)
//
// S3's answers map onto these states: RestoreObject 202 -> requested; 409
// RestoreAlreadyInProgress -> in-progress; 200 (a restored copy exists, expiry moved) and
// 403 InvalidObjectState (the object is not in an archive class) -> available. None of
// them is an error. A HEAD without x-amz-restore on an archived object means cold (never
// restored, or the copy expired).
//
// The journal: <cache dir>/<repo id>/restores.jsonl, one JSON object per line, each the
// full new record of one pack (the last line for a pack wins). Lines are appended (O_APPEND,
// one write per line) and fsync'ed after each batch of requests, so a restart -- or another
// process, such as a mount while `tsbak warm` runs -- sees what was requested and does not
// ask again. When the file holds many superseded lines it is rewritten (temporary file and
// rename) when opened; a line another process appends during that rewrite can be lost,
// which costs at most one repeated RestoreObject (answered 409 or 200 by S3, harmless).
import { appendFileSync, closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Backend, ObjectInfo, RestoreTier, StorageClass } from '../backend/backend.js';
import { NotFoundError } from '../errors.js';
import { checkRestoreRequest, expectedRestoreMs, isColdClass } from './policy.js';
import { mapLimit } from '../repo/map-limit.js';
import { makeDirsSync } from '../platform/make-dirs.js';
export { mapLimit };

export type RestorePhase = 'cold' | 'requested' | 'in-progress' | 'available' | 'cached';

/** A pack as the tracker sees it. */
export interface TrackedPack {
  name: string;
  bytes: number;
  storageClass: StorageClass;
}

export interface RestoreRecord {
  pack: string;
  phase: RestorePhase;
  storageClass: StorageClass;
  bytes: number;
  tier?: RestoreTier;
  days?: number;
  /** ms since the epoch */
  requestedAt?: number;
  expectedBy?: number;
  /** When S3 deletes the restored copy (from x-amz-restore). Absent: not known, or never (a class without restores). */
  expiry?: number;
  /** Last answer from S3 about this pack (kept in memory only). */
  checkedAt?: number;
}

interface JournalLine {
  pack: string;
  phase: RestorePhase;
  class: StorageClass;
  bytes: number;
  tier?: RestoreTier;
  days?: number;
  requestedAt?: string;
  expectedBy?: string;
  expiry?: string;
  at: string;
}

export interface TrackerOptions {
  now?: () => number;
  /** How often (ms) to look at the journal for lines other processes appended (default 1000). */
  reloadMs?: number;
}

const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());
const ms = (s: string | undefined) => {
  if (s === undefined) return undefined;
  const t = Date.parse(s);
  return Number.isFinite(t) ? t : undefined;
};

export class RestoreTracker {
  private recs = new Map<string, RestoreRecord>();
  private inflight = new Map<string, Promise<boolean>>();
  private readonly now: () => number;
  private readonly reloadMs: number;
  private offset = 0;
  private ino = -1;
  private lastSync = 0;
  private dirty = false;

  constructor(
    readonly file: string,
    private readonly backend: Backend,
    opts: TrackerOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.reloadMs = opts.reloadMs ?? 1000;
    makeDirsSync(path.dirname(file), 0o700);
    this.reload(true);
  }

  // ---- journal ----

  private apply(text: string): number {
    let lines = 0;
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      let j: JournalLine;
      try {
        j = JSON.parse(line);
      } catch {
        continue; // a torn last line after a crash
      }
      if (typeof j?.pack !== 'string' || typeof j.phase !== 'string') continue;
      lines++;
      const prev = this.recs.get(j.pack);
      this.recs.set(j.pack, {
        pack: j.pack,
        phase: j.phase,
        storageClass: j.class,
        bytes: j.bytes,
        tier: j.tier,
        days: j.days,
        requestedAt: ms(j.requestedAt),
        expectedBy: ms(j.expectedBy),
        expiry: ms(j.expiry),
        checkedAt: prev?.checkedAt,
      });
    }
    return lines;
  }

  /** Reads the journal: all of it, or what other processes appended since the last look. */
  private reload(compact = false): void {
    this.lastSync = this.now();
    let st;
    try {
      st = statSync(this.file);
    } catch {
      this.offset = 0;
      return;
    }
    if (st.ino === this.ino && st.size === this.offset) return;
    let lines: number;
    if (st.ino === this.ino && st.size > this.offset) {
      const buf = readFileSync(this.file);
      // Only whole lines: a line being written right now is read next time.
      const end = buf.lastIndexOf(0x0a) + 1;
      if (end <= this.offset) return;
      lines = this.apply(buf.subarray(this.offset, end).toString('utf8'));
      this.offset = end;
    } else {
      const buf = readFileSync(this.file);
      const end = buf.lastIndexOf(0x0a) + 1;
      this.recs.clear();
      lines = this.apply(buf.subarray(0, end).toString('utf8'));
      this.offset = end;
      this.ino = st.ino;
      if (compact && lines > 64 && lines > 2 * this.recs.size) this.compact();
    }
  }

  private sync(): void {
    if (this.now() - this.lastSync >= this.reloadMs) this.reload();
  }

  /** Rewrites the journal with one line per pack still worth remembering. */
  private compact(): void {
    const now = this.now();
    const keep = [...this.recs.values()].filter((r) => this.effective(r, now).phase !== 'cold');
    const tmp = `${this.file}.tmp-${process.pid}`;
    writeFileSync(tmp, keep.map((r) => JSON.stringify(this.line(r)) + '\n').join(''), { mode: 0o600 });
    const fd = openSync(tmp, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.file);
    const st = statSync(this.file);
    this.ino = st.ino;
    this.offset = st.size;
    this.recs = new Map(keep.map((r) => [r.pack, r]));
  }

  private line(r: RestoreRecord): JournalLine {
    return {
      pack: r.pack,
      phase: r.phase,
      class: r.storageClass,
      bytes: r.bytes,
      ...(r.tier ? { tier: r.tier } : {}),
      ...(r.days ? { days: r.days } : {}),
      ...(r.requestedAt !== undefined ? { requestedAt: iso(r.requestedAt) } : {}),
      ...(r.expectedBy !== undefined ? { expectedBy: iso(r.expectedBy) } : {}),
      ...(r.expiry !== undefined ? { expiry: iso(r.expiry) } : {}),
      at: new Date(this.now()).toISOString(),
    };
  }

  private write(r: RestoreRecord): void {
    this.sync(); // pick up other processes' lines first, so our offset stays right
    this.recs.set(r.pack, r);
    const text = JSON.stringify(this.line(r)) + '\n';
    appendFileSync(this.file, text, { mode: 0o600 });
    this.dirty = true;
    try {
      const st = statSync(this.file);
      if (st.ino !== this.ino) {
        this.ino = st.ino;
        this.offset = 0;
        this.reload();
      } else if (st.size === this.offset + Buffer.byteLength(text)) this.offset = st.size;
      // else: another process appended too; the next reload reads its lines (ours again, harmlessly)
    } catch {
      // the file vanished: the next write recreates it
    }
  }

  /** Makes the journal durable (after a batch of requests). */
  flush(): void {
    if (!this.dirty) return;
    this.dirty = false;
    try {
      const fd = openSync(this.file, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch {
      // best effort
    }
  }

  // ---- state ----

  /** The record as it stands now: an expired restored copy is cold again. */
  private effective(r: RestoreRecord, now = this.now()): RestoreRecord {
    if ((r.phase === 'available' || r.phase === 'cached') && r.expiry !== undefined && r.expiry <= now) return { ...r, phase: 'cold' };
    return r;
  }

  get(pack: string): RestoreRecord | undefined {
    this.sync();
    const r = this.recs.get(pack);
    return r && this.effective(r);
  }

  records(): RestoreRecord[] {
    this.sync();
    const now = this.now();
    return [...this.recs.values()].map((r) => this.effective(r, now));
  }

  private base(p: TrackedPack, cur: RestoreRecord | undefined): RestoreRecord {
    return { pack: p.name, phase: 'cold', storageClass: cur?.storageClass ?? p.storageClass, bytes: p.bytes || cur?.bytes || 0, tier: cur?.tier, days: cur?.days, requestedAt: cur?.requestedAt, expectedBy: cur?.expectedBy };
  }

  /** Sets a record; writes a journal line only when something S3-relevant changed. */
  private set(r: RestoreRecord): void {
    r.checkedAt = this.now();
    const cur = this.recs.get(r.pack);
    if (cur && cur.phase === r.phase && cur.expiry === r.expiry && cur.bytes === r.bytes && cur.tier === r.tier && cur.requestedAt === r.requestedAt && cur.storageClass === r.storageClass) {
      cur.checkedAt = r.checkedAt;
      return;
    }
    this.write(r);
  }

  /** What a HEAD says about a pack. Returns the new record (null: the object does not exist). */
  applyHead(p: TrackedPack, info: ObjectInfo | null): RestoreRecord | null {
    if (!info) return null;
    const cur = this.recs.get(p.name);
    const r = this.base({ ...p, bytes: info.size || p.bytes }, cur);
    const now = this.now();
    if (info.storageClass) r.storageClass = info.storageClass;
    if (!isColdClass(r.storageClass)) {
      r.phase = cur?.phase === 'cached' ? 'cached' : 'available'; // readable at once, never expires
      r.expiry = undefined;
    } else if (!info.restore) {
      r.phase = 'cold';
      r.expiry = undefined;
    } else if (info.restore.ongoing) {
      r.phase = 'in-progress';
      if (r.requestedAt === undefined || !(cur?.phase === 'requested' || cur?.phase === 'in-progress')) {
        // Someone else asked (another machine, the console): we do not know when.
        r.requestedAt ??= now;
        r.expectedBy ??= now + expectedRestoreMs(r.storageClass, r.tier ?? 'Standard');
      }
    } else {
      const exp = info.restore.expiry?.getTime();
      if (exp !== undefined && exp <= now) {
        r.phase = 'cold';
        r.expiry = undefined;
      } else {
        r.phase = cur?.phase === 'cached' && this.effective(cur, now).phase === 'cached' ? 'cached' : 'available';
        r.expiry = exp;
      }
    }
    this.set(r);
    return this.recs.get(p.name)!;
  }

  /** Asks S3 (HEAD) where one pack stands. */
  async refreshOne(p: TrackedPack): Promise<RestoreRecord | null> {
    return this.applyHead(p, await this.backend.head(p.name));
  }

  /**
   * Asks S3 where each pack stands: one HEAD per pack, or one listing of their common
   * prefix when that is cheaper (a LIST costs 12.5 HEADs on S3 and covers 1000 objects),
   * which the caller says by giving `totalPacks`, the number of objects under that prefix.
   */
  async refresh(packs: TrackedPack[], opts: { totalPacks?: number; concurrency?: number; signal?: AbortSignal } = {}): Promise<void> {
    if (!packs.length) return;
    const pages = Math.ceil((opts.totalPacks ?? Infinity) / 1000);
    if (packs.length > 12.5 * pages) {
      const prefix = commonDir(packs.map((p) => p.name));
      const want = new Map(packs.map((p) => [p.name, p]));
      for await (const o of this.backend.list(prefix, opts.signal)) {
        const p = want.get(o.name);
        if (!p) continue;
        want.delete(o.name);
        this.applyHead(p, o);
      }
      return; // packs not listed do not exist: left as they were
    }
    await mapLimit(packs, opts.concurrency ?? 8, async (p) => {
      opts.signal?.throwIfAborted();
      await this.refreshOne(p);
    });
  }

  /**
   * Requests the restore of a pack unless it is already requested, in progress or
   * available. Returns true if a RestoreObject request was sent. Concurrent calls for one
   * pack send one request.
   */
  request(p: TrackedPack, tier: RestoreTier, days: number): Promise<boolean> {
    const q = this.inflight.get(p.name);
    if (q) return q.then(() => false); // the first caller sent it
    const mine = this.doRequest(p, tier, days).finally(() => this.inflight.delete(p.name));
    this.inflight.set(p.name, mine);
    return mine;
  }

  private async doRequest(p: TrackedPack, tier: RestoreTier, days: number): Promise<boolean> {
    const cur = this.get(p.name);
    if (cur && cur.phase !== 'cold') return false;
    if (!this.backend.restore) return false;
    const sc = cur?.storageClass ?? p.storageClass;
    checkRestoreRequest(sc, tier, days);
    const answer = await this.backend.restore(p.name, days, tier);
    const now = this.now();
    const r = this.base(p, cur);
    r.storageClass = sc;
    if (answer === 'started') {
      Object.assign(r, { phase: 'requested', tier, days, requestedAt: now, expectedBy: now + expectedRestoreMs(sc, tier), expiry: undefined });
      this.set(r);
    } else if (answer === 'in-progress') {
      // Already asked (by another machine, or a journal line lost in a crash).
      Object.assign(r, { phase: 'in-progress', tier: r.tier ?? tier, days: r.days ?? days, requestedAt: r.requestedAt ?? now, expectedBy: r.expectedBy ?? now + expectedRestoreMs(sc, tier), expiry: undefined });
      this.set(r);
    } else {
      // A restored copy exists (its expiry now moved to `days` from now), or the object
      // needs no restore: ask for the exact expiry.
      Object.assign(r, { tier: r.tier ?? tier, days });
      if (!this.applyHead(r.bytes ? { ...p, bytes: r.bytes } : p, await this.backend.head(p.name))) throw new NotFoundError(`pack ${p.name}`);
    }
    return true;
  }

  /** A GET said the pack is archived and not restored (e.g. the copy expired early). */
  markCold(p: TrackedPack): void {
    const cur = this.recs.get(p.name);
    const r = this.base(p, cur);
    r.phase = 'cold';
    r.expiry = undefined;
    this.set(r);
  }

  /** The pack was downloaded into the local cache. */
  markCached(p: TrackedPack): void {
    const cur = this.recs.get(p.name);
    const r = this.base(p, cur);
    r.phase = 'cached';
    r.expiry = cur?.expiry;
    r.bytes = p.bytes || r.bytes;
    this.set(r);
  }
}

/** The longest common "directory" prefix of object names ("packs/data/" for data packs). */
export function commonDir(names: string[]): string {
  if (!names.length) return '';
  let pre = names[0]!;
  for (const n of names) {
    let i = 0;
    while (i < pre.length && i < n.length && pre[i] === n[i]) i++;
    pre = pre.slice(0, i);
  }
  return pre.slice(0, pre.lastIndexOf('/') + 1);
}


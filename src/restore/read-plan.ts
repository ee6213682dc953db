// The restore's reads of data, planned by pack. Each piece of work (a batch of small files,
// a chunk of a large file) asks for its blobs and gets their sealed bytes back to back in
// a buffer of its own. Requests wait here, so that the ones to neighbouring blobs of a pack
// are served by one ranged read (read-ranges.ts), and up to `concurrency` reads are in
// flight: over a network, latency is hidden by reading ahead, not paid once per batch.
//
// Memory is bounded by `budget`: half of it for the buffers of work waiting for or holding
// its bytes (a request waits in read() for room), half for the reads in flight. A read
// that could still grow (its pack has no further blob asked for yet) waits until it is
// `span` long or, when nothing else is being read, until nothing new came in for one turn
// of the event loop (the walk producing the requests is waiting on something) or a
// request waits for room.
//
// With a forecast of what the walk will ask for (read-forecast.ts), a read stretches over
// the blobs of its pack that are coming (within `gap`, up to `span`, as room allows); their
// bytes wait in a stash until asked for, and a request for a blob a read in flight covers
// joins that read. A pack is then read in a few large reads, whatever the walk's waits.
import type { BlobLocation, PackRef } from '../repo/blob-index.js';
import { BufferPool, sizeClass } from '../repo/buffer-pool.js';
import type { PlannedRead } from '../repo/read-ranges.js';
import type { ReadForecast } from './read-forecast.js';
import { ReadStash } from './read-stash.js';

export interface PlanSource {
  readPackRange(pack: PackRef, offset: number, length: number, into?: Buffer): Promise<Buffer>;
}

export interface PlanOptions {
  /** Reads in flight at most. */
  concurrency: number;
  /** Blobs this far apart in a pack are read with one read... */
  gap: number;
  /** ...of at most this many bytes. */
  span: number;
  /** Bytes of buffers held at most: work's and reads'. */
  budget: number;
  /** Whether reads fill a buffer given (a local file) rather than bringing their own. */
  readsInto: boolean;
}

/** A request's blobs: blob i is bytes[offsets[i], offsets[i] + its length). Give it back with release(). */
export interface SealedBlobsRead {
  bytes: Buffer;
  offsets: Uint32Array;
}

interface Need {
  loc: BlobLocation;
  unit: Unit;
  /** Where its bytes go in the unit's buffer. */
  at: number;
  requested: boolean;
}

/** A read in flight that requests for blobs it covers may join (not one filling a work's buffer). */
interface Flight {
  read: PlannedRead<Need>;
  end: number;
}

interface Unit {
  needs: Need[];
  missing: number;
  /** Bytes counted against the budget (its buffer's size). */
  size: number;
  buf: ArrayBuffer;
  read: SealedBlobsRead;
  failed: boolean;
  resolve: (r: SealedBlobsRead) => void;
  reject: (e: unknown) => void;
}

export class ReadPlan {
  /** Bytes of buffers held now, and at most so far (work's and reads'). */
  held = 0;
  peak = 0;
  /** Ranged reads made. */
  reads = 0;
  private unitHeld = 0;
  private readHeld = 0;
  private inflight = 0;
  readonly budget: number;
  private readonly unitBudget: number;
  private readonly readBudget: number;
  private queue: Unit[] = [];
  private head = 0;
  /** Needs not yet requested, by pack. */
  private readonly pending = new Map<PackRef, PackNeeds>();
  private readonly waiting: Array<{ size: number; go: () => void }> = [];
  private readonly pool: BufferPool;
  private readonly byUnit = new WeakMap<Buffer, Unit>();
  /** Requests made so far, and whether an idle check is scheduled. */
  private submitted = 0;
  private idleCheck = false;
  private idle = false;
  /** Waits of the walk on something else than room here (whileBlocked). */
  private stalls = 0;
  /** Bytes read ahead of the requests for them (with a forecast), and the reads in flight they may join. */
  private readonly stash = new ReadStash();
  private readonly flights = new Map<PackRef, Flight[]>();
  private settled = false;
  /** Requests served from the stash or by joining a read in flight (for tests and benchmarks). */
  joined = 0;

  constructor(
    private readonly src: PlanSource,
    private readonly o: PlanOptions,
    private readonly forecast?: ReadForecast,
  ) {
    this.readBudget = Math.max(o.span, Math.floor(o.budget / 2));
    this.budget = this.readBudget + Math.max(o.budget - this.readBudget, 0);
    this.unitBudget = Math.max(o.budget - this.readBudget, 0);
    this.pool = new BufferPool(o.budget);
  }

  /**
   * Asks for these blobs' sealed bytes: resolves once there is room for them (the caller
   * goes on producing work then), with the promise of the bytes, `ready` (rejected with the read's
   * error when one of their reads fails).
   */
  async request(locs: BlobLocation[]): Promise<{ ready: Promise<SealedBlobsRead> }> {
    let total = 0;
    for (const l of locs) total += l.length;
    const size = sizeClass(Math.max(total, 1));
    if (this.waiting.length || (this.unitHeld > 0 && this.unitHeld + size > this.unitBudget)) {
      await new Promise<void>((go) => {
        this.waiting.push({ size, go });
        // Nothing more comes until there is room: read what is asked for.
        this.pump(true);
      });
    } else this.take(size);
    const buf = this.pool.take(size);
    const offsets = new Uint32Array(locs.length);
    let at = 0;
    const needs: Need[] = [];
    const ready = new Promise<SealedBlobsRead>((resolve, reject) => {
      const unit: Unit = { needs, missing: locs.length, size, buf, read: { bytes: Buffer.from(buf, 0, total), offsets }, failed: false, resolve, reject };
      this.byUnit.set(unit.read.bytes, unit);
      let queued = false;
      locs.forEach((loc, i) => {
        offsets[i] = at;
        const n: Need = { loc, unit, at, requested: false };
        at += loc.length;
        needs.push(n);
        if (this.forecast && this.served(n)) return;
        let list = this.pending.get(loc.pack);
        if (!list) this.pending.set(loc.pack, (list = new PackNeeds()));
        list.add(n);
        queued = true;
      });
      if (unit.missing === 0) resolve(unit.read);
      else if (queued) this.queue.push(unit);
    });
    this.submitted++;
    this.idle = false;
    // With a check pending, reads start then (a walk yields every few ms): planning on every request costs.
    if (!this.idleCheck) this.pump(false);
    // Its failure is the caller's to handle when it gets there.
    ready.catch(() => {});
    return { ready };
  }

  /**
   * The walk making the requests waits for `p` (room for another file, a tree): until it
   * settles nothing new comes, so reads start for all that is asked for.
   */
  async whileBlocked<T>(p: Promise<T>): Promise<T> {
    this.stalls++;
    this.pump(true);
    try {
      return await p;
    } finally {
      this.stalls--;
    }
  }

  /** A need served without a read of its own: from the stash, or by a read in flight that covers it. */
  private served(n: Need): boolean {
    const { pack, offset, length } = n.loc;
    this.forecast!.take(pack, offset);
    const got = this.stash.find(pack, offset, length);
    if (got) {
      got.bytes.copy(n.unit.read.bytes, n.at);
      n.requested = true;
      n.unit.missing--;
      this.joined++;
      if (this.forecast!.expected(pack, offset) > 0) return true;
      if (!got.span) this.unstash(this.stash.delete(pack, offset));
      else if (got.span.waiting.delete(offset) && !got.span.waiting.size) this.unstash(this.stash.removeSpan(got.span));
      return true;
    }
    const f = this.flights.get(pack)?.find((x) => x.read.offset <= offset && offset + length <= x.end);
    if (!f) return false;
    f.read.items.push(n);
    n.requested = true;
    this.joined++;
    return true;
  }

  /** Lets go of the bytes read ahead that nobody asked for (the walk is over). */
  dropStash(): void {
    this.unstash(this.stash.clear());
  }

  /**
   * Reads ahead of the walk what the forecast says it will ask for, in the order it will
   * ask (a backup's packs are not quite in a restore's order: read in pack order, bytes
   * wanted late would take the room of bytes wanted first), each read stretched over the
   * blobs to come around its first, within half of the reads' budget (the other half is
   * for reads the walk waits on).
   */
  private readAhead(): void {
    const f = this.forecast;
    if (!f) return;
    const limit = Math.floor(this.readBudget / 2);
    // Blobs asked for, held or being read are passed for good; a blob whose read would be
    // short while the forecast still grows is looked past, a few hundred blobs at most.
    let passed = 0;
    const short: Array<{ pack: PackRef; from: number; to: number }> = [];
    try {
      for (let i = 0; i < AHEAD_LOOK; i++) {
        if (this.inflight >= this.o.concurrency) return;
        const e = f.upcoming(i);
        if (!e) return;
        const { pack, offset, length } = e;
        if (f.expected(pack, offset) === 0 || this.stash.find(pack, offset, length) || this.flying(pack, offset, length)) {
          if (passed === i) passed++;
          continue;
        }
        // Larger than reads ahead may ever hold (a hostile index can say any length): read
        // when asked, and looked past for good, or a file that fails before asking would
        // stop every read ahead after it.
        if (length > limit) {
          if (passed === i) passed++;
          continue;
        }
        if (short.some((x) => x.pack === pack && x.from <= offset && offset < x.to)) continue;
        // Nothing forecast is let go for more reads ahead (the walk comes to it first): only spans with nothing forecast left in them.
        this.stash.idleSpans((s) => this.readHeld + Math.min(this.o.span, limit) > limit && (this.unstash(this.stash.removeSpan(s)), true));
        const room = limit - this.readHeld;
        if (length > room) return;
        const s = f.stretch(pack, offset, offset + length, { gap: this.o.gap, span: this.o.span, room: room - length, ...this.between(pack, offset, offset + length) });
        if (!this.settled && s.to - s.from < this.o.span / 2) {
          short.push({ pack, from: s.from, to: s.to });
          continue;
        }
        if (passed === i) passed++;
        this.start(pack, { offset: s.from, length: s.to - s.from, items: this.pending.get(pack)?.inRange(s.from, s.to) ?? [] });
      }
    } finally {
      f.pass(passed);
    }
  }

  /** The bytes of the pack around [from, to) not read or being read already: [floor, ceil). */
  private between(pack: PackRef, from: number, to: number): { floor: number; ceil: number } {
    let floor = 0;
    let ceil = Infinity;
    const see = (a: number, b: number) => {
      if (b <= from) floor = Math.max(floor, b);
      else if (a >= to) ceil = Math.min(ceil, a);
    };
    for (const x of this.flights.get(pack) ?? []) see(x.read.offset, x.end);
    this.stash.eachSpan(pack, see);
    return { floor, ceil };
  }

  /** Whether a read in flight covers these bytes. */
  private flying(pack: PackRef, offset: number, length: number): boolean {
    return this.flights.get(pack)?.some((x) => x.read.offset <= offset && offset + length <= x.end) === true;
  }

  /**
   * Lets bytes read ahead go until `need` more fit within `limit`: spans first (the blobs in
   * them still forecast are kept), then, for a read the walk waits on (`waitedOn`), single
   * blobs, the one the walk asks for last first. Only when that is enough: else the reads
   * in flight give room back first.
   */
  private makeRoom(need: number, waitedOn: boolean, limit = this.readBudget): void {
    const flying = this.readHeld - this.stash.bytes;
    if (flying > 0 && flying + need > limit) return;
    while (this.stash.spanBytes > 0 && this.readHeld + need > limit) this.dropSpan();
    if (waitedOn) while (this.stash.blobBytes > 0 && this.readHeld + need > limit) this.unstash(this.stash.evictLatest());
  }

  private dropSpan(): void {
    const s = this.stash.shiftSpan()!;
    this.unstash(s.bytes.length);
    for (const e of this.forecast!.within(s.pack, s.offset, s.offset + s.bytes.length)) {
      if (this.stash.has(s.pack, e.offset)) continue;
      const at = e.offset - s.offset;
      this.stash.put(s.pack, e.offset, Buffer.from(s.bytes.subarray(at, at + e.length)), this.forecast!.neededAt(s.pack, e.offset));
      this.count(e.length);
      this.readHeld += e.length;
    }
  }

  /** Stashed bytes let go (they count as reads' bytes). */
  private unstash(n: number): void {
    this.readHeld -= n;
    this.count(-n);
  }

  /** The work is done with its bytes. */
  release(r: SealedBlobsRead): void {
    const unit = this.byUnit.get(r.bytes);
    if (!unit) return;
    this.byUnit.delete(r.bytes);
    this.free(unit);
  }

  private free(unit: Unit): void {
    this.pool.give(unit.buf);
    this.unitHeld -= unit.size;
    this.count(-unit.size);
    while (this.waiting.length && (this.unitHeld === 0 || this.unitHeld + this.waiting[0]!.size <= this.unitBudget)) {
      const w = this.waiting.shift()!;
      this.take(w.size);
      w.go();
    }
  }

  private take(size: number): void {
    this.unitHeld += size;
    this.count(size);
  }

  private count(n: number): void {
    this.held += n;
    if (this.held > this.peak) this.peak = this.held;
  }

  /** Starts reads while there is room: for the oldest work first, then ahead of the walk. `force`: also reads that could still grow. */
  private pump(force: boolean): void {
    this.pumpWork(force);
    this.readAhead();
  }

  /**
   * The forecast grew: reads ahead may start. `settled`: it will not grow for a while (no
   * trees are loading), so its stretches are as long as they get; until then a read ahead
   * waits to be half a span long.
   */
  foreseen(settled: boolean): void {
    this.settled = settled;
    this.readAhead();
  }

  private pumpWork(force: boolean): void {
    while (this.inflight < this.o.concurrency) {
      while (this.head < this.queue.length && this.queue[this.head]!.needs.every((n) => n.requested)) this.head++;
      if (this.head > 1024) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      const unit = this.queue[this.head];
      if (!unit) return;
      const first = unit.needs.find((n) => !n.requested)!;
      const list = this.pending.get(first.loc.pack)!;
      const { read: r, last } = list.readFrom(first, this.o.gap, this.o.span, this.o.readsInto);
      // A read that could still grow starts short only when nothing more is coming soon:
      // when the walk waits for room or for work in flight (nothing new comes until reads
      // free some; holding back for the reads in flight would cost a round trip per read),
      // else when nothing is being read (the end of one wakes this up again) and the walk
      // paused for a turn of the event loop.
      // A forecast says what is coming in this pack: the read stretches over it now (start).
      const growing = last && r.length < this.o.span && !this.forecast?.has(first.loc.pack);
      const blocked = force || this.waiting.length > 0 || this.stalls > 0;
      if (growing && this.inflight > 0 && !blocked) return;
      if (growing && !blocked && !this.idle) {
        this.whenIdle();
        return;
      }
      // Bytes read ahead make room for a read the walk waits on, the oldest first.
      this.makeRoom(this.readSize(r.length), true);
      if (this.readHeld > 0 && this.readHeld + this.readSize(r.length) > this.readBudget) return;
      this.start(first.loc.pack, this.stretched(first.loc.pack, r));
    }
  }

  /** Pumps with `idle` set once a turn of the event loop passed with no new request. */
  private whenIdle(): void {
    if (this.idleCheck) return;
    this.idleCheck = true;
    const mark = this.submitted;
    setImmediate(() => {
      this.idleCheck = false;
      if (this.submitted === mark) this.idle = true;
      this.pump(false);
    });
  }

  /** The read stretched over the blobs forecast to come in its pack, as room allows; the needs it then covers join it. */
  private stretched(pack: PackRef, r: PlannedRead<Need>): PlannedRead<Need> {
    if (!this.forecast) return r;
    // Spans read earlier give way to reads further on.
    const room = this.readBudget - (this.readHeld - this.stash.spanBytes) - this.readSize(r.length);
    const s = this.forecast.stretch(pack, r.offset, r.offset + r.length, { gap: this.o.gap, span: this.o.span, room, ...this.between(pack, r.offset, r.offset + r.length) });
    if (s.from === r.offset && s.to === r.offset + r.length) return r;
    this.makeRoom(this.readSize(s.to - s.from), false);
    if (this.readHeld + this.readSize(s.to - s.from) > this.readBudget) return r;
    const items = r.items;
    const mine = new Set(items);
    for (const n of this.pending.get(pack)!.inRange(s.from, s.to)) if (!mine.has(n)) items.push(n);
    return { offset: s.from, length: s.to - s.from, items };
  }

  private start(pack: PackRef, r: PlannedRead<Need>): void {
    this.pending.get(pack)?.taken(r.items);
    const size = this.readSize(r.length);
    this.readHeld += size;
    this.count(size);
    this.inflight++;
    this.reads++;
    // A read that is exactly one piece of work's blobs back to back (a large chunk, a run of
    // small files) fills that work's buffer: no copy, and no read buffer to fault in.
    const direct = this.o.readsInto ? directTarget(r) : null;
    const into = this.o.readsInto && !direct ? this.pool.take(r.length) : null;
    let flight: Flight | undefined;
    if (this.forecast && !direct) {
      flight = { read: r, end: r.offset + r.length };
      let fs = this.flights.get(pack);
      if (!fs) this.flights.set(pack, (fs = []));
      fs.push(flight);
    }
    const landed = () => {
      if (!flight) return;
      const fs = this.flights.get(pack)!;
      fs.splice(fs.indexOf(flight), 1);
      if (!fs.length) this.flights.delete(pack);
    };
    const finish = () => {
      if (into) this.pool.give(into);
      this.readHeld -= size;
      this.count(-size);
      this.inflight--;
    };
    this.src.readPackRange(pack, r.offset, r.length, direct ?? (into ? Buffer.from(into, 0, r.length) : undefined)).then(
      (bytes) => {
        landed();
        for (const n of r.items) {
          const u = n.unit;
          if (u.failed) continue;
          if (!direct) bytes.copy(u.read.bytes, n.at, n.loc.offset - r.offset, n.loc.offset - r.offset + n.loc.length);
          if (--u.missing === 0) u.resolve(u.read);
        }
        finish();
        // After the read's own room is given back: what is kept is part of what it held.
        if (flight) this.keepSpan(pack, r.offset, bytes);
        this.pump(false);
      },
      (e: unknown) => {
        landed();
        for (const n of r.items) this.fail(n.unit, e);
        finish();
        this.pump(false);
      },
    );
  }

  /** Keeps a read's bytes for requests still to come (forecast or not), until their room is wanted or every forecast blob in it was asked for. */
  private keepSpan(pack: PackRef, offset: number, bytes: Buffer): void {
    const waiting = new Set(this.forecast!.within(pack, offset, offset + bytes.length).map((e) => e.offset));
    this.stash.keepSpan({ pack, offset, bytes, waiting });
    this.count(bytes.length);
    this.readHeld += bytes.length;
  }

  /** What a read of n bytes holds: a pooled buffer when reads fill ours. */
  private readSize(n: number): number {
    return this.o.readsInto ? sizeClass(n) : n;
  }

  /** A read of one of its blobs failed: the work gets the error, and its other blobs are not read. */
  private fail(u: Unit, e: unknown): void {
    if (u.failed) return;
    u.failed = true;
    for (const n of u.needs) if (!n.requested) this.pending.get(n.loc.pack)!.taken([n]);
    this.byUnit.delete(u.read.bytes);
    this.free(u);
    u.reject(e);
  }
}

/** The part of its work's buffer a read fills when its blobs are that work's, back to back in the pack and in the buffer; else null. */
function directTarget(r: PlannedRead<Need>): Buffer | null {
  const first = r.items[0];
  if (!first || first.loc.offset !== r.offset) return null;
  let len = 0;
  for (const n of r.items) {
    if (n.unit !== first.unit || n.loc.offset !== r.offset + len || n.at !== first.at + len) return null;
    len += n.loc.length;
  }
  return len === r.length ? first.unit.read.bytes.subarray(first.at, first.at + len) : null;
}

/** Blobs to come a read ahead looks at, from the first not passed (a bound on its work per call). */
const AHEAD_LOOK = 256;

/** Blobs this large are read straight into their work's buffer where reads fill a buffer given. */
const DIRECT_MIN = 64 << 10;

/** The needs of one pack not yet requested, by offset (requested ones are dropped in bulk, now and then). */
class PackNeeds {
  private list: Need[] = [];
  private dead = 0;

  add(n: Need): void {
    const l = this.list;
    // Requests come mostly in pack order (a backup wrote files in the order a restore walks them).
    if (!l.length || l[l.length - 1]!.loc.offset <= n.loc.offset) l.push(n);
    else l.splice(this.lowerBound(n.loc.offset + 1), 0, n);
  }

  /** The read that serves `first`, the needs after it and those just before; `last`: it reaches the last need (more may come to join it). */
  readFrom(first: Need, gap: number, span: number, direct: boolean): { read: PlannedRead<Need>; last: boolean } {
    const l = this.list;
    const start = first.loc.offset;
    let end = start;
    const items: Need[] = [];
    // Reads that fill a buffer given: a large blob is read alone into its work's buffer
    // (directTarget), not with another work's blobs into a read buffer and copied out.
    const apart = (n: Need) => direct && n.unit !== first.unit && (n.loc.length >= DIRECT_MIN || first.loc.length >= DIRECT_MIN);
    let i = this.lowerBound(start);
    for (; i < l.length; i++) {
      const n = l[i]!;
      if (n.requested) continue;
      const e = Math.max(end, n.loc.offset + n.loc.length);
      if (items.length && (n.loc.offset > end + gap || e - start > span || apart(n))) break;
      items.push(n);
      end = e;
    }
    // Then back: later work may want blobs just before (a pack's order is not quite the walk's).
    let from = start;
    for (let j = this.lowerBound(start) - 1; j >= 0; j--) {
      const n = l[j]!;
      if (n.requested) continue;
      if (n.loc.offset + n.loc.length + gap < from || end - n.loc.offset > span || apart(n)) break;
      items.push(n);
      from = n.loc.offset;
    }
    return { read: { offset: from, length: end - from, items }, last: i >= l.length };
  }

  /** The needs not yet requested that lie wholly in [from, to). */
  inRange(from: number, to: number): Need[] {
    const out: Need[] = [];
    for (let i = this.lowerBound(from); i < this.list.length && this.list[i]!.loc.offset < to; i++) {
      const n = this.list[i]!;
      if (!n.requested && n.loc.offset + n.loc.length <= to) out.push(n);
    }
    return out;
  }

  taken(items: Need[]): void {
    for (const n of items) n.requested = true;
    this.dead += items.length;
    if (this.dead * 2 > this.list.length) {
      this.list = this.list.filter((n) => !n.requested);
      this.dead = 0;
    }
  }

  /** The first index whose offset is at least `offset`. */
  private lowerBound(offset: number): number {
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.list[mid]!.loc.offset < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

// Packer: collects new blobs into packs (one open pack per blob type), uploads full packs
// with bounded concurrency, and remembers what it wrote so the index can be written after
// the packs.
//
// Sealing (zstd + AES-GCM) of data blobs runs on libuv's thread pool (SealPool), in
// batches: small blobs are copied back to back into a batch buffer (one call for many
// files), a large blob is a batch of its own. A blob is sealed under the key of the pack it
// was added to; a pack stops taking blobs once its size (sealed + still in flight) reaches
// the target, and is written when its last batch comes back. Tree blobs are sealed inline.
import { randomBytes } from 'node:crypto';
import type { Backend, ObjectFile, StorageClass } from '../backend/backend.js';
import { sealTo } from '../crypto/box.js';
import type { IndexPack } from '../format/index-file.js';
import { PackBuilder, type BlobType } from '../format/pack.js';
import { packName } from './layout.js';
import { SealPool } from './seal-pool.js';
import type { PackFold } from './parity-writer.js';
import { sealBlobNative } from '../platform/native/blob.js';
import { gfAlloc as hugePageBuffer, gfSha256Async as sha256OnPool } from '../platform/native/parity.js';

const BATCH_BYTES = 1 << 20;
const BATCH_BLOBS = 256;
/** Blobs shorter than this are copied by Packer.add before it first yields. */
const COPIED_AT_ONCE = BATCH_BYTES / 4;

/**
 * Whether Packer.add takes a blob of this length (uses or copies it) before it first
 * yields, so that the caller may reuse its buffer at once.
 */
export function copiedAtOnce(length: number): boolean {
  return length < COPIED_AT_ONCE;
}

interface Batch {
  data: Uint8Array;
  used: number;
  ids: Buffer[];
  offsets: number[];
  lengths: number[];
}

interface OpenPack {
  type: BlobType;
  /** The file it is written to from its buffer, on backends that have them (else it is put). */
  file: ObjectFile | null;
  /** Its part in a parity group (parity on). */
  fold: PackFold | null;
  key: Buffer;
  builder: PackBuilder;
  batch: Batch | null;
  /** Raw bytes added but not yet sealed (in the batch or on the pool). */
  reserved: number;
  inFlight: number;
  closed: boolean;
  written: boolean;
}

export interface PackerOptions {
  backend: Backend;
  repoPub: Buffer;
  level: number;
  packSize: { data: number; tree: number };
  storageClass: { data: StorageClass; tree: StorageClass };
  maxUploads?: number;
  /** Batches sealed at once on libuv's pool (TSBAK_WORKERS, default 2); 0 seals everything on the calling thread. */
  workers?: number;
  /** A pack stored: its index entry, its size, and (tree packs put from memory) a copy of its bytes. */
  onPack?: (p: IndexPack, bytes: number, treeBytes?: Buffer) => void;
  /**
   * Parity across packs: each pack's bytes are folded in once it is finished, and it is
   * told when the pack is stored; a pack waits for room() before it is stored.
   */
  parity?: { start(): PackFold; room(): Promise<void> };
}

export class Packer {
  private open: Record<BlobType, OpenPack | null> = { data: null, tree: null };
  private readonly pool: SealPool | null;
  private readonly maxInFlight: number;
  /** Batches dispatched and not yet back (posted or waiting for room). */
  private inFlight = 0;
  /** Batches handed to the pool. */
  private running = 0;
  private roomWaiters: Array<() => void> = [];
  private readonly deferHashing: boolean;
  private hashJobs = new Set<Promise<Buffer>>();
  private sealing = new Set<Promise<void>>();
  private uploads = new Set<Promise<void>>();
  private failure: unknown = null;
  /** Pack files being written (dropped by close() if a backup ends without them). */
  private readonly files = new Set<ObjectFile>();
  /** Buffers of stored packs, to lay out the next packs in (a few, not one per pack). */
  private arenas: Buffer[] = [];
  /** Packs stored since the last takeWritten(). */
  private written: IndexPack[] = [];
  private writtenBlobCount = 0;
  private writtenByteCount = 0;
  bytesWritten = 0;
  blobsWritten = 0;

  constructor(private readonly o: PackerOptions) {
    const n = o.workers ?? (process.env.TSBAK_WORKERS ? Number(process.env.TSBAK_WORKERS) : 2);
    // Input buffers out at once (takeInput): n + 1 batches sealing or hashing, the batch being
    // filled, and two waiting their turn.
    this.pool = n > 0 ? new SealPool(n + 4) : null;
    this.maxInFlight = n + 1;
    this.deferHashing = process.env.TSBAK_DEFER_HASH ? process.env.TSBAK_DEFER_HASH === '1' : true;
  }

  private current(type: BlobType): OpenPack {
    let p = this.open[type];
    if (!p) {
      const file = this.o.backend.createObjectFile?.() ?? null;
      // Room for the target size plus the one blob that may take it over (a chunk or batch).
      const capacity = this.o.packSize[type] + (this.o.packSize[type] >> 2);
      const arena = this.arenas.find((a) => a.length >= capacity && a.length <= 2 * capacity);
      if (arena) this.arenas = this.arenas.filter((a) => a !== arena);
      // A new buffer is backed by huge pages: the main thread lays the pack out in it, and
      // 4 KiB first touches (a fault and a zeroed page each) cost it more than the copies.
      const builder = new PackBuilder(capacity, arena ?? hugePageBuffer(capacity));
      if (file) this.files.add(file);
      p = this.open[type] = { type, file, fold: null, key: randomBytes(32), builder, batch: null, reserved: 0, inFlight: 0, closed: false, written: false };
    }
    return p;
  }

  /**
   * Queues one blob. Resolves when there is room (backpressure). A blob copiedAtOnce() is
   * used or copied before the first promise tick, so the caller may reuse its buffer at
   * once; a longer one must stay unchanged until this resolves (it is copied only once an
   * input buffer is free: see takeInput).
   */
  async add(type: BlobType, id: Buffer, plain: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    this.blobsWritten++;
    if (!this.pool || type === 'tree') {
      const p = this.current(type);
      const level = type === 'tree' ? 3 : this.o.level;
      p.builder.add(id, type, sealBlobNative(p.key, id, plain, level), plain.length);
      await this.maybeClose(p);
      return;
    }
    if (!copiedAtOnce(plain.length)) {
      // A large blob travels alone.
      const data = await this.takeInput(plain.length);
      const p = this.current(type);
      data.set(plain);
      p.reserved += plain.length;
      const send = this.dispatch(p, { data, used: plain.length, ids: [id], offsets: [0], lengths: [plain.length] });
      await this.maybeClose(p);
      await send;
      return;
    }
    // A buffer for a new batch, unless one is being filled. The blob is copied before the
    // first yield (the caller reuses its buffer at once): if a new batch must wait for a
    // buffer, into a copy of its own first.
    let fresh: Uint8Array | null = null;
    if (!this.open[type]?.batch) {
      fresh = this.tryTakeInput(BATCH_BYTES);
      if (!fresh) {
        plain = Uint8Array.prototype.slice.call(plain);
        fresh = await this.takeInput(BATCH_BYTES);
      }
    }
    const p = this.current(type);
    let b = p.batch;
    if (fresh && b) {
      this.pool.giveInput(fresh.buffer as ArrayBuffer);
      this.wake();
    }
    // (No batch was open without a wait in between: `fresh` is set.)
    if (!b) b = p.batch = { data: fresh!, used: 0, ids: [], offsets: [], lengths: [] };
    b.data.set(plain, b.used);
    b.ids.push(id);
    b.offsets.push(b.used);
    b.lengths.push(plain.length);
    b.used += plain.length;
    p.reserved += plain.length;
    if (b.ids.length >= BATCH_BLOBS || b.used + BATCH_BYTES / 4 > BATCH_BYTES) {
      p.batch = null;
      const send = this.dispatch(p, b);
      await this.maybeClose(p);
      await send;
      return;
    }
    await this.maybeClose(p);
  }

  /**
   * An input buffer for a batch or a copy to hash, once fewer than the SealPool keeps are
   * out (batches filled, sealing or waiting for the pool; copies being hashed). Without this
   * bound the walk's concurrent saves started new batches while full ones waited their turn:
   * 13 buffers out at once, and every batch beyond the pool's few was a fresh 4 MiB buffer,
   * allocated, zeroed and page-faulted on the main thread. The check and the take are one
   * synchronous step, so waiters woken together cannot all pass.
   */
  private async takeInput(n: number): Promise<Uint8Array> {
    for (;;) {
      const b = this.tryTakeInput(n);
      if (b) return b;
      await new Promise<void>((r) => this.roomWaiters.push(r));
    }
  }

  /** takeInput without waiting: null when none may be taken now. */
  private tryTakeInput(n: number): Uint8Array | null {
    if (this.failure) throw this.failure;
    const pool = this.pool!;
    return pool.inputsOut < pool.slots ? new Uint8Array(pool.takeInput(n)) : null;
  }

  /** Every waiter re-checks its own condition (they wait for different kinds of room). */
  private wake(): void {
    const w = this.roomWaiters;
    this.roomWaiters = [];
    for (const r of w) r();
  }

  /**
   * Whether large blobs are hashed off the calling thread (addUnhashed: on libuv's pool, in
   * the copy made for sealing), so that the chunker never waits for a hash: with
   * incompressible data that hashing limited a backup (docs/PERFORMANCE.md). Blobs are then
   * queued in the order their hashes finish, which mixes the chunks of files read at once
   * in packs a little differently. TSBAK_DEFER_HASH=1 or 0 forces either way (tests compare both).
   */
  get canDefer(): boolean {
    return this.pool !== null && this.deferHashing;
  }

  /**
   * For a large blob whose id is not known yet: waits for room, copies `plain` (the caller
   * may reuse it once this resolves), then hashes the copy off the calling thread with
   * `hash` and queues it if `isNew(id)` (which must mark it pending, synchronously) says
   * so. The returned `id` resolves once that is decided. The chunker thus never waits for
   * a hash: the next chunk is cut while this one is hashed.
   */
  async addUnhashed(
    type: BlobType,
    plain: Uint8Array,
    hash: (data: Uint8Array) => Promise<Buffer>,
    isNew: (id: Buffer) => boolean,
  ): Promise<{ id: Promise<Buffer> }> {
    if (this.failure) throw this.failure;
    const data = await this.takeInput(plain.length);
    data.set(plain);
    const len = plain.length;
    const job = hash(data.subarray(0, len)).then(
      (id) => {
        this.hashJobs.delete(job);
        if (!isNew(id)) {
          this.pool!.giveInput(data.buffer as ArrayBuffer);
          this.wake();
          return id;
        }
        this.blobsWritten++;
        const p = this.current(type);
        p.reserved += len;
        const send = this.dispatch(p, { data, used: len, ids: [id], offsets: [0], lengths: [len] });
        // dispatch counted the batch as running (or waiting) already: a waiter may go on.
        this.wake();
        void this.maybeClose(p).catch((e) => (this.failure ??= e));
        void send;
        return id;
      },
      (e) => {
        this.hashJobs.delete(job);
        this.failure ??= e;
        this.wake();
        throw e;
      },
    );
    this.hashJobs.add(job);
    job.catch(() => {}); // failure is also kept in this.failure: flush reports it
    return { id: job };
  }

  /** Sends a batch to the pool. Counted in flight at once (synchronously); waits for room before posting. */
  private async dispatch(p: OpenPack, b: Batch): Promise<void> {
    p.inFlight++;
    this.inFlight++;
    // Only batches handed to the pool count against the limit (not the ones waiting here).
    while (this.running >= this.maxInFlight) await new Promise<void>((r) => this.roomWaiters.push(r));
    this.running++;
    const job = this.pool!
      .seal({ key: p.key, level: this.o.level, data: b.data.buffer as ArrayBuffer, ids: Buffer.concat(b.ids), offsets: b.offsets, lengths: b.lengths })
      .then(async ({ parts, recycle }) => {
        for (let i = 0; i < parts.length; i++) {
          p.builder.add(b.ids[i]!, p.type, parts[i]!, b.lengths[i]!);
          p.reserved -= b.lengths[i]!;
        }
        recycle();
        p.inFlight--;
        await this.maybeClose(p);
      })
      .catch((e) => {
        this.failure ??= e;
      })
      .finally(() => {
        this.inFlight--;
        this.running--;
        this.sealing.delete(job);
        this.wake();
      });
    this.sealing.add(job);
  }

  /** Stops a full pack from taking blobs, and writes it once nothing is in flight for it. */
  private async maybeClose(p: OpenPack): Promise<void> {
    if (!p.closed && p.builder.size + p.reserved >= this.o.packSize[p.type]) {
      p.closed = true;
      if (this.open[p.type] === p) this.open[p.type] = null;
      if (p.batch) {
        const b = p.batch;
        p.batch = null;
        void this.dispatch(p, b);
      }
    }
    if (p.closed && p.inFlight === 0) await this.writePack(p);
  }

  private async writePack(p: OpenPack): Promise<void> {
    if (p.written || p.builder.count === 0) return;
    p.written = true;
    const sealedKey = sealTo(this.o.repoPub, p.key);
    const { bytes, entries } = p.builder.finish(p.key, sealedKey);
    if (this.o.parity) (p.fold = this.o.parity.start()).add(bytes);
    // A pack waiting for its store holds its buffer: at most `max` of them.
    const max = this.o.maxUploads ?? (p.file ? 2 : this.o.backend.putConcurrency ?? 2);
    while (this.uploads.size >= max) await Promise.race(this.uploads);
    await this.o.parity?.room();
    if (this.failure) throw this.failure;
    // Copied before the arena goes back for the next pack (the local tree cache keeps it).
    const treeBytes = !p.file && p.type === 'tree' && this.o.onPack ? Buffer.from(bytes) : undefined;
    const up = this.store(p, bytes)
      .then((id) => {
        // The ids are kept (until the next index file) as views into one buffer per pack: a
        // Buffer of its own per blob costs ~250 bytes more (ArrayBuffer, backing store), and
        // tens of thousands of them in the old generation made V8 grow the main heap further.
        const ids = Buffer.allocUnsafeSlow(entries.length * 32);
        const entry: IndexPack = {
          id,
          kind: p.type,
          sealedKey,
          blobs: entries.map((e, i) => {
            ids.set(e.id, i * 32);
            return { id: ids.subarray(i * 32, i * 32 + 32), offset: e.offset, length: e.length, rawLength: e.rawLength };
          }),
        };
        this.bytesWritten += bytes.length;
        this.written.push(entry);
        this.writtenBlobCount += entry.blobs.length;
        this.writtenByteCount += bytes.length;
        this.o.onPack?.(entry, bytes.length, treeBytes);
        p.fold?.stored(entry, bytes.length);
      })
      .catch((e) => {
        this.failure ??= e;
      })
      .finally(() => this.uploads.delete(up));
    this.uploads.add(up);
  }

  /**
   * Stores a finished pack under the SHA-256 of its bytes, both taken on libuv's pool: to its
   * file (written while it is hashed, then committed) or put. Its buffer goes back for the
   * next packs once nothing reads it. Returns its id.
   */
  private async store(p: OpenPack, bytes: Buffer): Promise<Buffer> {
    const file = p.file;
    if (!file) {
      const id = await sha256OnPool(bytes);
      await this.o.backend.put(packName(p.type, id.toString('hex')), bytes, { storageClass: this.o.storageClass[p.type] });
      if (this.arenas.length < 1) this.arenas.push(p.builder.buffer);
      return id;
    }
    let committing = false;
    try {
      const [hashed, written] = await Promise.allSettled([sha256OnPool(bytes), file.write(bytes)]);
      if (this.arenas.length < 2) this.arenas.push(p.builder.buffer);
      if (written.status === 'rejected') throw written.reason;
      if (hashed.status === 'rejected') throw hashed.reason;
      committing = true;
      await file.commit(packName(p.type, hashed.value.toString('hex')));
      return hashed.value;
    } catch (e) {
      // A commit removes its temp file whatever happens; before it, the file is dropped here.
      if (!committing) await file.abort().catch(() => {});
      throw e;
    } finally {
      this.files.delete(file);
    }
  }

  /** Writes out the open packs and waits for every seal and upload. */
  async flush(): Promise<void> {
    while (this.hashJobs.size) await Promise.allSettled([...this.hashJobs]);
    for (const type of ['data', 'tree'] as const) {
      const p = this.open[type];
      if (!p) continue;
      this.open[type] = null;
      p.closed = true;
      if (p.batch) {
        const b = p.batch;
        p.batch = null;
        void this.dispatch(p, b);
      }
      await this.maybeClose(p);
    }
    while (this.sealing.size || this.inFlight) await Promise.all([...this.sealing, new Promise((r) => setImmediate(r))]);
    while (this.uploads.size) await Promise.all(this.uploads);
    if (this.failure) throw this.failure;
  }

  /** The most batch input buffers out at once (see takeInput), and how many the SealPool keeps. */
  get inputBuffers(): { mostOut: number; kept: number } {
    return { mostOut: this.pool?.mostInputsOut ?? 0, kept: this.pool?.slots ?? 0 };
  }

  /** Why writing failed (a pack could not be sealed or stored), once it has. */
  get failed(): unknown {
    return this.failure;
  }

  get writtenCount(): number {
    return this.written.length;
  }

  /** Blobs in the packs stored since the last takeWritten(). */
  get writtenBlobs(): number {
    return this.writtenBlobCount;
  }

  /** Bytes of the packs stored since the last takeWritten(). */
  get writtenBytes(): number {
    return this.writtenByteCount;
  }

  takeWritten(): IndexPack[] {
    const w = this.written;
    this.written = [];
    this.writtenBlobCount = 0;
    this.writtenByteCount = 0;
    return w;
  }

  async close(): Promise<void> {
    await Promise.all([...this.files].map((f) => f.abort()));
    this.files.clear();
    await this.pool?.close();
  }
}

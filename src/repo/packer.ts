// Packer: collects new blobs into packs (one open pack per blob type), uploads full packs
// with bounded concurrency, and remembers what it wrote so the index can be written after
// the packs.
//
// Sealing (zstd + AES-GCM) of large blobs runs in a worker pool. A blob is assigned to the
// open pack when it is added (it is sealed under that pack's key); the pack stops taking
// blobs once its sealed size reaches the target, and is written when its last in-flight
// blob comes back.
import { randomBytes } from 'node:crypto';
import type { Backend, StorageClass } from '../backend/backend.js';
import { sealTo } from '../crypto/box.js';
import { sha256 } from '../crypto/hash.js';
import { sealBlob } from '../format/blob.js';
import type { IndexPack } from '../format/index-file.js';
import { PackBuilder, type BlobType } from '../format/pack.js';
import { packName } from './layout.js';
import { SealPool } from './seal-pool.js';

/** Below this size a blob is sealed inline: a worker round trip would cost more. */
const INLINE_SEAL = 64 << 10;

interface OpenPack {
  type: BlobType;
  key: Buffer;
  builder: PackBuilder;
  inFlight: number;
  closed: boolean;
  written?: boolean;
}

export interface PackerOptions {
  backend: Backend;
  repoPub: Buffer;
  level: number;
  packSize: { data: number; tree: number };
  storageClass: { data: StorageClass; tree: StorageClass };
  maxUploads?: number;
  /** Worker threads for sealing; 0 seals everything on the calling thread. */
  workers?: number;
  /** Called after each pack is stored, with its index entry. */
  onPack?: (p: IndexPack, bytes: number) => void;
}

export class Packer {
  private open: Record<BlobType, OpenPack | null> = { data: null, tree: null };
  private readonly pool: SealPool | null;
  private readonly maxInFlight: number;
  private inFlight = 0;
  private inFlightWaiters: Array<() => void> = [];
  private sealing = new Set<Promise<void>>();
  private uploads = new Set<Promise<void>>();
  private failure: unknown = null;
  /** Packs stored since the last takeWritten(). */
  private written: IndexPack[] = [];
  bytesWritten = 0;
  blobsWritten = 0;

  constructor(private readonly o: PackerOptions) {
    const n = o.workers ?? 2;
    this.pool = n > 0 ? new SealPool(n) : null;
    this.maxInFlight = Math.max(2, n * 3);
  }

  private current(type: BlobType): OpenPack {
    let p = this.open[type];
    if (!p) p = this.open[type] = { type, key: randomBytes(32), builder: new PackBuilder(), inFlight: 0, closed: false };
    return p;
  }

  /** Seals and queues one blob. Resolves when there is room (backpressure on sealing and uploads). */
  async add(type: BlobType, id: Buffer, plain: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    const level = type === 'tree' ? 3 : this.o.level;
    const rawLength = plain.length;
    this.blobsWritten++;
    if (!this.pool || rawLength < INLINE_SEAL) {
      const p = this.current(type);
      p.builder.add(id, type, sealBlob(p.key, id, plain, level), rawLength);
      await this.maybeClose(p);
      return;
    }
    // Copy into a buffer of its own (the caller reuses `plain`), which is then transferred
    // to the worker: posting a view would clone its whole backing ArrayBuffer.
    const own = new Uint8Array(new ArrayBuffer(rawLength));
    own.set(plain);
    while (this.inFlight >= this.maxInFlight) await new Promise<void>((r) => this.inFlightWaiters.push(r));
    // Pick the pack only now: the one open before the wait may have been closed and written.
    const p = this.current(type);
    this.inFlight++;
    p.inFlight++;
    const job = this.pool
      .seal(p.key, id, own, level)
      .then(async (sealed) => {
        p.builder.add(id, type, sealed, rawLength);
        p.inFlight--;
        await this.maybeClose(p);
      })
      .catch((e) => {
        this.failure ??= e;
      })
      .finally(() => {
        this.inFlight--;
        this.sealing.delete(job);
        this.inFlightWaiters.shift()?.();
      });
    this.sealing.add(job);
  }

  /** Stops a full pack from taking blobs, and writes it once nothing is in flight for it. */
  private async maybeClose(p: OpenPack): Promise<void> {
    if (!p.closed && p.builder.size >= this.o.packSize[p.type]) {
      p.closed = true;
      if (this.open[p.type] === p) this.open[p.type] = null;
    }
    if (p.closed && p.inFlight === 0) await this.writePack(p);
  }

  private async writePack(p: OpenPack): Promise<void> {
    if (p.written || p.builder.count === 0) return;
    p.written = true;
    const sealedKey = sealTo(this.o.repoPub, p.key);
    const { bytes, entries } = p.builder.finish(p.key, sealedKey);
    const id = sha256(bytes);
    const entry: IndexPack = {
      id,
      kind: p.type,
      sealedKey,
      blobs: entries.map((e) => ({ id: e.id, offset: e.offset, length: e.length, rawLength: e.rawLength })),
    };
    const max = this.o.maxUploads ?? 2;
    while (this.uploads.size >= max) await Promise.race(this.uploads);
    if (this.failure) throw this.failure;
    const up = this.o.backend
      .put(packName(p.type, id.toString('hex')), bytes, { storageClass: this.o.storageClass[p.type] })
      .then(() => {
        this.bytesWritten += bytes.length;
        this.written.push(entry);
        this.o.onPack?.(entry, bytes.length);
      })
      .catch((e) => {
        this.failure ??= e;
      })
      .finally(() => this.uploads.delete(up));
    this.uploads.add(up);
  }

  /** Writes out the open packs and waits for every seal and upload. */
  async flush(): Promise<void> {
    while (this.sealing.size) await Promise.all(this.sealing);
    for (const type of ['data', 'tree'] as const) {
      const p = this.open[type];
      if (p) {
        this.open[type] = null;
        p.closed = true;
        await this.maybeClose(p);
      }
    }
    while (this.uploads.size) await Promise.all(this.uploads);
    if (this.failure) throw this.failure;
  }

  takeWritten(): IndexPack[] {
    const w = this.written;
    this.written = [];
    return w;
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }
}

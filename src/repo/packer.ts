// Packer: collects new blobs into packs (one open pack per blob type), uploads full packs
// with bounded concurrency, and remembers what it wrote so the index can be written after
// the packs. Blob sealing happens here, on add, under the open pack's fresh random key.
import { randomBytes } from 'node:crypto';
import type { Backend, StorageClass } from '../backend/backend.js';
import { sealTo } from '../crypto/box.js';
import { sha256 } from '../crypto/hash.js';
import { sealBlob } from '../format/blob.js';
import type { IndexPack } from '../format/index-file.js';
import { PackBuilder, type BlobType } from '../format/pack.js';
import { packName } from './layout.js';

interface OpenPack {
  key: Buffer;
  builder: PackBuilder;
}

export interface PackerOptions {
  backend: Backend;
  repoPub: Buffer;
  level: number;
  packSize: { data: number; tree: number };
  storageClass: { data: StorageClass; tree: StorageClass };
  maxUploads?: number;
  /** Called after each pack is stored, with its index entry. */
  onPack?: (p: IndexPack, bytes: number) => void;
}

export class Packer {
  private open: Record<BlobType, OpenPack | null> = { data: null, tree: null };
  private uploads = new Set<Promise<void>>();
  private failure: unknown = null;
  /** Packs stored since the last takeWritten(). */
  private written: IndexPack[] = [];
  bytesWritten = 0;
  blobsWritten = 0;

  constructor(private readonly o: PackerOptions) {}

  /** Seals and queues one blob. Resolves when there is room (backpressure on uploads). */
  async add(type: BlobType, id: Buffer, plain: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    let p = this.open[type];
    if (!p) p = this.open[type] = { key: randomBytes(32), builder: new PackBuilder() };
    const sealed = sealBlob(p.key, id, plain, type === 'tree' ? 3 : this.o.level);
    p.builder.add(id, type, sealed, plain.length);
    this.blobsWritten++;
    if (p.builder.size >= this.o.packSize[type]) await this.flushType(type);
  }

  private async flushType(type: BlobType): Promise<void> {
    const p = this.open[type];
    if (!p || p.builder.count === 0) return;
    this.open[type] = null;
    const sealedKey = sealTo(this.o.repoPub, p.key);
    const { bytes, entries } = p.builder.finish(p.key, sealedKey);
    const id = sha256(bytes);
    const entry: IndexPack = {
      id,
      kind: type,
      sealedKey,
      blobs: entries.map((e) => ({ id: e.id, offset: e.offset, length: e.length, rawLength: e.rawLength })),
    };
    const max = this.o.maxUploads ?? 3;
    while (this.uploads.size >= max) await Promise.race(this.uploads);
    if (this.failure) throw this.failure;
    const up = this.o.backend
      .put(packName(type, id.toString('hex')), bytes, { storageClass: this.o.storageClass[type] })
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

  /** Writes out the open packs and waits for every upload. */
  async flush(): Promise<void> {
    await this.flushType('data');
    await this.flushType('tree');
    await Promise.all(this.uploads);
    if (this.failure) throw this.failure;
  }

  takeWritten(): IndexPack[] {
    const w = this.written;
    this.written = [];
    return w;
  }
}

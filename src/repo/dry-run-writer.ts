// The writing side of a dry run (backup --dry-run): blobs are hashed and checked against the
// index as a backup would store them, and counted, but nothing is packed or uploaded.
import { blobId } from '../crypto/hash.js';
import type { BlobType } from '../format/pack.js';
import { encodeTree, type Tree } from '../format/tree.js';
import type { RepoContext } from './context.js';
import type { IndexStore } from './index-store.js';
import type { BlobWriter } from './blob-writer.js';

type WriterSurface = Pick<BlobWriter, 'objectsWritten' | 'blobId' | 'saveBlob' | 'saveBlobDeferred' | 'saveTree' | 'saveTreeBytes' | 'writeFailure' | 'closeWriter' | 'packerStats' | 'flush' | 'saveBlobCopy' | 'abandon'>;

export class DryRunWriter implements WriterSurface {
  readonly objectsWritten: BlobWriter['objectsWritten'] = [];
  /** Bytes (before compression) and blobs a real run would have added. */
  private bytes = 0;
  private blobs = 0;

  constructor(
    private readonly ctx: RepoContext,
    private readonly indexes: IndexStore,
  ) {}

  blobId(data: Uint8Array): Buffer {
    return blobId(this.ctx.secrets.macKey, data);
  }

  async saveBlob(_type: BlobType, plain: Uint8Array, knownId?: Buffer): Promise<{ id: Buffer; added: boolean }> {
    const id = knownId ?? this.blobId(plain);
    // Claimed as a real run would (so a blob seen twice counts once); nothing is written, so the claim never reaches an index.
    if (!this.indexes.claim(id)) return { id, added: false };
    this.bytes += plain.length;
    this.blobs++;
    return { id, added: true };
  }

  async saveBlobDeferred(type: BlobType, plain: Uint8Array): Promise<{ id: Promise<Buffer> }> {
    const { id } = await this.saveBlob(type, plain);
    return { id: Promise.resolve(id) };
  }

  saveTree(tree: Tree): Promise<{ id: Buffer; added: boolean }> {
    return this.saveBlob('tree', encodeTree(tree));
  }

  saveTreeBytes(bytes: Buffer): Promise<{ id: Buffer; added: boolean }> {
    return this.saveBlob('tree', bytes);
  }

  get writeFailure(): unknown {
    return null;
  }

  async closeWriter(): Promise<void> {}

  get packerStats(): { bytesWritten: number; blobsWritten: number } {
    return { bytesWritten: this.bytes, blobsWritten: this.blobs };
  }

  async flush(): Promise<void> {}

  /** Only prune copies blobs, and it has a dry run of its own that never writes. */
  async saveBlobCopy(): Promise<void> {
    throw new Error('a dry run copies no blob');
  }

  /** Nothing in flight to drop. */
  async abandon(): Promise<void> {}
}

// The writing side of a repository: blobs go to the packer (packer.ts), and an index file
// lists the packs stored every few minutes or tens of MiB (a checkpoint), so an interrupted
// backup keeps its progress: a rerun finds those blobs stored and uploads only the rest.
import type { BlobType } from '../format/pack.js';
import { encodeTree, type Tree } from '../format/tree.js';
import { blobIdNative, blobIdNativeAsync } from '../platform/native/blob.js';
import { TsbakError } from '../errors.js';
import type { RepoContext } from './context.js';
import type { IndexStore } from './index-store.js';
import { copiedAtOnce, Packer } from './packer.js';
import { ParityWriter } from './parity-writer.js';

/** Packs per intermediate index file during a backup. */
const INDEX_EVERY = 32;
/**
 * ...or once they hold this many blobs (restic bounds its index files by blob count too):
 * until its index file is written, a blob costs ~250 bytes of V8 heap, ~60 after.
 */
const INDEX_EVERY_BLOBS = 16384;
/** ...or once they hold this many bytes (TSBAK_CHECKPOINT_BYTES sets it, for tests)... */
const CHECKPOINT_BYTES = envNumber('TSBAK_CHECKPOINT_BYTES') ?? 64 << 20;
/** ...or this long after the last one (TSBAK_CHECKPOINT_SECONDS), whichever comes first. */
const CHECKPOINT_MS = (envNumber('TSBAK_CHECKPOINT_SECONDS') ?? 300) * 1000;

function envNumber(name: string): number | undefined {
  const v = Number(process.env[name]);
  return process.env[name] && Number.isFinite(v) && v > 0 ? v : undefined;
}

export class BlobWriter {
  /** Objects stored by this process (for the cost of a backup). */
  readonly objectsWritten: Array<{ kind: 'data' | 'tree' | 'index' | 'snapshot' | 'parity'; bytes: number }> = [];
  private packer: Packer | null = null;
  private parity: ParityWriter | null = null;
  /** Stored packs a checkpoint left out, their parity not written yet (listable()). */
  private held: ReturnType<Packer['takeWritten']> = [];
  private abandoned = false;
  /** When the last index file was written (or writing began). */
  private lastIndexAt = Date.now();
  /** The checkpoint index file being written in the background (maybeWriteIndex), and why one failed. */
  private checkpoint: Promise<void> | null = null;
  private checkpointFailure: unknown = null;

  constructor(
    private readonly ctx: RepoContext,
    private readonly indexes: IndexStore,
  ) {}

  /** Told of each tree pack this writer stored from memory (Repository.useTreeCache keeps them on disk). */
  onTreePack: ((id: Buffer, bytes: Buffer) => void) | null = null;

  private getPacker(): Packer {
    if (this.abandoned) throw new TsbakError('IO', 'writing was stopped (the process is ending)');
    if (!this.packer) {
      const par = this.ctx.parity;
      this.packer = new Packer({
        backend: this.ctx.backend,
        repoPub: this.ctx.secrets.repoPub,
        level: this.ctx.config.compression.level,
        packSize: this.ctx.config.packSize,
        storageClass: { data: this.ctx.classes.data, tree: this.ctx.classes.tree },
        onPack: (p, bytes, treeBytes) => {
          this.objectsWritten.push({ kind: p.kind, bytes });
          if (treeBytes) this.onTreePack?.(p.id, treeBytes);
        },
        // Through this writer: flush() ends one ParityWriter, the next pack starts another.
        parity: par ? { start: () => this.parityWriter(par).start(), room: () => this.parity?.room() ?? Promise.resolve() } : undefined,
      });
    }
    return this.packer;
  }

  private parityWriter(par: { k: number; m: number }): ParityWriter {
    return (this.parity ??= new ParityWriter(this.ctx, par.k, par.m, this.ctx.config.packSize.data));
  }

  /** In the addon: a small blob's id costs a third of node's createHmac (no keyed context set up per blob). */
  blobId(data: Uint8Array): Buffer {
    return blobIdNative(this.ctx.secrets.macKey, data);
  }

  /** Stores a blob unless the repository (or this session) already has it. Returns its id and whether it was new. */
  async saveBlob(type: BlobType, plain: Uint8Array, knownId?: Buffer): Promise<{ id: Buffer; added: boolean }> {
    const id = knownId ?? this.blobId(plain);
    if (!this.indexes.claim(id)) return { id, added: false };
    await this.getPacker().add(type, id, plain);
    await this.maybeWriteIndex();
    return { id, added: true };
  }

  /**
   * saveBlob for a blob that may be large, without waiting for its hash: resolves once
   * `plain` may be reused, with the id to await. Large blobs are hashed on libuv's pool
   * (see Packer.addUnhashed) when sealing runs off this thread; others go through saveBlob.
   */
  async saveBlobDeferred(type: BlobType, plain: Uint8Array): Promise<{ id: Promise<Buffer> }> {
    const packer = this.getPacker();
    if (!packer.canDefer || copiedAtOnce(plain.length)) {
      const { id } = await this.saveBlob(type, plain);
      return { id: Promise.resolve(id) };
    }
    const r = await packer.addUnhashed(
      type,
      plain,
      (d) => blobIdNativeAsync(this.ctx.secrets.macKey, d),
      (id) => this.indexes.claim(id),
    );
    await this.maybeWriteIndex();
    return r;
  }

  /**
   * Stores a blob the index already lists, in a new pack of this writer's (prune's repack:
   * the caller checked `plain` against `id`). Listed by the next index file written.
   */
  async saveBlobCopy(type: BlobType, id: Buffer, plain: Uint8Array): Promise<void> {
    await this.getPacker().add(type, id, plain);
    await this.maybeWriteIndex();
  }

  async saveTree(tree: Tree): Promise<{ id: Buffer; added: boolean }> {
    return this.saveBlob('tree', encodeTree(tree));
  }

  /** saveTree for a tree encoded already (TreeEncoder). */
  async saveTreeBytes(bytes: Buffer): Promise<{ id: Buffer; added: boolean }> {
    return this.saveBlob('tree', bytes);
  }

  /** Why storing new data failed, once it has (null before): every later save fails the same way. */
  get writeFailure(): unknown {
    return this.packer?.failed ?? this.checkpointFailure ?? null;
  }

  /** Ends the writing side: stops its workers and drops pack files a failed run left unwritten. */
  async closeWriter(): Promise<void> {
    const p = this.packer;
    this.packer = null;
    // Its packs are stored: the index file is let finish, not cut off.
    if (this.checkpoint) await this.checkpoint;
    await p?.close();
  }

  /** Stops writing for good: pack files being written are dropped, later saves refused. */
  async abandon(): Promise<void> {
    this.abandoned = true;
    await this.closeWriter();
  }

  get packerStats(): { bytesWritten: number; blobsWritten: number } {
    return { bytesWritten: this.packer?.bytesWritten ?? 0, blobsWritten: this.packer?.blobsWritten ?? 0 };
  }

  /** Uploads open packs, then writes one index file for every pack written so far. */
  async flush(): Promise<void> {
    if (!this.packer) return;
    await this.packer.flush();
    await this.settleCheckpoint();
    // The group closes at the end of each backup (a short group: see FORMAT.md "Parity"),
    // before the index file lists its packs: an indexed pack has its parity.
    if (this.parity) {
      await this.parity.close();
      if (this.parity.objectsWritten) this.objectsWritten.push({ kind: 'parity', bytes: this.parity.bytesWritten });
      this.parity = null;
    }
    const packs = [...this.held, ...this.packer.takeWritten()];
    this.held = [];
    await this.writeIndex(packs);
  }

  /**
   * The packs a checkpoint may list: those whose parity group is written (or that get none);
   * the others wait for a later index file. A backup killed before their parity is written
   * has not listed them: its rerun stores their blobs again, in packs that get parity.
   */
  private listable(packs: ReturnType<Packer['takeWritten']>): ReturnType<Packer['takeWritten']> {
    const all = this.held.length ? [...this.held, ...packs] : packs;
    const open = this.parity?.unwritten;
    if (!open?.size) {
      this.held = [];
      return all;
    }
    this.held = all.filter((p) => open.has(p.id.toString('hex')));
    return all.filter((p) => !open.has(p.id.toString('hex')));
  }

  private async maybeWriteIndex(): Promise<void> {
    if (this.checkpointFailure) throw this.checkpointFailure;
    const p = this.packer;
    if (!p || p.writtenCount === 0 || this.checkpoint) return;
    if (p.writtenCount >= INDEX_EVERY || p.writtenBlobs >= INDEX_EVERY_BLOBS || p.writtenBytes >= CHECKPOINT_BYTES || Date.now() - this.lastIndexAt >= CHECKPOINT_MS) {
      // Written while the backup goes on (one at a time): the blob that triggered it, and the
      // whole directory behind it, used to wait for its fsyncs. Its packs are stored already;
      // flush() waits for it before the last index file, hence before any snapshot.
      const job = this.writeIndex(this.listable(p.takeWritten())).then(
        () => {},
        (e) => {
          this.checkpointFailure ??= e;
        },
      );
      this.checkpoint = job.finally(() => (this.checkpoint = null));
    }
  }

  /** Waits for the checkpoint being written, if any; throws if one failed. */
  private async settleCheckpoint(): Promise<void> {
    while (this.checkpoint) await this.checkpoint;
    if (this.checkpointFailure) throw this.checkpointFailure;
  }

  private async writeIndex(packs: ReturnType<Packer['takeWritten']>): Promise<void> {
    this.lastIndexAt = Date.now();
    const bytes = await this.indexes.writeIndex(packs);
    if (bytes) this.objectsWritten.push({ kind: 'index', bytes });
  }
}

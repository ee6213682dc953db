// Parity across packs while a backup writes them (docs/FORMAT.md "Parity"): each stored
// pack (its stored bytes, read back: a local pack was streamed to its file) is folded into
// M running parity stripes with its column of the code (parity-code.ts, on libuv's pool);
// after K packs, and at the end of each backup (a short group), the M parity objects are
// written. Memory: M stripes of the longest pack, and the pack being folded.
import { sha256 } from '../crypto/hash.js';
import type { IndexPack } from '../format/index-file.js';
import { encodeParity, type ParityMember } from '../format/parity.js';
import type { RepoContext } from './context.js';
import { packName, parityName } from './layout.js';
import { ParityEncoder } from './parity-code.js';

export class ParityWriter {
  private enc: ParityEncoder;
  private members: ParityMember[] = [];
  /** Folds and group writes, one after the other. */
  private chain: Promise<void> = Promise.resolve();
  bytesWritten = 0;
  objectsWritten = 0;

  constructor(
    private readonly ctx: RepoContext,
    private readonly k: number,
    private readonly m: number,
    packSize: number,
  ) {
    this.enc = new ParityEncoder(m, packSize);
  }

  /** Queues a stored pack for its group. */
  add(p: IndexPack, length: number): void {
    this.chain = this.chain.then(() => this.fold(p, length)).catch((e) => this.fail(e));
  }

  private async fold(p: IndexPack, length: number): Promise<void> {
    const bytes = await this.ctx.backend.get(packName(p.kind, p.id.toString('hex')));
    if (bytes.length !== length) throw new Error(`pack ${p.id.toString('hex')} reads back as ${bytes.length} bytes, not ${length}`);
    await this.enc.fold(this.members.length, bytes);
    this.members.push({ id: p.id, kind: p.kind, length });
    if (this.members.length >= this.k) await this.writeGroup();
  }

  private async writeGroup(): Promise<void> {
    const members = this.members;
    if (!members.length) return;
    const stripe = Math.max(...members.map((x) => x.length));
    for (let row = 0; row < this.m; row++) {
      const obj = encodeParity(this.ctx.secrets.indexKey, { k: this.k, m: this.m, row, members, stripe }, this.enc.stripe(row, stripe));
      await this.ctx.backend.put(parityName(sha256(obj).toString('hex')), obj, { storageClass: this.ctx.classes.data });
      this.bytesWritten += obj.length;
      this.objectsWritten++;
    }
    this.members = [];
    this.enc = new ParityEncoder(this.m, this.enc.length);
  }

  private fail(e: unknown): void {
    // The packs are stored and indexed; only their protection is missing. Said, not fatal.
    this.ctx.onWarning?.(`parity not written for the current group of packs: ${(e as Error).message ?? e}`);
    this.members = [];
    this.enc = new ParityEncoder(this.m, this.enc.length);
  }

  /** Waits for the queued packs and writes the open group (short, if it is). */
  async close(): Promise<void> {
    this.chain = this.chain.then(() => this.writeGroup()).catch((e) => this.fail(e));
    await this.chain;
  }
}

// Parity across packs while a backup writes them (docs/FORMAT.md "Parity"): each stored
// pack (a copy of its stored bytes, from the packer) is folded into
// M running parity stripes with its column of the code (parity-code.ts, on libuv's pool);
// after K packs, and at the end of each backup (a short group), the M parity objects are
// written, while the next group is folded. Memory: 2 x M stripes of the longest pack, and
// the pack being folded.
import { sha256 } from '../crypto/hash.js';
import type { IndexPack } from '../format/index-file.js';
import { encodeParity, type ParityMember } from '../format/parity.js';
import type { RepoContext } from './context.js';
import { parityName } from './layout.js';
import { ParityEncoder } from './parity-code.js';
import type { ParityGroupRow } from '../format/parity-group.js';
import { writeParityGroupRecord } from './parity-group-record.js';

export class ParityWriter {
  private enc: ParityEncoder;
  private members: ParityMember[] = [];
  /** Folds and group writes, one after the other. */
  private chain: Promise<void> = Promise.resolve();
  /** The closed group being written while the next one is folded (one at a time). */
  private writing: Promise<void> = Promise.resolve();
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

  /** Packs queued and not folded yet. */
  private queued = 0;

  /**
   * Packs handed in whose group's parity is neither written nor given up yet (id hex): a
   * checkpoint index file leaves them out (blob-writer.ts), so that a backup killed before
   * their parity is written has not listed them, and its rerun stores them again, with parity.
   */
  readonly open = new Set<string>();

  /** Queues a stored pack (its bytes, which this now owns) for its group; resolves once few enough wait. */
  async add(p: IndexPack, bytes: Buffer): Promise<void> {
    this.open.add(p.id.toString('hex'));
    this.queued++;
    this.chain = this.chain
      .then(() => this.fold(p, bytes))
      .catch((e) => this.fail(e))
      .finally(() => this.queued--);
    // Each queued pack holds its bytes: the packer's next uploads wait while more than six do.
    while (this.queued > 6) await this.chain;
  }

  private async fold(p: IndexPack, bytes: Buffer): Promise<void> {
    await this.enc.fold(this.members.length, bytes);
    this.members.push({ id: p.id, kind: p.kind, length: bytes.length });
    if (this.members.length >= this.k) await this.closeGroup();
  }

  /** Hands the group to the writer (after the previous group's write) and starts the next. */
  private async closeGroup(): Promise<void> {
    const members = this.members;
    if (!members.length) return;
    const enc = this.enc;
    this.members = [];
    this.enc = new ParityEncoder(this.m, enc.length);
    await this.writing;
    this.writing = this.writeGroup(members, enc)
      .catch((e) => this.ctx.onWarning?.(`parity of a group of ${members.length} packs not written: ${(e as Error).message ?? e}`))
      .finally(() => this.settle(members));
  }

  private async writeGroup(members: ParityMember[], enc: ParityEncoder): Promise<void> {
    const stripe = Math.max(...members.map((x) => x.length));
    const rows: ParityGroupRow[] = [];
    for (let row = 0; row < this.m; row++) {
      const payload = enc.stripe(row, stripe);
      const obj = encodeParity(this.ctx.secrets.indexKey, { k: this.k, m: this.m, row, members, stripe }, payload);
      const id = sha256(obj);
      await this.ctx.backend.put(parityName(id.toString('hex')), obj, { storageClass: this.ctx.classes.data });
      this.bytesWritten += obj.length;
      this.objectsWritten++;
      if (this.ctx.backend.restore) rows.push({ object: id, size: obj.length, header: { k: this.k, m: this.m, row, members, stripe, payloadSha256: sha256(payload) } });
    }
    // Where parity may be archived: its headers where repair can read them at once.
    this.bytesWritten += await writeParityGroupRecord(this.ctx, rows);
  }

  /** These packs' group is written or given up: checkpoints may list them. */
  private settle(members: ParityMember[]): void {
    for (const x of members) this.open.delete(x.id.toString('hex'));
  }

  private fail(e: unknown): void {
    // The packs are stored and indexed; only their protection is missing. Said, not fatal.
    this.ctx.onWarning?.(`parity not written for the current group of packs: ${(e as Error).message ?? e}`);
    this.settle(this.members);
    this.members = [];
    this.enc = new ParityEncoder(this.m, this.enc.length);
  }

  /** Waits for the queued packs and writes the open group (short, if it is). */
  async close(): Promise<void> {
    this.chain = this.chain.then(() => this.closeGroup()).catch((e) => this.fail(e));
    await this.chain;
    await this.writing;
  }
}

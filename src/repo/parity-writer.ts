// Parity across packs while a backup writes them (docs/FORMAT.md "Parity"). A pack takes the
// next member number of the open group when its first bytes are laid out, and the packer
// hands every byte of it, as it goes to the file (or at once, for a pack put from memory),
// to fold(): one synchronous multiply-accumulate in C into the group's M stripes, beside the
// pack's own SHA-256 on the same thread and cheaper than it (a copy for the pool cost more
// than the fold: docs/PERFORMANCE.md). Once every member of a full group is stored, its M
// parity objects are written while the backup goes on; the open group closes, short, at the
// end of each backup. Each stripe has room in front for its object's header, so an object
// is a view of the group's buffer, never a copy. Memory: M stripes of the longest pack for
// the open group and for each group being written (at most MAX_WRITING), buffers reused.
import type { IndexPack } from '../format/index-file.js';
import { encodeParityPrefix, PARITY_PREFIX, type ParityMember } from '../format/parity.js';
import { gfAlloc, gfMulAdd, gfSha256Async } from '../platform/native/parity.js';
import type { RepoContext } from './context.js';
import { parityName } from './layout.js';
import { parityColumn } from './parity-code.js';
import type { ParityGroupRow } from '../format/parity-group.js';
import { writeParityGroupRecord } from './parity-group-record.js';

/** Room before each stripe for the object's magic, version, length and sealed header. */
const ROOM = PARITY_PREFIX;
/** Groups being written at once; the packer's next pack waits for room beyond that. */
const MAX_WRITING = 2;

/** One pack's part in its group: its bytes in order, then the news that it is stored. */
export interface PackFold {
  add(bytes: Uint8Array): void;
  stored(p: IndexPack, length: number): void;
}

interface Group {
  /** M rows of ROOM + stride bytes; row j's stripe is at j * (ROOM + stride) + ROOM. */
  buf: Buffer;
  stride: number;
  members: Array<ParityMember | null>;
  started: number;
  stored: number;
  /** No more members join (K started, or the backup's end). */
  full: boolean;
  broken: string | null;
}

export class ParityWriter {
  private open: Group | null = null;
  /** Groups started and not written yet. */
  private pending = new Set<Group>();
  private writes = new Set<Promise<void>>();
  private spare: Buffer[] = [];
  private stride: number;
  bytesWritten = 0;
  objectsWritten = 0;
  /**
   * Packs stored whose group's parity is neither written nor given up yet (id hex): a
   * checkpoint index file leaves them out (blob-writer.ts), so that a backup killed before
   * their parity is written has not listed them, and its rerun stores them again, with parity.
   */
  readonly unwritten = new Set<string>();

  constructor(
    private readonly ctx: RepoContext,
    private readonly k: number,
    private readonly m: number,
    packSize: number,
  ) {
    this.stride = packSize + (packSize >> 4);
  }

  /** A pack's bytes begin: it joins the open group (a new one after K). */
  start(): PackFold {
    const g = (this.open ??= this.newGroup());
    const index = g.started++;
    g.members.push(null);
    if (g.started >= this.k) {
      g.full = true;
      this.open = null;
    }
    const coefs = parityColumn(index, this.m);
    let at = 0;
    return {
      add: (bytes) => {
        if (g.broken) return;
        if (at + bytes.length > g.stride) this.grow(g, at + bytes.length);
        gfMulAdd(g.buf, coefs, bytes, ROOM + at);
        at += bytes.length;
      },
      stored: (p, length) => {
        if (length !== at) g.broken ??= `pack ${p.id.toString('hex')} is ${length} bytes, ${at} were folded`;
        g.members[index] = { id: p.id, kind: p.kind, length };
        this.unwritten.add(p.id.toString('hex'));
        g.stored++;
        this.maybeWrite(g);
      },
    };
  }

  /** Resolves once fewer than MAX_WRITING groups are being written (the packer waits on it). */
  async room(): Promise<void> {
    while (this.writes.size >= MAX_WRITING) await Promise.race(this.writes);
  }

  private newGroup(): Group {
    const size = this.m * (ROOM + this.stride);
    const spare = this.spare.pop();
    const buf = spare && spare.length === size ? spare.fill(0) : gfAlloc(size);
    const g: Group = { buf, stride: this.stride, members: [], started: 0, stored: 0, full: false, broken: null };
    this.pending.add(g);
    return g;
  }

  /** A member longer than the stripes: every row moves to a longer one (rare: a pack far over its target). */
  private grow(g: Group, need: number): void {
    const stride = Math.max(need, g.stride + (g.stride >> 2));
    const buf = gfAlloc(this.m * (ROOM + stride));
    for (let j = 0; j < this.m; j++) g.buf.copy(buf, j * (ROOM + stride), j * (ROOM + g.stride), (j + 1) * (ROOM + g.stride));
    g.buf = buf;
    g.stride = stride;
    this.stride = Math.max(this.stride, stride);
  }

  private maybeWrite(g: Group): void {
    if (!g.full || g.stored < g.started) return;
    this.pending.delete(g);
    if (g.broken) {
      this.ctx.onWarning?.(`parity of a group of ${g.started} packs not written: ${g.broken}`);
      this.settle(g);
      return;
    }
    const w = this.writeGroup(g)
      .catch((e) => this.ctx.onWarning?.(`parity of a group of ${g.started} packs not written: ${(e as Error).message ?? e}`))
      .finally(() => {
        this.writes.delete(w);
        this.settle(g);
      });
    this.writes.add(w);
  }

  private async writeGroup(g: Group): Promise<void> {
    const members = g.members as ParityMember[];
    const stripe = Math.max(...members.map((x) => x.length));
    const row = ROOM + g.stride;
    // The two hashes of each object (its payload for the header, then the whole object for
    // its name) run on the pool, the M objects at once.
    const rows: ParityGroupRow[] = await Promise.all(
      Array.from({ length: this.m }, async (_, j) => {
        const payload = g.buf.subarray(j * row + ROOM, j * row + ROOM + stripe);
        const header = { k: this.k, m: this.m, row: j, members, stripe, payloadSha256: await gfSha256Async(payload) };
        const prefix = encodeParityPrefix(this.ctx.secrets.indexKey, header);
        const at = j * row + ROOM - prefix.length;
        prefix.copy(g.buf, at);
        const obj = g.buf.subarray(at, j * row + ROOM + stripe);
        const id = await gfSha256Async(obj);
        await this.ctx.backend.put(parityName(id.toString('hex')), obj, { storageClass: this.ctx.classes.data });
        this.bytesWritten += obj.length;
        this.objectsWritten++;
        return { object: id, size: obj.length, header };
      }),
    );
    // Where parity may be archived: its headers where repair can read them at once.
    this.bytesWritten += await writeParityGroupRecord(this.ctx, rows);
    if (this.spare.length < 2 && g.stride === this.stride) this.spare.push(g.buf);
  }

  /** These packs' group is written or given up: checkpoints may list them. */
  private settle(g: Group): void {
    for (const x of g.members) if (x) this.unwritten.delete(x.id.toString('hex'));
  }

  /** Closes the open group (short, if it is) and waits for every group's objects. */
  async close(): Promise<void> {
    const g = this.open;
    this.open = null;
    if (g) {
      g.full = true;
      this.maybeWrite(g);
    }
    while (this.writes.size) await Promise.all(this.writes);
    // Packs that began but were never stored (a failed run): their groups get no parity.
    for (const left of this.pending) {
      this.ctx.onWarning?.(`parity of a group of ${left.started} packs not written: ${left.started - left.stored} of them were not stored`);
      this.settle(left);
    }
    this.pending.clear();
  }
}

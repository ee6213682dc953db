// The in-memory index: blob id -> every known copy (pack, offset, length, raw length).
// An open-addressing hash table over typed arrays instead of a Map of objects: about 64
// bytes per copy (32 for the id, 16 for the location, 4 for the link to the next copy of
// the same id, table slack), so 1 TB of 1 MiB chunks needs ~64 MB, not the ~250 MB a
// Map<string, object> would. Most ids have one copy; a second one comes from concurrent
// backups, or from a writer that stored a copy of its own (THREAT-MODEL.md): readers try
// the others when one is damaged, and dedup asks whether a copy it trusts exists.
// Blob ids are HMAC outputs, so their first 4 bytes are already a uniform hash.

export interface PackRef {
  id: Buffer;
  kind: 'data' | 'tree';
  sealedKey: Buffer;
  /** The index file that lists this pack, and who signed it (null: a v1 file, unsigned). */
  indexFile: string;
  signer: string | null;
  /** Its signature verified against a key this repository registered (or our own). */
  verified: boolean;
}

export interface BlobLocation {
  pack: PackRef;
  offset: number;
  length: number;
  rawLength: number;
}

export class BlobIndex {
  private ids = Buffer.alloc(0);
  private packNo = new Uint32Array(0);
  private offsets = new Uint32Array(0);
  private lengths = new Uint32Array(0);
  private rawLengths = new Uint32Array(0);
  /** Per row: the next row (+1) with the same id, 0 at the end of the chain. */
  private next = new Int32Array(0);
  /** Hash table of the first row (+1) of each id. */
  private table = new Int32Array(16);
  private rows = 0;
  private distinct = 0;
  readonly packs: PackRef[] = [];
  private packById = new Map<string, number>();

  /** Copies indexed (a blob in two packs counts twice). */
  get size(): number {
    return this.rows;
  }

  /** Distinct blob ids. */
  get blobs(): number {
    return this.distinct;
  }

  /**
   * Each index file's listing of a pack is a PackRef of its own: two files may name one
   * pack with different pack keys or signers, and a bad one must not hide the good one.
   */
  addPack(p: PackRef): number {
    const no = this.packs.length;
    this.packs.push(p);
    const key = p.id.toString('hex');
    if (!this.packById.has(key)) this.packById.set(key, no);
    return no;
  }

  hasPack(id: Buffer | string): boolean {
    return this.packById.has(typeof id === 'string' ? id : id.toString('hex'));
  }

  /** Adds a copy of a blob; the same place of the same pack listed twice is kept once. */
  add(id: Uint8Array, packNo: number, offset: number, length: number, rawLength: number): void {
    const head = this.find(id);
    let tail = -1;
    if (head >= 0) {
      const p = this.packs[packNo]!;
      for (let i = head; i >= 0; i = this.next[i]! - 1) {
        if (this.offsets[i] === offset && this.lengths[i] === length && this.rawLengths[i] === rawLength && samePlace(this.packs[this.packNo[i]!]!, p)) return;
        tail = i;
      }
    }
    if (this.rows >= this.packNo.length) this.grow();
    const i = this.rows++;
    this.ids.set(id, i * 32);
    this.packNo[i] = packNo;
    this.offsets[i] = offset;
    this.lengths[i] = length;
    this.rawLengths[i] = rawLength;
    this.next[i] = 0;
    if (tail >= 0) {
      this.next[tail] = i + 1;
      return;
    }
    this.distinct++;
    if (this.distinct * 2 > this.table.length) this.rehash(this.table.length * 2);
    else this.insert(i);
  }

  has(id: Uint8Array): boolean {
    return this.find(id) >= 0;
  }

  /** Whether some copy of the blob is in a pack `ok` accepts. */
  hasWhere(id: Uint8Array, ok: (p: PackRef) => boolean): boolean {
    for (let i = this.find(id); i >= 0; i = this.next[i]! - 1) if (ok(this.packs[this.packNo[i]!]!)) return true;
    return false;
  }

  /** The first copy indexed. */
  get(id: Uint8Array): BlobLocation | undefined {
    const i = this.find(id);
    return i < 0 ? undefined : this.row(i);
  }

  /** Every copy, in the order indexed. */
  all(id: Uint8Array): BlobLocation[] {
    const out: BlobLocation[] = [];
    for (let i = this.find(id); i >= 0; i = this.next[i]! - 1) out.push(this.row(i));
    return out;
  }

  /** Every copy of every blob. */
  *entries(): IterableIterator<{ id: Buffer } & BlobLocation> {
    for (let i = 0; i < this.rows; i++) yield { id: Buffer.from(this.ids.subarray(i * 32, i * 32 + 32)), ...this.row(i) };
  }

  /** Rows ordered by pack, then offset (inPack), built when first asked and again when the index grew. */
  private byPack: { rows: number; order: Uint32Array; start: Uint32Array; packNo: Map<PackRef, number> } | null = null;

  /** Ids of the blobs of `pack` (this listing of it) that start in [from, to), in pack order. */
  inPack(pack: PackRef, from: number, to: number): Buffer[] {
    const b = this.packOrder();
    const no = b.packNo.get(pack);
    if (no === undefined) return [];
    let lo = b.start[no]!;
    let hi = b.start[no + 1]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.offsets[b.order[mid]!]! < from) lo = mid + 1;
      else hi = mid;
    }
    const out: Buffer[] = [];
    for (let k = lo; k < b.start[no + 1]! && this.offsets[b.order[k]!]! < to; k++) {
      const i = b.order[k]!;
      out.push(Buffer.from(this.ids.subarray(i * 32, i * 32 + 32)));
    }
    return out;
  }

  private packOrder() {
    if (this.byPack && this.byPack.rows === this.rows) return this.byPack;
    // Counting sort by pack, then each pack's rows by offset: 4 bytes a row.
    const start = new Uint32Array(this.packs.length + 1);
    for (let i = 0; i < this.rows; i++) start[this.packNo[i]! + 1]!++;
    for (let p = 0; p < this.packs.length; p++) start[p + 1]! += start[p]!;
    const fill = start.slice(0, this.packs.length);
    const order = new Uint32Array(this.rows);
    for (let i = 0; i < this.rows; i++) order[fill[this.packNo[i]!]!++] = i;
    for (let p = 0; p < this.packs.length; p++) order.subarray(start[p]!, start[p + 1]!).sort((a, b) => this.offsets[a]! - this.offsets[b]!);
    const packNo = new Map<PackRef, number>();
    this.packs.forEach((p, no) => packNo.set(p, no));
    this.byPack = { rows: this.rows, order, start, packNo };
    return this.byPack;
  }

  private row(i: number): BlobLocation {
    return { pack: this.packs[this.packNo[i]!]!, offset: this.offsets[i]!, length: this.lengths[i]!, rawLength: this.rawLengths[i]! };
  }

  private slot(id: Uint8Array): number {
    return ((id[0]! << 24) | (id[1]! << 16) | (id[2]! << 8) | id[3]!) & (this.table.length - 1);
  }

  private find(id: Uint8Array): number {
    const mask = this.table.length - 1;
    for (let s = this.slot(id); ; s = (s + 1) & mask) {
      const v = this.table[s]!;
      if (v === 0) return -1;
      const i = v - 1;
      if (this.ids.compare(id, 0, 32, i * 32, i * 32 + 32) === 0) return i;
    }
  }

  private insert(i: number): void {
    const mask = this.table.length - 1;
    const id = this.ids.subarray(i * 32, i * 32 + 32);
    let s = this.slot(id);
    while (this.table[s] !== 0) s = (s + 1) & mask;
    this.table[s] = i + 1;
  }

  /** Re-inserts the first row of every id (later copies hang off it). */
  private rehash(size: number): void {
    this.table = new Int32Array(size);
    const later = new Uint8Array(this.rows);
    for (let i = 0; i < this.rows; i++) if (this.next[i]) later[this.next[i]! - 1] = 1;
    for (let i = 0; i < this.rows; i++) if (!later[i]) this.insert(i);
  }

  private grow(): void {
    const cap = Math.max(1024, this.packNo.length * 2);
    const ids = Buffer.alloc(cap * 32);
    this.ids.copy(ids);
    this.ids = ids;
    const g = (a: Uint32Array) => {
      const b = new Uint32Array(cap);
      b.set(a);
      return b;
    };
    this.packNo = g(this.packNo);
    this.offsets = g(this.offsets);
    this.lengths = g(this.lengths);
    this.rawLengths = g(this.rawLengths);
    const n = new Int32Array(cap);
    n.set(this.next);
    this.next = n;
  }
}

/** Two listings of one pack that say the same, signed by the same key. */
function samePlace(a: PackRef, b: PackRef): boolean {
  return a === b || (a.id.equals(b.id) && a.sealedKey.equals(b.sealedKey) && a.signer === b.signer && a.verified === b.verified);
}

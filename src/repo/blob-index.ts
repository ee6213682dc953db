// The in-memory index: blob id -> (pack, offset, length, raw length).
// An open-addressing hash table over typed arrays instead of a Map of objects: about 60
// bytes per blob (32 for the id, 16 for the location, table slack), so 1 TB of 1 MiB
// chunks needs ~60 MB, not the ~250 MB a Map<string, object> would.
// Blob ids are HMAC outputs, so their first 4 bytes are already a uniform hash.

export interface PackRef {
  id: Buffer;
  kind: 'data' | 'tree';
  sealedKey: Buffer;
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
  private table = new Int32Array(16);
  private n = 0;
  readonly packs: PackRef[] = [];
  private packById = new Map<string, number>();

  get size(): number {
    return this.n;
  }

  addPack(p: PackRef): number {
    const key = p.id.toString('hex');
    let no = this.packById.get(key);
    if (no === undefined) {
      no = this.packs.length;
      this.packs.push(p);
      this.packById.set(key, no);
    }
    return no;
  }

  hasPack(id: Buffer | string): boolean {
    return this.packById.has(typeof id === 'string' ? id : id.toString('hex'));
  }

  /** Adds a blob; a blob already present keeps its first location. */
  add(id: Uint8Array, packNo: number, offset: number, length: number, rawLength: number): void {
    if (this.find(id) >= 0) return;
    if (this.n >= this.packNo.length) this.grow();
    const i = this.n++;
    this.ids.set(id, i * 32);
    this.packNo[i] = packNo;
    this.offsets[i] = offset;
    this.lengths[i] = length;
    this.rawLengths[i] = rawLength;
    if (this.n * 2 > this.table.length) this.rehash(this.table.length * 2);
    else this.insert(i);
  }

  has(id: Uint8Array): boolean {
    return this.find(id) >= 0;
  }

  get(id: Uint8Array): BlobLocation | undefined {
    const i = this.find(id);
    if (i < 0) return undefined;
    return { pack: this.packs[this.packNo[i]!]!, offset: this.offsets[i]!, length: this.lengths[i]!, rawLength: this.rawLengths[i]! };
  }

  *entries(): IterableIterator<{ id: Buffer } & BlobLocation> {
    for (let i = 0; i < this.n; i++) {
      yield {
        id: Buffer.from(this.ids.subarray(i * 32, i * 32 + 32)),
        pack: this.packs[this.packNo[i]!]!,
        offset: this.offsets[i]!,
        length: this.lengths[i]!,
        rawLength: this.rawLengths[i]!,
      };
    }
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

  private rehash(size: number): void {
    this.table = new Int32Array(size);
    for (let i = 0; i < this.n; i++) this.insert(i);
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
  }
}

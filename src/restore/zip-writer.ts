// A zip stream for dump (Info-ZIP's unzip, Python's zipfile and Go read it): files stored
// (no compression: the data was compressed in the repository and is read back plain),
// directories and symlinks with their Unix modes, mtimes in the extended-timestamp field.
// Each entry's CRC and sizes follow its data (a data descriptor), as the stream cannot go
// back; Zip64 fields where a size, offset or count passes the 32-bit limits.
import { crc32 } from 'node:zlib';
import { isUtf8 } from 'node:buffer';
import type { ArchiveEntry, ArchiveWriter, ByteSink, EntryKind } from './archive.js';

const U32 = 0xffffffff;
const MADE_BY = (3 << 8) | 45; // Unix, spec 4.5
const S_IF: Partial<Record<EntryKind, number>> = { file: 0o100000, dir: 0o040000, symlink: 0o120000 };

interface Written {
  name: Buffer;
  flags: number;
  time: number;
  date: number;
  mtime: number | null;
  crc: number;
  size: number;
  offset: number;
  attrs: number;
}

function dos(ms: number): { time: number; date: number } {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  if (y < 1980) return { time: 0, date: (1 << 5) | 1 };
  if (y > 2107) return { time: (23 << 11) | (59 << 5) | 29, date: (127 << 9) | (12 << 5) | 31 };
  return { time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1), date: ((y - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate() };
}

/** The extended timestamp field (0x5455) with the mtime only. */
function timeField(mtime: number | null): Buffer {
  if (mtime === null) return Buffer.alloc(0);
  const b = Buffer.alloc(9);
  b.writeUInt16LE(0x5455, 0);
  b.writeUInt16LE(5, 2);
  b[4] = 1;
  b.writeInt32LE(mtime, 5);
  return b;
}

export class ZipWriter implements ArchiveWriter {
  private offset = 0;
  private readonly entries: Written[] = [];

  constructor(private readonly sink: ByteSink) {}

  holds(kind: EntryKind): boolean {
    return kind === 'file' || kind === 'dir' || kind === 'symlink';
  }

  private async put(b: Buffer): Promise<void> {
    this.offset += b.length;
    await this.sink.write(b);
  }

  async add(e: ArchiveEntry, body?: AsyncIterable<Buffer>): Promise<void> {
    const name = e.kind === 'dir' ? Buffer.concat([e.path, Buffer.from('/')]) : e.path;
    if (name.length > 0xffff) throw new Error(`zip: a path of ${name.length} bytes`);
    const secs = Number(e.mtimeNs / 1_000_000_000n);
    const mtime = secs >= -(2 ** 31) && secs < 2 ** 31 ? secs : null;
    const { time, date } = dos(Math.max(0, Math.min(secs, 4e9)) * 1000);
    const flags = 0x08 | (isUtf8(name) ? 0x800 : 0);
    const extra = timeField(mtime);
    const offset = this.offset;
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(45, 4);
    h.writeUInt16LE(flags, 6);
    h.writeUInt16LE(0, 8); // stored
    h.writeUInt16LE(time, 10);
    h.writeUInt16LE(date, 12);
    // crc and sizes (14..26) are in the data descriptor
    h.writeUInt16LE(name.length, 26);
    h.writeUInt16LE(extra.length, 28);
    await this.put(Buffer.concat([h, name, extra]));
    let crc = 0;
    let size = 0;
    const chunk = async (b: Buffer) => {
      crc = crc32(b, crc);
      size += b.length;
      await this.put(b);
    };
    if (e.kind === 'symlink') await chunk(e.link ?? Buffer.alloc(0));
    else if (e.kind === 'file') {
      for await (const b of body ?? []) {
        if (size + b.length > e.size) break;
        await chunk(b);
      }
      if (size !== e.size) throw new Error(`zip: ${e.path.toString()} gave ${size} bytes, not ${e.size}`);
    }
    const big = size >= U32;
    const d = Buffer.alloc(big ? 24 : 16);
    d.writeUInt32LE(0x08074b50, 0);
    d.writeUInt32LE(crc >>> 0, 4);
    if (big) {
      d.writeBigUInt64LE(BigInt(size), 8);
      d.writeBigUInt64LE(BigInt(size), 16);
    } else {
      d.writeUInt32LE(size, 8);
      d.writeUInt32LE(size, 12);
    }
    await this.put(d);
    const attrs = ((((S_IF[e.kind] ?? 0) | (e.kind === 'symlink' ? 0o777 : e.mode & 0o7777)) << 16) | (e.kind === 'dir' ? 0x10 : 0)) >>> 0;
    this.entries.push({ name, flags, time, date, mtime, crc: crc >>> 0, size, offset, attrs });
  }

  async finish(): Promise<void> {
    const start = this.offset;
    for (const w of this.entries) {
      const z: Buffer[] = [];
      if (w.size >= U32) {
        const b = Buffer.alloc(16);
        b.writeBigUInt64LE(BigInt(w.size), 0);
        b.writeBigUInt64LE(BigInt(w.size), 8);
        z.push(b);
      }
      if (w.offset >= U32) {
        const b = Buffer.alloc(8);
        b.writeBigUInt64LE(BigInt(w.offset), 0);
        z.push(b);
      }
      let zip64 = Buffer.alloc(0);
      if (z.length) {
        const body = Buffer.concat(z);
        zip64 = Buffer.alloc(4 + body.length);
        zip64.writeUInt16LE(1, 0);
        zip64.writeUInt16LE(body.length, 2);
        body.copy(zip64, 4);
      }
      const extra = Buffer.concat([zip64, timeField(w.mtime)]);
      const c = Buffer.alloc(46);
      c.writeUInt32LE(0x02014b50, 0);
      c.writeUInt16LE(MADE_BY, 4);
      c.writeUInt16LE(z.length ? 45 : 20, 6);
      c.writeUInt16LE(w.flags, 8);
      c.writeUInt16LE(0, 10);
      c.writeUInt16LE(w.time, 12);
      c.writeUInt16LE(w.date, 14);
      c.writeUInt32LE(w.crc, 16);
      c.writeUInt32LE(w.size >= U32 ? U32 : w.size, 20);
      c.writeUInt32LE(w.size >= U32 ? U32 : w.size, 24);
      c.writeUInt16LE(w.name.length, 28);
      c.writeUInt16LE(extra.length, 30);
      // comment length, disk number, internal attributes: 0
      c.writeUInt32LE(w.attrs, 38);
      c.writeUInt32LE(w.offset >= U32 ? U32 : w.offset, 42);
      await this.put(Buffer.concat([c, w.name, extra]));
    }
    const cdSize = this.offset - start;
    const count = this.entries.length;
    if (count >= 0xffff || cdSize >= U32 || start >= U32) {
      const at = this.offset;
      const r = Buffer.alloc(56);
      r.writeUInt32LE(0x06064b50, 0);
      r.writeBigUInt64LE(44n, 4);
      r.writeUInt16LE(MADE_BY, 12);
      r.writeUInt16LE(45, 14);
      r.writeBigUInt64LE(BigInt(count), 24);
      r.writeBigUInt64LE(BigInt(count), 32);
      r.writeBigUInt64LE(BigInt(cdSize), 40);
      r.writeBigUInt64LE(BigInt(start), 48);
      const l = Buffer.alloc(20);
      l.writeUInt32LE(0x07064b50, 0);
      l.writeBigUInt64LE(BigInt(at), 8);
      l.writeUInt32LE(1, 16);
      await this.put(Buffer.concat([r, l]));
    }
    const e = Buffer.alloc(22);
    e.writeUInt32LE(0x06054b50, 0);
    e.writeUInt16LE(Math.min(count, 0xffff), 8);
    e.writeUInt16LE(Math.min(count, 0xffff), 10);
    e.writeUInt32LE(Math.min(cdSize, U32), 12);
    e.writeUInt32LE(Math.min(start, U32), 16);
    await this.put(e);
  }
}

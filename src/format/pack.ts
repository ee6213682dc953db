// Packs: tar archives of encrypted blobs. See docs/FORMAT.md ("Packs") for the bytes.
//
// Writers put every blob of a pack, back to back, into one member "g/0", so the stored bytes
// show a pack's size and nothing of its blobs' lengths (a member per blob would show each
// one, and tar pads every member to 512 bytes). The encrypted pack header is the last
// member, named "header". Packs of older versions also have members "b/<blob id hex>" (one
// blob of 64 KiB or more) and several groups "g/<n>"; readers find blobs by the header's
// offsets, so they read both.
import { aeadOpen, aeadSeal } from '../crypto/aead.js';
import { BLOCK, padLen, parseTar, tarHeader } from './tar.js';

const HEADER_AAD = Buffer.from('tsbak pack header v1');
const MAGIC = Buffer.from('TSBP');

export type BlobType = 'data' | 'tree';

export interface PackEntry {
  id: Buffer; // 32 bytes
  type: BlobType;
  offset: number; // of the sealed blob, from the start of the pack file
  length: number; // sealed length
  rawLength: number; // plaintext length
}

/**
 * Lays out one pack as blobs arrive, straight into one growing buffer, so a finished pack
 * is never copied again: blobs fill the group member, whose tar header is written when the
 * pack is finished. The bytes are the same as laying out all blobs at the end, in the order
 * they were added. The pack's hash (its name) is the caller's to take, off the main thread.
 */
export class PackBuilder {
  private buf: Buffer;
  /** End of the bytes in buf. */
  private pos = 0;
  private entries: PackEntry[] = [];
  /** Offset in buf of the group's (reserved) tar header; -1: no blob yet. */
  private groupAt = -1;
  private groupLen = 0;
  private bytes = 0;

  /**
   * `capacity`: the expected pack size; the buffer grows if needed.
   * `reuse`: a buffer to lay the pack out in (one of a finished pack), if big enough.
   */
  constructor(capacity = 1 << 20, reuse?: Buffer) {
    this.buf = reuse && reuse.length >= capacity ? reuse : Buffer.allocUnsafeSlow(capacity);
  }

  /** The whole underlying buffer (to reuse once the finished pack's bytes are stored). */
  get buffer(): Buffer {
    return this.buf;
  }

  /** Bytes laid out so far (the pack's length once finished). */
  get length(): number {
    return this.pos;
  }

  add(id: Buffer, type: BlobType, sealed: Uint8Array, rawLength: number): void {
    const len = sealed.length;
    if (this.groupAt < 0) {
      this.room(BLOCK);
      this.groupAt = this.pos;
      this.pos += BLOCK;
    }
    this.room(len + BLOCK);
    this.entries.push({ id, type, offset: this.length, length: len, rawLength });
    this.buf.set(sealed, this.pos);
    this.pos += len;
    this.groupLen += len;
    this.bytes += len + 64; // rough per-blob share of headers and padding
  }

  get size(): number {
    return this.bytes;
  }

  get count(): number {
    return this.entries.length;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.pos + n, Math.ceil(this.buf.length * 1.5)));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  private pad(len: number): void {
    const n = padLen(len);
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
  }

  private closeGroup(): void {
    if (this.groupAt < 0) return;
    tarHeader('g/0', this.groupLen).copy(this.buf, this.groupAt);
    this.pad(this.groupLen);
    this.groupAt = -1;
    this.groupLen = 0;
  }

  /**
   * Ends the archive. `sealedKey` is the pack key sealed to the repository's public key;
   * the header (entries) is encrypted under `packKey`. The bytes are a view of the builder's
   * buffer (the builder is done after this).
   */
  finish(packKey: Uint8Array, sealedKey: Buffer): { bytes: Buffer; entries: PackEntry[] } {
    this.closeGroup();
    const header = Buffer.concat([sealedKey, aeadSeal(packKey, encodeHeader(this.entries), HEADER_AAD)]);
    const sealedKeyLen = Buffer.alloc(2);
    sealedKeyLen.writeUInt16BE(sealedKey.length);
    const len = 2 + header.length;
    this.room(BLOCK + len + 3 * BLOCK);
    tarHeader('header', len).copy(this.buf, this.pos);
    this.pos += BLOCK;
    sealedKeyLen.copy(this.buf, this.pos);
    header.copy(this.buf, this.pos + 2);
    this.pos += len;
    this.pad(len);
    this.buf.fill(0, this.pos, this.pos + 2 * BLOCK);
    this.pos += 2 * BLOCK;
    return { bytes: this.buf.subarray(0, this.pos), entries: this.entries };
  }
}

function encodeHeader(entries: PackEntry[]): Buffer {
  const out = Buffer.alloc(9 + entries.length * 45);
  MAGIC.copy(out, 0);
  out[4] = 1; // version
  out.writeUInt32BE(entries.length, 5);
  let p = 9;
  for (const e of entries) {
    e.id.copy(out, p);
    out[p + 32] = e.type === 'tree' ? 1 : 0;
    out.writeUInt32BE(e.offset, p + 33);
    out.writeUInt32BE(e.length, p + 37);
    out.writeUInt32BE(e.rawLength, p + 41);
    p += 45;
  }
  return out;
}

function decodeHeader(buf: Buffer): PackEntry[] {
  if (buf.length < 9 || !buf.subarray(0, 4).equals(MAGIC) || buf[4] !== 1) throw new Error('unknown pack header version');
  const n = buf.readUInt32BE(5);
  // The count is checked against the bytes there are before anything is allocated for it.
  if (buf.length !== 9 + n * 45) throw new Error(`pack header of ${buf.length} bytes cannot hold ${n} entries`);
  const out: PackEntry[] = [];
  let p = 9;
  for (let i = 0; i < n; i++) {
    const t = buf[p + 32];
    if (t !== 0 && t !== 1) throw new Error(`pack header entry ${i} has unknown type ${t}`);
    out.push({
      id: Buffer.from(buf.subarray(p, p + 32)),
      type: t === 1 ? 'tree' : 'data',
      offset: buf.readUInt32BE(p + 33),
      length: buf.readUInt32BE(p + 37),
      rawLength: buf.readUInt32BE(p + 41),
    });
    p += 45;
  }
  return out;
}

/** Smallest sealed blob: nonce, tag and the flag byte. */
const MIN_SEALED_BLOB = 12 + 16 + 1;

/**
 * Checks a pack header's entries as hostile input (repair index, recover): every blob of
 * the pack's kind, lying between the first member header and `dataEnd` (where the header
 * member starts), none overlapping another, no id twice. Throws naming the first problem.
 */
export function checkPackEntries(entries: PackEntry[], kind: BlobType, dataEnd: number): void {
  const byOffset = [...entries].sort((a, b) => a.offset - b.offset);
  const ids = new Set<string>();
  let end = BLOCK;
  for (const e of byOffset) {
    const hex = e.id.toString('hex');
    if (e.type !== kind) throw new Error(`blob ${hex.slice(0, 16)} is a ${e.type} blob in a ${kind} pack`);
    if (e.length < MIN_SEALED_BLOB) throw new Error(`blob ${hex.slice(0, 16)} has a sealed length of ${e.length}`);
    if (e.offset < end || e.offset + e.length > dataEnd) throw new Error(`blob ${hex.slice(0, 16)} at ${e.offset}+${e.length} overlaps another or lies outside the pack's data (${BLOCK}..${dataEnd})`);
    if (ids.has(hex)) throw new Error(`blob ${hex.slice(0, 16)} is listed twice`);
    ids.add(hex);
    end = e.offset + e.length;
  }
}

/**
 * The header member of a pack, found in its last bytes: `tail` holds bytes
 * [packLength - tail.length, packLength). A pack ends with the header member (a tar header,
 * its data, zero padding) and two zero blocks, so the member's tar header is the last block
 * before them that is a valid ustar header named "header" whose data ends exactly there.
 * Returns null when the header member starts before `tail` (read a longer tail); throws
 * when the bytes cannot be a pack's end. `at`: the offset of the member's tar header, the
 * end of the blobs.
 */
export function findPackHeader(tail: Buffer, packLength: number): { sealedKey: Buffer; encrypted: Buffer; at: number } | null {
  const start = packLength - tail.length;
  if (packLength % BLOCK !== 0 || packLength < 4 * BLOCK) throw new Error(`a pack of ${packLength} bytes is not a tar archive`);
  const end = packLength - 2 * BLOCK;
  if (tail.length < 2 * BLOCK || tail.subarray(end - start).some((b) => b !== 0)) throw new Error('the pack does not end with two zero blocks');
  for (let h = end - BLOCK; h >= start; h -= BLOCK) {
    const size = memberSize(tail.subarray(h - start, h - start + BLOCK), 'header');
    if (size === null || h + BLOCK + size + padLen(size) !== end) continue;
    const m = tail.subarray(h - start + BLOCK, h - start + BLOCK + size);
    if (m.length < 2) throw new Error('header member too short');
    const klen = m.readUInt16BE(0);
    if (2 + klen + 28 > m.length) throw new Error(`header member of ${m.length} bytes cannot hold a sealed key of ${klen}`);
    return { sealedKey: Buffer.from(m.subarray(2, 2 + klen)), encrypted: Buffer.from(m.subarray(2 + klen)), at: h };
  }
  if (start <= 0) throw new Error('pack has no header member');
  return null;
}

/** The data size of a tar member header block named `name` (valid magic and checksum), or null. */
function memberSize(h: Buffer, name: string): number | null {
  if (h.toString('latin1', 257, 263) !== 'ustar\0') return null;
  const nameBytes = Buffer.from(name);
  if (!h.subarray(0, nameBytes.length).equals(nameBytes) || h[nameBytes.length] !== 0) return null;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  const ck = h.toString('latin1', 148, 154);
  if (!/^[0-7]{6}$/.test(ck) || parseInt(ck, 8) !== sum) return null;
  const sz = h.toString('latin1', 124, 135);
  return /^[0-7]{11}$/.test(sz) && h[135] === 0 ? parseInt(sz, 8) : null;
}

/** Reads a whole pack's header member: the sealed pack key and the encrypted entry list. */
export function splitPackHeader(pack: Uint8Array): { sealedKey: Buffer; encrypted: Buffer } {
  const members = parseTar(pack);
  const h = members[members.length - 1];
  if (!h || h.name !== 'header') throw new Error('pack has no header member');
  const m = Buffer.from(pack.buffer, pack.byteOffset + h.dataOffset, h.size);
  const klen = m.readUInt16BE(0);
  return { sealedKey: Buffer.from(m.subarray(2, 2 + klen)), encrypted: Buffer.from(m.subarray(2 + klen)) };
}

export function openPackHeader(packKey: Uint8Array, encrypted: Buffer): PackEntry[] {
  return decodeHeader(aeadOpen(packKey, encrypted, HEADER_AAD));
}

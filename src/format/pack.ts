// Packs: tar archives of encrypted blobs. See docs/FORMAT.md ("Packs") for the bytes.
//
// Tar pads every member to 512 bytes, so one member per blob would waste ~256 bytes per
// small file. Instead: a blob of at least LARGE_BLOB sealed bytes is a member of its own,
// named "b/<blob id hex>"; smaller blobs are concatenated into group members "g/<n>" of up
// to GROUP_TARGET bytes. The encrypted pack header is the last member, named "header".
import { aeadOpen, aeadSeal } from '../crypto/aead.js';
import { BLOCK, padLen, parseTar, tarHeader } from './tar.js';

export const LARGE_BLOB = 64 * 1024;
export const GROUP_TARGET = 1024 * 1024;
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

interface Pending {
  id: Buffer;
  type: BlobType;
  sealed: Buffer;
  rawLength: number;
}

/** Collects sealed blobs for one pack and lays out the tar at the end. */
export class PackBuilder {
  private blobs: Pending[] = [];
  private bytes = 0;

  add(id: Buffer, type: BlobType, sealed: Buffer, rawLength: number): void {
    this.blobs.push({ id, type, sealed, rawLength });
    this.bytes += sealed.length + 64; // rough per-blob share of headers and padding
  }

  get size(): number {
    return this.bytes;
  }

  get count(): number {
    return this.blobs.length;
  }

  /**
   * Lays out the archive. `sealedKey` is the pack key sealed to the repository's public
   * key; the header (entries) is encrypted under `packKey`.
   */
  finish(packKey: Uint8Array, sealedKey: Buffer): { bytes: Buffer; entries: PackEntry[] } {
    const parts: Buffer[] = [];
    const entries: PackEntry[] = [];
    let pos = 0;
    let group: Pending[] = [];
    let groupLen = 0;
    let groupNo = 0;
    const member = (name: string, data: Buffer[], len: number) => {
      parts.push(tarHeader(name, len));
      pos += BLOCK;
      for (const d of data) parts.push(d);
      pos += len;
      const pad = padLen(len);
      if (pad) {
        parts.push(Buffer.alloc(pad));
        pos += pad;
      }
    };
    const flushGroup = () => {
      if (!group.length) return;
      let off = pos + BLOCK;
      for (const b of group) {
        entries.push({ id: b.id, type: b.type, offset: off, length: b.sealed.length, rawLength: b.rawLength });
        off += b.sealed.length;
      }
      member(`g/${groupNo++}`, group.map((b) => b.sealed), groupLen);
      group = [];
      groupLen = 0;
    };
    for (const b of this.blobs) {
      if (b.sealed.length >= LARGE_BLOB) {
        flushGroup();
        entries.push({ id: b.id, type: b.type, offset: pos + BLOCK, length: b.sealed.length, rawLength: b.rawLength });
        member(`b/${b.id.toString('hex')}`, [b.sealed], b.sealed.length);
      } else {
        group.push(b);
        groupLen += b.sealed.length;
        if (groupLen >= GROUP_TARGET) flushGroup();
      }
    }
    flushGroup();
    const header = Buffer.concat([sealedKey, aeadSeal(packKey, encodeHeader(entries), HEADER_AAD)]);
    const sealedKeyLen = Buffer.alloc(2);
    sealedKeyLen.writeUInt16BE(sealedKey.length);
    const headerMember = Buffer.concat([sealedKeyLen, header]);
    member('header', [headerMember], headerMember.length);
    parts.push(Buffer.alloc(2 * BLOCK));
    return { bytes: Buffer.concat(parts), entries };
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
  if (!buf.subarray(0, 4).equals(MAGIC) || buf[4] !== 1) throw new Error('unknown pack header version');
  const n = buf.readUInt32BE(5);
  const out: PackEntry[] = [];
  let p = 9;
  for (let i = 0; i < n; i++) {
    out.push({
      id: Buffer.from(buf.subarray(p, p + 32)),
      type: buf[p + 32] === 1 ? 'tree' : 'data',
      offset: buf.readUInt32BE(p + 33),
      length: buf.readUInt32BE(p + 37),
      rawLength: buf.readUInt32BE(p + 41),
    });
    p += 45;
  }
  return out;
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

// Parity group records (docs/FORMAT.md "Parity"): the headers of a group's M parity objects
// and their names, sealed with indexKey, stored where they can be read at once (the index
// class) while the parity objects themselves may be archived. Repair learns from them which
// packs a group holds and which objects to restore, without restoring any parity first.
// Only a plan comes from a record: what is then read is checked as always (a parity object
// by its own header and hash, a rebuilt pack by its id).
import { aeadOpen, aeadSeal } from '../crypto/aead.js';
import { decodeHeader, encodeHeader, ParityFormatError, type ParityHeader } from './parity.js';

const MAGIC = Buffer.from('TSBG');
const AAD = Buffer.from('tsbak parity group v1');
/** The largest record a reader accepts: 32 rows (name, size, hlen, a header of 128 members), and the rest. */
export const PARITY_GROUP_MAX = 32 * (32 + 4 + 2 + 41 + 128 * 37) + 64;

export interface ParityGroupRow {
  /** The parity object's name: the SHA-256 of its bytes. */
  object: Buffer;
  /** Its size in bytes. */
  size: number;
  header: ParityHeader;
}

/** "TSBG" || u8 1 || seal(indexKey, u8 rows || rows × (name(32) || u32 size || u16 hlen || header), aad). */
export function encodeParityGroup(indexKey: Uint8Array, rows: ParityGroupRow[]): Buffer {
  const parts: Buffer[] = [Buffer.from([rows.length])];
  for (const r of rows) {
    const h = encodeHeader(r.header);
    const fixed = Buffer.alloc(38);
    r.object.copy(fixed, 0);
    fixed.writeUInt32BE(r.size, 32);
    fixed.writeUInt16BE(h.length, 36);
    parts.push(fixed, h);
  }
  return Buffer.concat([MAGIC, Buffer.from([1]), aeadSeal(indexKey, Buffer.concat(parts), AAD)]);
}

/** A record's rows, checked: every header decodes, rows are distinct and describe one group. */
export function decodeParityGroup(indexKey: Uint8Array, bytes: Buffer): ParityGroupRow[] {
  if (bytes.length > PARITY_GROUP_MAX) throw new ParityFormatError(`parity group record of ${bytes.length} bytes`);
  if (bytes.length < 5 || !bytes.subarray(0, 4).equals(MAGIC)) throw new ParityFormatError('not a parity group record');
  if (bytes[4] !== 1) throw new ParityFormatError(`parity group record version ${bytes[4]}`);
  let b: Buffer;
  try {
    b = aeadOpen(indexKey, bytes.subarray(5), AAD);
  } catch {
    throw new ParityFormatError('parity group record does not authenticate with this repository');
  }
  if (b.length < 1) throw new ParityFormatError('empty parity group record');
  const n = b[0]!;
  const rows: ParityGroupRow[] = [];
  let o = 1;
  for (let i = 0; i < n; i++) {
    if (o + 38 > b.length) throw new ParityFormatError('parity group record is cut short');
    const object = Buffer.from(b.subarray(o, o + 32));
    const size = b.readUInt32BE(o + 32);
    const hlen = b.readUInt16BE(o + 36);
    o += 38;
    if (o + hlen > b.length) throw new ParityFormatError('parity group record is cut short');
    const header = decodeHeader(b.subarray(o, o + hlen));
    o += hlen;
    rows.push({ object, size, header });
  }
  if (o !== b.length) throw new ParityFormatError('trailing bytes in a parity group record');
  const first = rows[0];
  if (!first) throw new ParityFormatError('parity group record without rows');
  const shape = (h: ParityHeader) => `${h.k}+${h.m}/${h.stripe}/${h.members.map((x) => `${x.id.toString('hex')}:${x.kind}:${x.length}`).join(',')}`;
  const rowsSeen = new Set<number>();
  for (const r of rows) {
    if (shape(r.header) !== shape(first.header)) throw new ParityFormatError('parity group record mixes groups');
    if (rowsSeen.has(r.header.row)) throw new ParityFormatError(`parity group record repeats row ${r.header.row}`);
    rowsSeen.add(r.header.row);
  }
  if (rows.length > first.header.m) throw new ParityFormatError('parity group record has more rows than M');
  return rows;
}

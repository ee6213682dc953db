// Parity objects (docs/FORMAT.md "Parity"): one of the M parity members of a group of packs.
// The header names the group's members and is sealed with indexKey (every key holds it, so
// a writer key can write parity); the payload is the parity stripe, bound to the header by
// its SHA-256. A parity object is only ever used to rebuild bytes that are then checked
// against the pack's id (its SHA-256), so a hostile one can fail a repair, never inject data.
import { aeadOpen, aeadSeal } from '../crypto/aead.js';
import { sha256 } from '../crypto/hash.js';

const MAGIC = Buffer.from('TSBP');
const AAD = Buffer.from('tsbak parity v1');
/** The largest sealed header a reader accepts (128 members of 37 bytes, and the rest). */
export const PARITY_HEADER_MAX = 8192;
/** Bytes a reader fetches first: magic, version, sealed header length, and room for a whole header. */
export const PARITY_PREFIX = 9 + PARITY_HEADER_MAX;

export interface ParityMember {
  id: Buffer;
  kind: 'data' | 'tree';
  length: number;
}

export interface ParityHeader {
  k: number;
  m: number;
  /** Which parity member this is, 0..m-1. */
  row: number;
  members: ParityMember[];
  /** Payload length: the longest member's. */
  stripe: number;
  payloadSha256: Buffer;
}

export class ParityFormatError extends Error {}

export function encodeHeader(h: ParityHeader): Buffer {
  const b = Buffer.alloc(4 + 4 + 32 + 1 + h.members.length * 37);
  let o = 0;
  o = b.writeUInt8(h.k, o);
  o = b.writeUInt8(h.m, o);
  o = b.writeUInt8(h.row, o);
  o = b.writeUInt8(h.members.length, o);
  o = b.writeUInt32BE(h.stripe, o);
  h.payloadSha256.copy(b, o);
  o += 32;
  o = b.writeUInt8(0, o); // reserved
  for (const mem of h.members) {
    mem.id.copy(b, o);
    o += 32;
    o = b.writeUInt8(mem.kind === 'data' ? 0 : 1, o);
    o = b.writeUInt32BE(mem.length, o);
  }
  return b;
}

export function decodeHeader(b: Buffer): ParityHeader {
  if (b.length < 41) throw new ParityFormatError('header too short');
  const k = b.readUInt8(0), m = b.readUInt8(1), row = b.readUInt8(2), n = b.readUInt8(3);
  const stripe = b.readUInt32BE(4);
  if (k < 1 || m < 1 || k + m > 160 || row >= m || n < 1 || n > k) throw new ParityFormatError(`bad group shape k=${k} m=${m} row=${row} members=${n}`);
  if (b.length !== 41 + n * 37) throw new ParityFormatError('header length does not match its member count');
  if (b.readUInt8(40) !== 0) throw new ParityFormatError('reserved byte is not 0');
  const members: ParityMember[] = [];
  let maxLen = 0;
  for (let i = 0, o = 41; i < n; i++, o += 37) {
    const kind = b.readUInt8(o + 32);
    if (kind > 1) throw new ParityFormatError(`member ${i}: kind ${kind}`);
    const length = b.readUInt32BE(o + 33);
    maxLen = Math.max(maxLen, length);
    members.push({ id: Buffer.from(b.subarray(o, o + 32)), kind: kind === 0 ? 'data' : 'tree', length });
  }
  if (stripe !== maxLen) throw new ParityFormatError('stripe length is not the longest member');
  return { k, m, row, members, stripe, payloadSha256: Buffer.from(b.subarray(8, 40)) };
}

/** The object's bytes before its payload: "TSBP" || u8 1 || u32 sealedLen || seal(indexKey, header). */
export function encodeParityPrefix(indexKey: Uint8Array, h: ParityHeader): Buffer {
  const sealed = aeadSeal(indexKey, encodeHeader(h), AAD);
  const pre = Buffer.alloc(9);
  MAGIC.copy(pre, 0);
  pre.writeUInt8(1, 4);
  pre.writeUInt32BE(sealed.length, 5);
  return Buffer.concat([pre, sealed]);
}

/** The object's bytes: encodeParityPrefix || payload. */
export function encodeParity(indexKey: Uint8Array, h: Omit<ParityHeader, 'payloadSha256'>, payload: Uint8Array): Buffer {
  return Buffer.concat([encodeParityPrefix(indexKey, { ...h, payloadSha256: sha256(payload) }), payload]);
}

/** The header from the object's first bytes (at least 9 + its sealed length); also where the payload starts. */
export function decodeParityHeader(indexKey: Uint8Array, prefix: Buffer): { header: ParityHeader; payloadAt: number } {
  if (prefix.length < 9 || !prefix.subarray(0, 4).equals(MAGIC)) throw new ParityFormatError('not a parity object');
  if (prefix.readUInt8(4) !== 1) throw new ParityFormatError(`version ${prefix.readUInt8(4)}`);
  const len = prefix.readUInt32BE(5);
  if (len > PARITY_HEADER_MAX || 9 + len > prefix.length) throw new ParityFormatError('sealed header length out of range');
  let plain: Buffer;
  try {
    plain = aeadOpen(indexKey, prefix.subarray(9, 9 + len), AAD);
  } catch {
    throw new ParityFormatError('header does not authenticate with this repository');
  }
  return { header: decodeHeader(plain), payloadAt: 9 + len };
}

/** Checks a whole object: header, payload length and hash. Returns header and payload. */
export function decodeParity(indexKey: Uint8Array, bytes: Buffer): { header: ParityHeader; payload: Buffer } {
  const { header, payloadAt } = decodeParityHeader(indexKey, bytes);
  const payload = bytes.subarray(payloadAt);
  if (payload.length !== header.stripe) throw new ParityFormatError(`payload is ${payload.length} bytes, header says ${header.stripe}`);
  if (!sha256(payload).equals(header.payloadSha256)) throw new ParityFormatError('payload does not match its hash');
  return { header, payload };
}

/** Parity settings: "K+M" -> {k, m}; "off" -> null. */
export function parseParitySpec(s: string): { k: number; m: number } | null {
  if (s === 'off') return null;
  const m = /^([0-9]{1,3})\+([0-9]{1,2})$/.exec(s);
  if (!m) throw new ParityFormatError(`${JSON.stringify(s)} is not K+M (e.g. 10+2) or none`);
  const k = Number(m[1]), mm = Number(m[2]);
  if (k < 1 || k > 128 || mm < 1 || mm > 32) throw new ParityFormatError(`${s}: K must be 1 to 128 and M 1 to 32`);
  return { k, m: mm };
}

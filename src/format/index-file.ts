// Index files: which blobs each pack holds and where. See docs/FORMAT.md ("Index files").
// Plain layout (before zstd and AEAD under the index key):
//   v1: "TSBI" u8 1 u32 packCount packs                       (unsigned; still read)
//   v2: "TSBI" u8 2 u8 signerLen signer u32 packCount packs sig(64)
//   packs: per pack: 32 pack id | u8 kind (0 data, 1 tree) | u16 sealedKeyLen | sealedKey |
//          u32 blobCount | per blob: 32 id | u32 offset | u32 length | u32 rawLength
// v2's sig is the writer's Ed25519 signature of INDEX_SIG_PREFIX || everything before it:
// every key holder has indexKey, so the seal says only "some key holder wrote this"; the
// signature says which one, and dedup trusts only entries of keys it trusts (THREAT-MODEL.md).
import { aeadOpen, aeadSeal } from '../crypto/aead.js';
import { signBytes, type Ed25519Pair } from '../crypto/sign.js';
import { zstdCompress, zstdDecompress } from './compress.js';

const MAGIC = Buffer.from('TSBI');
const AAD = Buffer.from('tsbak index v1');
/** What a v2 signature covers before the index bytes: keeps it from meaning anything else. */
export const INDEX_SIG_PREFIX = Buffer.from('tsbak index v2\n');
const SIG_LEN = 64;

export interface IndexBlob {
  id: Buffer;
  offset: number;
  length: number;
  rawLength: number;
}

export interface IndexPack {
  id: Buffer; // sha256 of the pack file = its name
  kind: 'data' | 'tree';
  sealedKey: Buffer; // the pack key sealed to the repository public key
  blobs: IndexBlob[];
}

/** A decoded index file. `signer` is null for a v1 (unsigned) file. */
export interface IndexFile {
  version: 1 | 2;
  signer: string | null;
  packs: IndexPack[];
  /** v2: the bytes the signature covers (without INDEX_SIG_PREFIX) and the signature. */
  signed?: Buffer;
  sig?: Buffer;
}

/** Who signs an index file: its key id ("master" or a writer's) and Ed25519 pair. */
export interface IndexSigner {
  keyId: string;
  pair: Ed25519Pair;
}

function packsSize(packs: IndexPack[]): number {
  let size = 4;
  for (const p of packs) size += 32 + 1 + 2 + p.sealedKey.length + 4 + p.blobs.length * 44;
  return size;
}

function writePacks(out: Buffer, o: number, packs: IndexPack[]): number {
  out.writeUInt32BE(packs.length, o);
  o += 4;
  for (const p of packs) {
    p.id.copy(out, o);
    out[o + 32] = p.kind === 'tree' ? 1 : 0;
    out.writeUInt16BE(p.sealedKey.length, o + 33);
    p.sealedKey.copy(out, o + 35);
    o += 35 + p.sealedKey.length;
    out.writeUInt32BE(p.blobs.length, o);
    o += 4;
    for (const b of p.blobs) {
      b.id.copy(out, o);
      out.writeUInt32BE(b.offset, o + 32);
      out.writeUInt32BE(b.length, o + 36);
      out.writeUInt32BE(b.rawLength, o + 40);
      o += 44;
    }
  }
  return o;
}

/** The v2 plaintext, signed by `signer`. */
export function encodeIndex(packs: IndexPack[], signer: IndexSigner): Buffer {
  const name = Buffer.from(signer.keyId, 'utf8');
  if (!name.length || name.length > 255) throw new Error(`index signer id of ${name.length} bytes`);
  const head = 4 + 1 + 1 + name.length;
  const body = Buffer.alloc(head + packsSize(packs));
  MAGIC.copy(body, 0);
  body[4] = 2;
  body[5] = name.length;
  name.copy(body, 6);
  writePacks(body, head, packs);
  const sig = signBytes(signer.pair, Buffer.concat([INDEX_SIG_PREFIX, body]));
  return Buffer.concat([body, sig]);
}

/** The v1 plaintext (unsigned): what older versions wrote; kept for tests of old repositories. */
export function encodeIndexV1(packs: IndexPack[]): Buffer {
  const out = Buffer.alloc(5 + packsSize(packs));
  MAGIC.copy(out, 0);
  out[4] = 1;
  writePacks(out, 5, packs);
  return out;
}

/** Decodes either version; every count and length is checked against the bytes there are. */
export function decodeIndex(buf: Buffer): IndexFile {
  if (buf.length < 9 || !buf.subarray(0, 4).equals(MAGIC)) throw new Error('not an index file');
  const version = buf[4];
  let o = 5;
  let end = buf.length;
  let signer: string | null = null;
  if (version === 2) {
    const n = buf[5]!;
    if (n === 0 || buf.length < 6 + n + 4 + SIG_LEN) throw new Error('truncated index header');
    signer = buf.subarray(6, 6 + n).toString('utf8');
    o = 6 + n;
    end = buf.length - SIG_LEN;
  } else if (version !== 1) throw new Error(`unknown index version ${version}`);
  const need = (k: number) => {
    if (o + k > end) throw new Error('truncated index');
  };
  need(4);
  const n = buf.readUInt32BE(o);
  o += 4;
  const packs: IndexPack[] = [];
  for (let i = 0; i < n; i++) {
    need(35);
    const id = Buffer.from(buf.subarray(o, o + 32));
    const k = buf[o + 32];
    if (k !== 0 && k !== 1) throw new Error(`unknown pack kind ${k}`);
    const kl = buf.readUInt16BE(o + 33);
    need(35 + kl + 4);
    const sealedKey = Buffer.from(buf.subarray(o + 35, o + 35 + kl));
    o += 35 + kl;
    const count = buf.readUInt32BE(o);
    o += 4;
    need(count * 44);
    const blobs: IndexBlob[] = new Array(count);
    for (let j = 0; j < count; j++) {
      blobs[j] = { id: Buffer.from(buf.subarray(o, o + 32)), offset: buf.readUInt32BE(o + 32), length: buf.readUInt32BE(o + 36), rawLength: buf.readUInt32BE(o + 40) };
      o += 44;
    }
    packs.push({ id, kind: k === 1 ? 'tree' : 'data', sealedKey, blobs });
  }
  if (o !== end) throw new Error('trailing bytes in index');
  if (version === 1) return { version: 1, signer: null, packs };
  return { version: 2, signer, packs, signed: buf.subarray(0, end), sig: buf.subarray(end) };
}

export function sealIndex(indexKey: Uint8Array, packs: IndexPack[], signer: IndexSigner): Buffer {
  return aeadSeal(indexKey, zstdCompress(encodeIndex(packs, signer), 3), AAD);
}

/** Seals a v1 (unsigned) index, as versions before 2 did. */
export function sealIndexV1(indexKey: Uint8Array, packs: IndexPack[]): Buffer {
  return aeadSeal(indexKey, zstdCompress(encodeIndexV1(packs), 3), AAD);
}

/**
 * An index is mostly random ids and keys, which zstd cannot shrink: its plaintext is never
 * more than a few times its compressed size. More is a bomb from a key holder, refused
 * before it is made.
 */
const MAX_INDEX_EXPANSION = 8;

export function openIndex(indexKey: Uint8Array, sealed: Uint8Array): IndexFile {
  const compressed = aeadOpen(indexKey, sealed, AAD);
  return decodeIndex(zstdDecompress(compressed, MAX_INDEX_EXPANSION * compressed.length + (1 << 20)));
}

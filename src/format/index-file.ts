// Index files: which blobs each pack holds and where. See docs/FORMAT.md ("Index files").
// Plain layout (before zstd and AEAD under the index key):
//   "TSBI" u8 version=1 u32 packCount, then per pack:
//     32 pack id | u8 kind (0 data, 1 tree) | u16 sealedKeyLen | sealedKey | u32 blobCount
//     then per blob: 32 id | u32 offset | u32 length | u32 rawLength
import { aeadOpen, aeadSeal } from '../crypto/aead.js';
import { zstdCompress, zstdDecompress } from './compress.js';

const MAGIC = Buffer.from('TSBI');
const AAD = Buffer.from('tsbak index v1');

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

export function encodeIndex(packs: IndexPack[]): Buffer {
  let size = 9;
  for (const p of packs) size += 32 + 1 + 2 + p.sealedKey.length + 4 + p.blobs.length * 44;
  const out = Buffer.alloc(size);
  MAGIC.copy(out, 0);
  out[4] = 1;
  out.writeUInt32BE(packs.length, 5);
  let o = 9;
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
  return out;
}

export function decodeIndex(buf: Buffer): IndexPack[] {
  if (!buf.subarray(0, 4).equals(MAGIC) || buf[4] !== 1) throw new Error('unknown index version');
  const n = buf.readUInt32BE(5);
  const packs: IndexPack[] = [];
  let o = 9;
  for (let i = 0; i < n; i++) {
    const id = Buffer.from(buf.subarray(o, o + 32));
    const kind = buf[o + 32] === 1 ? 'tree' : 'data';
    const kl = buf.readUInt16BE(o + 33);
    const sealedKey = Buffer.from(buf.subarray(o + 35, o + 35 + kl));
    o += 35 + kl;
    const count = buf.readUInt32BE(o);
    o += 4;
    const blobs: IndexBlob[] = [];
    for (let j = 0; j < count; j++) {
      blobs.push({
        id: Buffer.from(buf.subarray(o, o + 32)),
        offset: buf.readUInt32BE(o + 32),
        length: buf.readUInt32BE(o + 36),
        rawLength: buf.readUInt32BE(o + 40),
      });
      o += 44;
    }
    packs.push({ id, kind, sealedKey, blobs });
  }
  return packs;
}

export function sealIndex(indexKey: Uint8Array, packs: IndexPack[]): Buffer {
  return aeadSeal(indexKey, zstdCompress(encodeIndex(packs), 3), AAD);
}

export function openIndex(indexKey: Uint8Array, sealed: Uint8Array): IndexPack[] {
  return decodeIndex(zstdDecompress(aeadOpen(indexKey, sealed, AAD)));
}

#!/usr/bin/env node
// The manual last resort of docs/FORMAT.md ("Recovering by hand"), step by step, with
// standard tools only: node's own crypto (node:crypto: scrypt, AES-256-GCM, X25519, HKDF,
// HMAC; `openssl enc` cannot do AES-GCM), tar and zstd. It imports nothing of tsbak, on
// purpose: it shows that the format description is enough.
//
//   TSBAK_PASSWORD=... node scripts/manual-recover.mjs <repo dir> <path in the snapshot> <output file> [snapshot id prefix]
//
// Without a snapshot id, the newest snapshot (by its time) is used. Only regular files.
import { createDecipheriv, createHmac, createPrivateKey, createPublicKey, diffieHellman, hkdfSync, scryptSync } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, writeSync } from 'node:fs';
import * as path from 'node:path';

const [repo, wanted, output, snapRef] = process.argv.slice(2);
if (!repo || !wanted || !output) {
  process.stderr.write('usage: TSBAK_PASSWORD=... node manual-recover.mjs <repo dir> <path in the snapshot> <output file> [snapshot id prefix]\n');
  process.exit(2);
}
const passphrase = process.env.TSBAK_PASSWORD ?? '';
const say = (s) => process.stderr.write(`${s}\n`);

// AES-256-GCM open of nonce(12) || ciphertext || tag(16), with its additional data.
function aeadOpen(key, sealed, aad) {
  const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]);
}

// Step 1: the key object. scrypt(passphrase, salt) opens `wrapped` (AAD "tsbak key v1").
let secrets = null;
for (const name of readdirSync(path.join(repo, 'keys'))) {
  const obj = JSON.parse(readFileSync(path.join(repo, 'keys', name), 'utf8'));
  if (obj.kind !== 'full') continue;
  const { N, r, p, salt } = obj.kdf;
  const kek = scryptSync(passphrase.normalize('NFC'), Buffer.from(salt, 'base64'), 32, { N, r, p, maxmem: 256 * N * r + (32 << 20) });
  try {
    secrets = JSON.parse(aeadOpen(kek, Buffer.from(obj.wrapped, 'base64'), Buffer.from('tsbak key v1')).toString('utf8'));
    say(`step 1: key object keys/${name} opened`);
    break;
  } catch {
    // another passphrase's key object
  }
}
if (!secrets) throw new Error('no key object in keys/ opens with this passphrase');
const repoPriv = Buffer.from(secrets.repoPriv, 'base64');
const repoPub = Buffer.from(secrets.repoPub, 'base64');
const macKey = Buffer.from(secrets.macKey, 'base64');

// Step 2: seal to public key, opened: E.pub(32) || AES-GCM under HKDF-SHA256(X25519(repoPriv, E.pub), salt E.pub || repoPub, info "tsbak seal v1"), AAD E.pub.
function openSealed(sealed) {
  const ephPub = sealed.subarray(0, 32);
  const priv = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: repoPriv.toString('base64url'), x: repoPub.toString('base64url') }, format: 'jwk' });
  const pub = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(ephPub).toString('base64url') }, format: 'jwk' });
  const shared = diffieHellman({ privateKey: priv, publicKey: pub });
  const key = Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephPub, repoPub]), Buffer.from('tsbak seal v1'), 32));
  return aeadOpen(key, sealed.subarray(32), ephPub);
}

// Step 3: every pack's header member (tar -xOf pack header): u16 len || sealedKey || AES-GCM(packKey, H, AAD "tsbak pack header v1").
const where = new Map(); // blob id hex -> { file, key, offset, length }
let packs = 0;
for (const kind of ['data', 'tree']) {
  const dir = path.join(repo, 'packs', kind);
  for (const sub of readdirSync(dir)) {
    for (const name of readdirSync(path.join(dir, sub))) {
      const file = path.join(dir, sub, name);
      const t = spawnSync('tar', ['-xOf', file, 'header'], { maxBuffer: 1 << 30 });
      if (t.status !== 0) throw new Error(`tar -xOf ${file} header: ${t.stderr}`);
      const member = t.stdout;
      const klen = member.readUInt16BE(0);
      const packKey = openSealed(member.subarray(2, 2 + klen));
      const h = aeadOpen(packKey, member.subarray(2 + klen), Buffer.from('tsbak pack header v1'));
      if (h.toString('latin1', 0, 4) !== 'TSBP' || h[4] !== 1) throw new Error(`${file}: not a version 1 pack header`);
      const count = h.readUInt32BE(5);
      for (let i = 0, o = 9; i < count; i++, o += 45) {
        where.set(h.toString('hex', o, o + 32), { file, key: packKey, offset: h.readUInt32BE(o + 33), length: h.readUInt32BE(o + 37) });
      }
      packs++;
    }
  }
}
say(`step 3: ${packs} pack headers opened, ${where.size} blobs`);

// Step 4: one blob: its sealed bytes (dd if=pack skip=offset count=length), AES-GCM open with
// AAD = its id; flag || [u32 pad] || body || zeros; body through `zstd -d` when flag bit 1;
// then HMAC-SHA256(macKey, plaintext) must be the id.
function blob(idHex) {
  const w = where.get(idHex);
  if (!w) throw new Error(`blob ${idHex} is in no pack header`);
  const sealed = Buffer.alloc(w.length);
  const fd = openSync(w.file, 'r');
  readSync(fd, sealed, 0, w.length, w.offset);
  closeSync(fd);
  const framed = aeadOpen(w.key, sealed, Buffer.from(idHex, 'hex'));
  const flag = framed[0];
  let body = framed.subarray(1);
  if (flag & 2) body = framed.subarray(5, framed.length - framed.readUInt32BE(1));
  let plain = body;
  if (flag & 1) {
    const z = spawnSync('zstd', ['-d', '-c', '-q'], { input: body, maxBuffer: 1 << 30 });
    if (z.status !== 0) throw new Error(`zstd -d of blob ${idHex}: ${z.stderr}`);
    plain = z.stdout;
  }
  if (createHmac('sha256', macKey).update(plain).digest('hex') !== idHex) throw new Error(`blob ${idHex} does not match its id`);
  return plain;
}

// Step 5: the snapshot (JSON envelope; `sealed` opened as in step 2) names the root tree.
const snaps = readdirSync(path.join(repo, 'snapshots'))
  .filter((n) => !snapRef || n.startsWith(snapRef))
  .map((n) => ({ id: n, info: JSON.parse(openSealed(Buffer.from(JSON.parse(readFileSync(path.join(repo, 'snapshots', n), 'utf8')).sealed, 'base64')).toString('utf8')) }))
  .sort((a, b) => (a.info.time < b.info.time ? 1 : -1));
if (!snaps.length) throw new Error('no snapshot');
say(`step 5: snapshot ${snaps[0].id.slice(0, 8)} of ${snaps[0].info.time}, root tree ${snaps[0].info.tree.slice(0, 16)}`);

// Step 6: trees, version 2 ("TSBT" || u8 2 || u32 count || nodes, little-endian): walk the path.
function decodeTree(b) {
  if (b.toString('latin1', 0, 4) !== 'TSBT' || b[4] !== 2) throw new Error('not a version 2 tree');
  const nodes = [];
  let o = 9;
  const u16 = () => ((o += 2), b.readUInt16LE(o - 2));
  const u32 = () => ((o += 4), b.readUInt32LE(o - 4));
  const bytes = (n) => ((o += n), b.subarray(o - n, o));
  for (let i = 0, n = b.readUInt32LE(5); i < n; i++) {
    const node = { name: bytes(u16()).toString() };
    node.type = b[o++];
    const flags = b[o++];
    o += 12; // mode, uid, gid
    bytes(u16()); // user
    bytes(u16()); // group
    if (flags & 128) for (let k = 0; k < 4; k++) bytes(b[o++]);
    else o += 32; // four i64 times
    o += 16; // ino, dev
    node.size = Number(b.readBigUInt64LE(o));
    o += 8 + 4; // size, nlink
    if (flags & 1) bytes(u16()); // hardlink
    if (flags & 2) o += 8; // major, minor
    if (flags & 4) bytes(u32()); // symlink target
    if (flags & 8) for (let k = 0, x = u32(); k < x; k++) (bytes(u16()), bytes(u32())); // xattrs
    if (flags & 16) node.content = Array.from({ length: u32() }, () => bytes(32).toString('hex'));
    if (flags & 32) node.extents = Array.from({ length: u32() }, () => [Number(b.readBigUInt64LE((o += 16) - 16)), Number(b.readBigUInt64LE(o - 8))]);
    if (flags & 64) node.subtree = bytes(32).toString('hex');
    nodes.push(node);
  }
  return nodes;
}
let tree = snaps[0].info.tree;
let node = null;
for (const comp of wanted.split('/').filter(Boolean)) {
  if (!tree) throw new Error(`${wanted}: a parent is not a directory`);
  node = decodeTree(blob(tree)).find((n) => n.name === comp);
  if (!node) throw new Error(`${wanted}: ${comp} is not in the snapshot`);
  tree = node.subtree;
}
if (!node || node.type !== 0) throw new Error(`${wanted} is not a regular file`);

// Step 7: the file's chunks in order, over its data extents (one extent [0, size) when none is listed).
const out = openSync(output, 'w', 0o600);
const chunks = node.content ?? [];
const extents = node.extents ?? [[0, node.size]];
let c = 0;
for (const [offset, length] of extents) {
  for (let pos = offset; pos < offset + length && c < chunks.length; ) {
    const plain = blob(chunks[c++]);
    writeSync(out, plain, 0, plain.length, pos);
    pos += plain.length;
  }
}
ftruncateSync(out, node.size);
closeSync(out);
say(`step 7: ${wanted}: ${chunks.length} chunks, ${node.size} bytes written to ${output}`);

// Pack layout: one tar, the entries point at the blobs; a stored pack is named by the hash of its bytes.
import t from 'tap';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { PackBuilder, splitPackHeader } from '../src/format/pack.js';
import { parseTar } from '../src/format/tar.js';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { LocalBackend } from '../src/backend/local.js';
import { Repository } from '../src/repo/repository.js';
import { tempDir } from './lib/temp.js';

t.test('a pack is one tar: the blobs back to back in one member, then the header; entries point at the blobs', async (t) => {
  for (let round = 0; round < 40; round++) {
    // A small capacity: the buffer grows as blobs come.
    const builder = new PackBuilder(1024);
    const blobs: Array<{ id: Buffer; sealed: Buffer }> = [];
    // Sizes around what older versions made members of their own (64 KiB) and closed groups at (1 MiB).
    const sizes = [0, 1, 511, 512, 3000, 65535, 65536, 70000, 300000, 1 << 20];
    for (let i = randomInt(0, 40); i > 0; i--) {
      const sealed = randomBytes(sizes[randomInt(0, sizes.length)]!);
      const id = randomBytes(32);
      blobs.push({ id, sealed });
      builder.add(id, 'data', sealed, sealed.length + 7);
    }
    const sealedKey = randomBytes(80);
    const { bytes, entries } = builder.finish(randomBytes(32), sealedKey);
    t.equal(bytes.length % 512, 0, 'whole tar blocks');
    const members = parseTar(bytes);
    t.same(members.map((m) => m.name), blobs.length ? ['g/0', 'header'] : ['header'], 'one member holds every blob');
    t.same(splitPackHeader(bytes).sealedKey, sealedKey);
    t.equal(entries.length, blobs.length);
    for (let i = 0; i < blobs.length; i++) {
      const e = entries[i]!;
      t.ok(e.id.equals(blobs[i]!.id) && e.rawLength === blobs[i]!.sealed.length + 7, `entry ${i}`);
      t.ok(bytes.subarray(e.offset, e.offset + e.length).equals(blobs[i]!.sealed), `blob ${i} at its offset`);
    }
  }
});

t.test('packs written one after another (their buffer reused) hold exactly their blobs and are named by their bytes', async (t) => {
  const dir = tempDir(t);
  const repo = await Repository.init(new LocalBackend(dir), 'pw', { packSize: { data: 1 << 20, tree: 1 << 20 } });
  // ~10 MiB of blobs of many sizes: 5 packs or more.
  const sizes = [100, 5000, 60000, 70000, 300000, 900000];
  const blobs: Array<{ id: Buffer; bytes: Buffer }> = [];
  for (let total = 0, i = 0; total < 10 << 20; i++) {
    const bytes = randomBytes(sizes[i % sizes.length]!);
    const { id } = await repo.saveBlob('data', bytes);
    blobs.push({ id, bytes });
    total += bytes.length;
  }
  await repo.flush();
  const packs: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(path.join(d, e.name)) : packs.push(path.join(d, e.name));
  };
  walk(path.join(dir, 'packs', 'data'));
  t.ok(packs.length >= 5, `${packs.length} data packs`);
  for (const p of packs) t.equal(createHash('sha256').update(readFileSync(p)).digest('hex'), path.basename(p), `${path.basename(p).slice(0, 12)}: named by its bytes`);
  const again = await Repository.open(new LocalBackend(dir), { password: 'pw' });
  await again.loadIndex();
  let same = 0;
  for (const b of blobs) if ((await again.loadBlob(b.id)).equals(b.bytes)) same++;
  t.equal(same, blobs.length, 'every blob reads back');
});

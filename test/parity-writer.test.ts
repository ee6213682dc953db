// The parity a backup writes is the code's parity of the packs as stored, both when packs
// stream to a file as they are laid out (local) and when they are put from memory (S3,
// SFTP: here a local backend without createObjectFile): every group's M objects decode,
// and their payloads equal the stripes recomputed from the stored packs.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { LocalBackend } from '../src/backend/local.js';
import { decodeParity } from '../src/format/parity.js';
import { ParityEncoder } from '../src/repo/parity-code.js';
import { Repository } from '../src/repo/repository.js';
import { tempDir } from './lib/temp.js';

for (const streamed of [true, false]) {
  t.test(`packs ${streamed ? 'streamed to files' : 'put from memory'}: parity matches the stored packs`, async (t) => {
    const dir = path.join(tempDir(t), 'repo');
    const backend = new LocalBackend(dir);
    if (!streamed) Object.defineProperty(backend, 'createObjectFile', { value: undefined });
    const repo = await Repository.init(backend, 'pw', { packSize: { data: 1 << 20, tree: 64 << 10 } });
    await repo.setParity('3+2');
    // 7.5 MiB of incompressible blobs of several sizes: a few packs, more than one group.
    for (let i = 0; i < 30; i++) await repo.saveBlob('data', randomBytes(100_000 + i * 10_000));
    await repo.flush();
    await repo.closeWriter();
    const pdir = path.join(dir, 'packs', 'parity');
    const objects = readdirSync(pdir).flatMap((s) => readdirSync(path.join(pdir, s)).map((f) => readFileSync(path.join(pdir, s, f))));
    const groups = new Map<string, Map<number, Buffer>>();
    const headers = new Map<string, ReturnType<typeof decodeParity>['header']>();
    for (const o of objects) {
      const { header, payload } = decodeParity(repo.secrets.indexKey, o);
      const key = header.members.map((m) => m.id.toString('hex')).join();
      if (!groups.has(key)) groups.set(key, new Map());
      groups.get(key)!.set(header.row, payload);
      headers.set(key, header);
    }
    t.ok(groups.size >= 2, `${groups.size} groups, one of them short or not`);
    let members = 0;
    for (const [key, rows] of groups) {
      const h = headers.get(key)!;
      t.equal(rows.size, 2, 'M objects per group');
      t.ok(h.members.length >= 1 && h.members.length <= 3);
      const enc = new ParityEncoder(2);
      for (const [i, m] of h.members.entries()) {
        const hex = m.id.toString('hex');
        const bytes = readFileSync(path.join(dir, 'packs', m.kind, hex.slice(0, 2), hex));
        t.equal(bytes.length, m.length, 'member length as stored');
        await enc.fold(i, bytes);
        members++;
      }
      for (let j = 0; j < 2; j++) t.ok(rows.get(j)!.equals(enc.stripe(j, h.stripe)), `row ${j} is the parity of the stored packs`);
    }
    const packs = readdirSync(path.join(dir, 'packs', 'data')).flatMap((s) => readdirSync(path.join(dir, 'packs', 'data', s)));
    t.equal(members, packs.length, 'every data pack is in one group');
  });
}

// A large file whose chunks repeat (zeros and copied blocks, as in a disk image): the
// restore opens each such chunk once and copies it to its other places in the file
// (src/restore/restore.ts copyChunk, native copyRangeAsync); the file comes back byte for
// byte, holes and all, on the file system of the temp directory and on a tmpfs.
import t from 'tap';
import { createCipheriv } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { newRepo, run } from './lib/cli.js';
import { tempDir } from './lib/temp.js';

const MiB = 1 << 20;

/** Deterministic incompressible bytes (an AES-CTR keystream). */
function random(n: number, seed: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(n));
}

t.test('a file of repeated chunks restores identically', async (t) => {
  const src = tempDir(t);
  const file = path.join(src, 'disk.img');
  const block = random(3 * MiB, 1);
  const fd = openSync(file, 'w');
  // random, 17 MiB of zeros (several identical 4 MiB chunks), the block, zeros, the block
  // again, a hole of 8 MiB, random: every repeat after a different prefix
  let pos = 0;
  for (const part of [random(5 * MiB, 2), Buffer.alloc(17 * MiB), block, Buffer.alloc(9 * MiB), block, null, random(2 * MiB + 123, 3)]) {
    if (part === null) {
      pos += 8 * MiB;
      continue;
    }
    writeSync(fd, part, 0, part.length, pos);
    pos += part.length;
  }
  closeSync(fd);
  const want = readFileSync(file);
  const repo = newRepo(t);
  const w = run('tsbak-write', [repo, src]);
  t.equal(w.code, 0, w.stderr);
  const targets = [tempDir(t)];
  if (existsSync('/dev/shm')) {
    const shm = mkdtempSync('/dev/shm/tsbak-repeats-');
    t.teardown(() => rmSync(shm, { recursive: true, force: true }));
    targets.push(shm);
  }
  for (const target of targets) {
    const r = run('tsbak', ['restore', repo, 'latest', '--target', target]);
    t.equal(r.code, 0, `restore into ${target} exits 0: ${r.stderr}`);
    const got = path.join(target, file);
    t.ok(readFileSync(got).equals(want), `${target}: the same bytes`);
    t.equal(statSync(got).mode & 0o777, statSync(file).mode & 0o777, `${target}: the same mode`);
  }
});

t.test('files sharing chunks (a disk image and a later snapshot of it) restore identically', async (t) => {
  const src = tempDir(t);
  // The image: random regions around a region of zeros; the snapshot: its first half with one
  // region changed, then new data. The image is made read-only: later files copy from the
  // descriptor the restore opened, whatever mode the image ends up with.
  const image = Buffer.concat([random(6 * MiB, 4), Buffer.alloc(5 * MiB), random(7 * MiB, 5)]);
  const snap = Buffer.concat([image.subarray(0, 9 * MiB), random(1 * MiB, 6), image.subarray(10 * MiB, 14 * MiB), random(3 * MiB + 77, 7)]);
  const files: Array<[string, Buffer, number]> = [
    ['a-disk.img', image, 0o444],
    ['b-disk-snap.img', snap, 0o644],
    ['c-copy.img', image, 0o600],
  ];
  for (const [name, data, mode] of files) {
    const fd = openSync(path.join(src, name), 'w', mode);
    writeSync(fd, data);
    closeSync(fd);
  }
  const repo = newRepo(t);
  const w = run('tsbak-write', [repo, src]);
  t.equal(w.code, 0, w.stderr);
  const target = tempDir(t);
  const r = run('tsbak', ['restore', repo, 'latest', '--target', target]);
  t.equal(r.code, 0, r.stderr);
  for (const [name, data, mode] of files) {
    const got = path.join(target, src, name);
    t.ok(readFileSync(got).equals(data), `${name}: the same bytes`);
    t.equal(statSync(got).mode & 0o777, mode, `${name}: its mode`);
  }
});

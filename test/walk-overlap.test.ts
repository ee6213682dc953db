// Issue 23: a first backup's walk overlaps its work (two groups of a directory's files at
// once, a directory left finishing while its next sibling starts, checkpoint index files
// written in the background, files up to 1 MiB read with synchronous calls). The snapshot
// must come out exactly as the one-after-the-other walk makes it (TSBAK_WALK_SERIAL=1).
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { cpSync, linkSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { lastJson, run } from './lib/cli.js';
import { listFiles, sha256File as sha } from './lib/files.js';
import { tempDir } from './lib/temp.js';

/** Half random, half text: some of it compresses, none of it dedups by accident. */
function bytes(seed: string, n: number): Buffer {
  const text = Buffer.from(`a line of ${seed}\n`.repeat(Math.ceil(n / 2 / (seed.length + 11)) + 1));
  return Buffer.concat([randomBytes(n - (n >> 1)), text.subarray(0, n >> 1)]);
}

/**
 * Directories of more than one group of entries (64), with files of every path: read ahead
 * (small), read with synchronous calls (256 KiB - 1 MiB), read on the pool (over 1 MiB, several
 * chunks), empty, hardlinked, a symlink; subdirectories two levels deep.
 */
function makeTree(root: string): void {
  const sizes = [0, 1, 700, 5_000, 20_000, 90_000, 3_000, 200_000, 50, 300_000, 10_000, 600_000, 7_000, 1_000_000, 100, 1_100_000, 4_000, 2_600_000, 30_000, 60_000];
  for (let d = 0; d < 2; d++) {
    for (const sub of ['', 'a', 'a/x', 'b']) {
      const dir = path.join(root, `d${d}`, sub);
      mkdirSync(dir, { recursive: true });
      for (let f = 0; f < 70; f++) {
        const size = sizes[(f * 7 + d) % sizes.length]!;
        writeFileSync(path.join(dir, `f${f}`), bytes(`${d}/${sub}/${f}`, size));
      }
      writeFileSync(path.join(dir, 'same'), bytes('the same in every directory', 400_000));
      symlinkSync('f1', path.join(dir, 'link'));
    }
    linkSync(path.join(root, `d${d}`, 'f8'), path.join(root, `d${d}`, 'b', 'hardlink'));
  }
}

/** Lists every directory, reads every file and symlink: relatime moves atimes on the first pass only. */
function warm(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) warm(p);
    else if (e.isFile()) readFileSync(p);
    else if (e.isSymbolicLink()) readlinkSync(p);
  }
}

const json = (r: { stdout: string }): any => lastJson(r.stdout);

t.test('the overlapped walk makes the same snapshot as the serial one, checkpoints and all', async (t) => {
  const src = tempDir(t);
  makeTree(src);
  warm(src);
  warm(src);
  // One repository copied before its first backup: the same chunker secret and keys.
  // Without parity: a checkpoint lists only packs whose parity group is written (10 packs).
  const first = path.join(tempDir(t), 'repo');
  t.equal(run('tsbak', ['init', first, '--parity', 'none']).code, 0);
  const serialRepo = path.join(tempDir(t), 'repo');
  const overlapRepo = path.join(tempDir(t), 'repo');
  cpSync(first, serialRepo, { recursive: true });
  cpSync(first, overlapRepo, { recursive: true });

  const serial = run('tsbak-write', [serialRepo, src, '--json', '--host', 'h'], { TSBAK_WALK_SERIAL: '1' });
  t.equal(serial.code, 0, serial.stderr);
  // A checkpoint after every pack: several index files written while the walk goes on.
  const overlap = run('tsbak-write', [overlapRepo, src, '--json', '--host', 'h'], { TSBAK_CHECKPOINT_BYTES: '1' });
  t.equal(overlap.code, 0, overlap.stderr);
  t.same(json(overlap).errors, []);
  t.same(json(overlap).changed_while_read, []);
  t.equal(json(overlap).files, json(serial).files, 'the same files');
  t.equal(json(overlap).blobs_added, json(serial).blobs_added, 'the same blobs stored');

  // The overlapped walk again, into the repository of the serial one, rereading everything:
  // every tree below the given path is then the same blob, stored already. Only the trees
  // of the directories above it (the root, the temporary directories, whose times other
  // processes move) may be new.
  const ancestors = path.dirname(src).split('/').filter(Boolean).length + 1;
  const same = run('tsbak-write', [serialRepo, src, '--json', '--host', 'h', '--force']);
  t.equal(same.code, 0, same.stderr);
  t.equal(json(same).files, json(serial).files);
  t.ok(json(same).blobs_added <= ancestors, `every tree below ${src} the same, byte for byte (${json(same).blobs_added} new blobs, ${ancestors} directories above it)`);
  t.ok(readdirSync(path.join(overlapRepo, 'index')).length > 1, 'checkpoint index files were written during the backup');
  t.equal(run('tsbak', ['check', overlapRepo, '--read-data']).code, 0, 'check --read-data');

  const target = tempDir(t);
  const r = run('tsbak', ['restore', overlapRepo, 'latest', '--target', target]);
  t.equal(r.code, 0, r.stderr);
  const files = listFiles(src);
  t.ok(files.length > 550);
  let differ = 0;
  for (const f of files) if (sha(path.join(target, src, f)) !== sha(path.join(src, f))) differ++;
  t.equal(differ, 0, 'every file restored with its bytes');

  // Again, with nothing changed: the directory records of both walks are reused alike.
  const again = run('tsbak-write', [overlapRepo, src, '--json', '--host', 'h']);
  t.equal(again.code, 0, again.stderr);
  // Only trees may be new: the directories above the given path (the temporary directory's parent) changed.
  t.ok(json(again).bytes_added < 64 << 10, `no data stored again (${json(again).bytes_added} bytes)`);
});

// Issue 2: round trip, dedup, tamper detection, write-only keys, interrupted backups, errors.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, promises as fsp, readFileSync, readdirSync, statSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import { BIN, lastJson, newRepo, run, testEnv } from './lib/cli.js';
import { listFiles, sha256File as sha } from './lib/files.js';
import { tempDir } from './lib/temp.js';

function makeTree(dir: string): void {
  mkdirSync(path.join(dir, 'sub/deeper'), { recursive: true });
  writeFileSync(path.join(dir, 'empty'), '');
  writeFileSync(path.join(dir, 'tiny.txt'), 'x');
  writeFileSync(path.join(dir, 'sub/random.bin'), randomBytes(20 << 20));
  const block = randomBytes(64 << 10);
  writeFileSync(path.join(dir, 'sub/deeper/repeated.bin'), Buffer.concat(Array.from({ length: 64 }, () => block)));
  for (let i = 0; i < 50; i++) writeFileSync(path.join(dir, `sub/small-${i}.txt`), `file ${i}\n`.repeat(i));
}

function dirSize(dir: string): number {
  let n = 0;
  for (const f of listFiles(dir)) n += statSync(path.join(dir, f)).size;
  return n;
}

const json = (r: { stdout: string }): any => lastJson(r.stdout);

t.test('large chunks hashed off the main thread, or blobs sealed on the main thread, store and dedup the same', async (t) => {
  // TSBAK_DEFER_HASH forces either hashing path (by default large chunks are hashed on
  // libuv's pool); TSBAK_WORKERS=0 seals every blob on the main thread, with no pool.
  const src = tempDir(t);
  mkdirSync(path.join(src, 'sub'));
  for (let i = 0; i < 20; i++) writeFileSync(path.join(src, `sub/small-${i}.txt`), `file ${i}\n`.repeat(i * 50));
  writeFileSync(path.join(src, 'sub/random.bin'), randomBytes(3 << 20));
  // Chunks that repeat inside one file: the same id is seen again while the first is in flight.
  const block = randomBytes(6 << 20);
  writeFileSync(path.join(src, 'thrice.bin'), Buffer.concat([block, block, block]));
  const variants: Record<string, Record<string, string>> = {
    'deferred hashing': { TSBAK_DEFER_HASH: '1' },
    'inline hashing': { TSBAK_DEFER_HASH: '0' },
    'inline sealing': { TSBAK_WORKERS: '0' },
  };
  // One repository, copied before its first backup: the same chunker secret for every run.
  const first = newRepo(t);
  const added: Record<string, { bytes_added: number; blobs_added: number }> = {};
  for (const [name, env] of Object.entries(variants)) {
    const repo = path.join(tempDir(t), 'repo');
    cpSync(first, repo, { recursive: true });
    const w = run('tsbak-write', [repo, src, '--json'], env);
    t.equal(w.code, 0, w.stderr);
    added[name] = json(w);
    // 9 MiB of distinct data plus a chunk or two around each join; 21 MiB without dedup.
    t.ok(json(w).bytes_added < 20 << 20, `${name}: a block written three times is stored about once (${json(w).bytes_added} bytes)`);
    const again = run('tsbak-write', [repo, src, '--json', '--force'], env);
    t.equal(again.code, 0, again.stderr);
    // Only trees may be new: listing a fresh directory moved its atime (relatime).
    t.ok(json(again).bytes_added < 64 << 10, `${name}: re-reading everything stores no data again (${json(again).bytes_added} bytes)`);
    t.equal(run('tsbak', ['check', repo, '--read-data']).code, 0, `${name}: check --read-data`);
    const target = tempDir(t);
    t.equal(run('tsbak', ['restore', repo, 'latest', '--target', target]).code, 0);
    for (const f of listFiles(src)) t.equal(sha(path.join(target, src, f)), sha(path.join(src, f)), `${name}: ${f}`);
  }
  const names = Object.keys(variants);
  for (const other of names.slice(1)) {
    t.equal(added[other]!.blobs_added, added[names[0]!]!.blobs_added, `the same blobs stored with ${other}`);
    // Bytes may differ by tar padding (blobs can reach the packs in another order) and by zstd builds.
    t.ok(Math.abs(added[other]!.bytes_added - added[names[0]!]!.bytes_added) < 64 << 10, `about the same bytes stored with ${other}`);
  }
});

t.test('round trip: every file comes back with identical bytes', async (t) => {
  const src = tempDir(t);
  makeTree(src);
  const repo = path.join(tempDir(t), 'repo');
  t.equal(run('tsbak', ['init', repo]).code, 0);
  const w = run('tsbak-write', [repo, src, '--json', '--tag', 'daily']);
  t.equal(w.code, 0, w.stderr);
  const out = json(w);
  t.equal(out.files, 54);
  t.ok(out.bytes_added > 20 << 20, 'random data is stored');
  t.ok(out.bytes_added < 24 << 20, 'repeated data is deduplicated');

  const snaps = run('tsbak', ['snapshots', repo, '--json']);
  t.equal(snaps.code, 0);
  const list = JSON.parse(snaps.stdout);
  t.equal(list.length, 1);
  t.same(list[0].tags, ['daily']);
  t.same(list[0].paths, [src]);

  const ls = run('tsbak', ['ls', repo, list[0].short_id, path.join(src, 'sub/deeper')]);
  t.match(ls.stdout, /repeated\.bin/);

  const target = tempDir(t);
  const r = run('tsbak', ['restore', repo, 'latest', '--target', target]);
  t.equal(r.code, 0, r.stderr);
  const restored = path.join(target, src);
  t.same(listFiles(restored), listFiles(src));
  for (const f of listFiles(src)) t.equal(sha(path.join(restored, f)), sha(path.join(src, f)), f);

  const only = tempDir(t);
  t.equal(run('tsbak', ['restore', repo, 'latest', '--target', only, '--include', path.join(src, 'tiny.txt')]).code, 0);
  t.same(listFiles(path.join(only, src)), ['tiny.txt']);

  const c = run('tsbak', ['check', repo, '--read-data']);
  t.equal(c.code, 0, c.stdout + c.stderr);
  t.match(c.stdout, /no errors/);
});

t.test('packs are tar archives that tar can list and extract', async (t) => {
  const src = tempDir(t);
  makeTree(src);
  const repo = newRepo(t);
  run('tsbak-write', [repo, src]);
  const packDir = path.join(repo, 'packs/data');
  const pack = path.join(packDir, readdirSync(packDir)[0]!, readdirSync(path.join(packDir, readdirSync(packDir)[0]!))[0]!);
  const { spawnSync } = await import('node:child_process');
  const tf = spawnSync('tar', ['tf', pack], { encoding: 'utf8' });
  t.equal(tf.status, 0, tf.stderr);
  const members = tf.stdout.trim().split('\n');
  t.equal(members[members.length - 1], 'header', 'the encrypted header is the last member');
  t.same(members, ['g/0', 'header'], "the blobs are one member: tar shows the pack's size, not its blobs' lengths");
  const x = tempDir(t);
  t.equal(spawnSync('tar', ['xf', pack, '-C', x]).status, 0);
  t.ok(existsSync(path.join(x, 'header')));
});

t.test('dedup: an unchanged re-backup adds almost nothing; an insertion adds only nearby chunks', async (t) => {
  const src = tempDir(t);
  const big = randomBytes(16 << 20);
  writeFileSync(path.join(src, 'big.bin'), big);
  const repo = newRepo(t);
  const first = json(run('tsbak-write', [repo, src, '--json']));
  const second = json(run('tsbak-write', [repo, src, '--json']));
  t.equal(second.bytes_read, 0, 'unchanged files are not read again');
  t.ok(second.bytes_added < 4096, `second backup added ${second.bytes_added} bytes`);
  t.equal(second.parent, first.snapshot_id);

  const forced = json(run('tsbak-write', [repo, src, '--json', '--force']));
  t.equal(forced.bytes_read, 16 << 20, '--force reads everything again');
  t.ok(forced.bytes_added < 4096, 'and dedups all of it');

  writeFileSync(path.join(src, 'big.bin'), Buffer.concat([Buffer.from([42]), big]));
  const third = json(run('tsbak-write', [repo, src, '--json']));
  t.ok(third.bytes_added < 6 << 20, `one inserted byte added ${third.bytes_added} bytes (< 6 MiB of 16 MiB)`);
  t.ok(third.blobs_added <= 4, `${third.blobs_added} new blobs`);

  // the same data from another path (another machine) dedups too
  const other = tempDir(t);
  writeFileSync(path.join(other, 'copy.bin'), big);
  const fourth = json(run('tsbak-write', [repo, other, '--json', '--host', 'other-machine']));
  t.ok(fourth.bytes_added < 64 << 10, `cross-snapshot dedup: ${fourth.bytes_added} bytes added (new trees only)`);
});

t.test('tamper detection: check reports a flipped byte; restore fails that file only', async (t) => {
  const src = tempDir(t);
  writeFileSync(path.join(src, 'victim.bin'), randomBytes(3 << 20));
  writeFileSync(path.join(src, 'bystander.txt'), 'safe and sound\n');
  const repo = newRepo(t);
  run('tsbak-write', [repo, src]);
  // the largest data pack member holds victim.bin's chunks
  const packs: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else packs.push(p);
    }
  };
  walk(path.join(repo, 'packs/data'));
  t.equal(packs.length, 1);
  const buf = readFileSync(packs[0]!);
  buf[2048] ^= 0x01; // inside the first large member's data
  await fsp.chmod(packs[0]!, 0o644);
  writeFileSync(packs[0]!, buf);

  const c = run('tsbak', ['check', repo, '--read-data']);
  t.equal(c.code, 14, 'check exits 14 on damage');
  t.match(c.stdout, /damaged/);

  const target = tempDir(t);
  const r = run('tsbak', ['restore', repo, 'latest', '--target', target]);
  t.equal(r.code, 3, 'partial restore');
  t.match(r.stderr, /victim\.bin.*damaged/);
  t.notMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
  t.equal(readFileSync(path.join(target, src, 'bystander.txt'), 'utf8'), 'safe and sound\n');
  t.notOk(existsSync(path.join(target, src, 'victim.bin')), 'no half-written file is left');
});

t.test('write-only key: can back up (with dedup) but not read', async (t) => {
  const src = tempDir(t);
  writeFileSync(path.join(src, 'a.bin'), randomBytes(2 << 20));
  const repo = newRepo(t);
  run('tsbak-write', [repo, src]);
  const key = path.join(tempDir(t), 'laptop.key');
  const add = run('tsbak', ['key', 'add-writer', repo, '--name', 'laptop', '--out', key]);
  t.equal(add.code, 0, add.stderr);
  t.equal(statSync(key).mode & 0o777, 0o600, 'key file is 0600');
  const cache = tempDir(t);
  const env = { TSBAK_PASSWORD: '', TSBAK_CACHE_DIR: cache };
  const w = run('tsbak-write', ['--key-file', key, repo, src, '--json'], env);
  t.equal(w.code, 0, w.stderr);
  // Dedup trusts the master's index entries only where the writer can verify the master's
  // signature (its key file carries the master's public signing key); otherwise it stores
  // its own copy once (docs/THREAT-MODEL.md, "Dedup and other keys").
  if (readFileSync(key, 'utf8').includes('masterSignPub')) t.ok(json(w).bytes_added < 4096, 'the writer dedups against data it cannot read');
  else t.ok(json(w).bytes_added >= 2 << 20, 'a writer that cannot verify the master stores its own copy');
  const again = run('tsbak-write', ['--key-file', key, repo, src, '--json', '--no-cache', '--force'], env);
  t.ok(json(again).bytes_added < 4096, 'the writer dedups against its own data');
  const w2 = run('tsbak-write', ['--key-file', key, repo, src, '--json'], env);
  t.equal(json(w2).bytes_read, 0, 'its local cache lets it skip unchanged files');
  const w3 = run('tsbak-write', ['--key-file', key, repo, src, '--json', '--no-cache'], env);
  t.equal(w3.code, 0, 'without the cache it still works');

  for (const args of [['snapshots', repo], ['ls', repo, 'latest'], ['restore', repo, 'latest', '--target', tempDir(t)], ['check', repo]]) {
    const r = run('tsbak', [...args, '--key-file', key], env);
    t.equal(r.code, 12, `${args[0]} with a write-only key exits 12`);
    t.match(r.stderr, /write-only key/);
  }
  // the full key reads what the writer wrote, and verifies its signature
  const s = run('tsbak', ['snapshots', repo, '--json']);
  t.equal(JSON.parse(s.stdout).length, 5);
  t.equal(run('tsbak', ['check', repo, '--read-data']).code, 0);
});

t.test('interrupted backup leaves the repository clean and the next backup works', async (t) => {
  const src = tempDir(t);
  for (let i = 0; i < 8; i++) writeFileSync(path.join(src, `f${i}.bin`), randomBytes(8 << 20));
  const repo = newRepo(t);
  // Killed right after its second change to the repository: its lock, then its first pack.
  const killed = spawnSync(BIN('tsbak-write'), [repo, src], { env: testEnv({ TSBAK_CRASH_AT: '2:after' }) });
  t.equal(killed.signal, 'SIGKILL', 'killed');
  t.notOk(existsSync(path.join(repo, 'snapshots')) && readdirSync(path.join(repo, 'snapshots')).length > 0, 'no snapshot was written');
  t.ok(listFiles(path.join(repo, 'packs/data')).length > 0, 'but some packs were');
  // Unindexed packs of the killed run are not reused (prune removes them): counted below.
  const killedRunBytes = listFiles(path.join(repo, 'packs')).reduce((n, f) => n + statSync(path.join(repo, 'packs', f)).size, 0);
  const c = run('tsbak', ['check', repo]);
  t.equal(c.code, 0, c.stdout);
  const w = run('tsbak-write', [repo, src, '--json']);
  t.equal(w.code, 0, w.stderr);
  const r = tempDir(t);
  t.equal(run('tsbak', ['restore', repo, 'latest', '--target', r]).code, 0);
  for (let i = 0; i < 8; i++) t.equal(sha(path.join(r, src, `f${i}.bin`)), sha(path.join(src, `f${i}.bin`)));
  const c2 = run('tsbak', ['check', repo, '--read-data']);
  t.equal(c2.code, 0, c2.stdout + c2.stderr);
  // The killed writer's unfinished pack file stays (until a writer a day later sweeps it):
  // not an object, not counted.
  const objects = listFiles(repo).filter((f) => !path.basename(f).startsWith('.tmp-'));
  const bytes = (list: string[]) => list.reduce((n, f) => n + statSync(path.join(repo, f)).size, 0);
  const size = bytes(objects);
  // Parity 10+2 is a local repository's default: the rerun's packs make one short group,
  // whose 2 parity objects are each as long as its longest pack (~16 MiB).
  const parity = bytes(objects.filter((f) => f.startsWith(path.join('packs', 'parity') + path.sep)));
  t.ok(parity > 0 && parity < 2 * (21 << 20), `parity objects hold ${parity} bytes`);
  t.ok(size - parity < killedRunBytes + (70 << 20), `repository holds ${size - parity} bytes besides parity for 64 MiB of data (${killedRunBytes} from the killed run)`);
});

const asRoot = { skip: process.getuid?.() === 0 ? false : 'needs root: mounts a small tmpfs' };
t.test('a full disk: one clear line, exit 1, earlier snapshots intact, no leftovers', asRoot, async (t) => {
  const disk = tempDir(t);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', disk], { encoding: 'utf8' });
  t.equal(m.status, 0, `mount a small tmpfs: ${m.stderr}`);
  t.teardown(() => void spawnSync('umount', [disk]));
  const repo = path.join(disk, 'repo');
  t.equal(run('tsbak', ['init', repo]).code, 0);
  const src = tempDir(t);
  writeFileSync(path.join(src, 'small.txt'), 'fits\n');
  const first = run('tsbak-write', [repo, src, '--json', '--no-cache']);
  t.equal(first.code, 0, first.stderr);
  writeFileSync(path.join(src, 'big.bin'), randomBytes(24 << 20));
  const full = run('tsbak-write', [repo, src, '--no-cache']);
  t.equal(full.code, 1, 'exit 1');
  const lines = full.stderr.trim().split('\n');
  t.equal(lines.length, 1, `one line: ${full.stderr}`);
  t.match(lines[0], /ENOSPC \(disk full: free space and run the backup again\)/);
  t.same(readdirSync(repo).filter((n) => n.startsWith('.tmp-')), [], 'no unfinished pack left');
  const snaps = JSON.parse(run('tsbak', ['snapshots', repo, '--json', '--no-cache']).stdout);
  t.equal(snaps.length, 1, 'the earlier snapshot is still the only one');
  t.equal(run('tsbak', ['check', repo, '--read-data', '--no-cache']).code, 0, 'check passes');
  const out = tempDir(t);
  t.equal(run('tsbak', ['restore', repo, 'latest', '--target', out, '--no-cache']).code, 0);
  t.equal(readFileSync(path.join(out, src, 'small.txt'), 'utf8'), 'fits\n');
});

t.test('a restore onto a full disk: a line per file that does not fit, saying what to do; the rest restored', asRoot, async (t) => {
  const src = tempDir(t);
  writeFileSync(path.join(src, 'random.bin'), randomBytes(5 << 20)); // stored raw: decrypted in place and written
  writeFileSync(path.join(src, 'text.txt'), 'compressible text, '.repeat(250000)); // stored zstd
  writeFileSync(path.join(src, 'small.txt'), 'fits\n');
  const repo = newRepo(t);
  t.equal(run('tsbak-write', [repo, src]).code, 0);
  const disk = tempDir(t);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', disk], { encoding: 'utf8' });
  t.equal(m.status, 0, `mount a small tmpfs: ${m.stderr}`);
  t.teardown(() => void spawnSync('umount', [disk]));
  const r = run('tsbak', ['restore', repo, 'latest', '--target', disk]);
  t.equal(r.code, 3, 'partial restore');
  const lines = r.stderr.trim().split('\n');
  const full = /ENOSPC: no space left on device, (write|open|close)[^(]* \(the target is full: free space and run the restore again\)$/;
  t.ok(lines.every((l) => full.test(l)), `every line says ENOSPC and what to do: ${r.stderr}`);
  for (const name of ['random.bin', 'text.txt']) {
    t.ok(lines.some((l) => l.includes(name)), `${name} does not fit`);
    t.notOk(existsSync(path.join(disk, src, name)), `${name}: no half-written file is left`);
  }
  // The small file fits, unless the large ones' partial writes held the space just then.
  if (existsSync(path.join(disk, src, 'small.txt'))) {
    t.equal(readFileSync(path.join(disk, src, 'small.txt'), 'utf8'), 'fits\n', 'the file that fits is restored');
    t.match(r.stdout, /1 file, .*, 5 B, 2 errors/, 'the summary counts the whole files only');
  } else t.match(r.stdout, /0 files, .*, 0 B, 3 errors/, 'the summary counts the whole files only');
});

t.test('bad input: one-line errors and documented exit codes', async (t) => {
  const repo = newRepo(t);
  const wrong = run('tsbak', ['snapshots', repo], { TSBAK_PASSWORD: 'wrong' });
  t.equal(wrong.code, 11);
  t.match(wrong.stderr, /wrong passphrase/);
  t.equal(wrong.stderr.trim().split('\n').length, 1, 'one line');

  const notRepo = run('tsbak', ['snapshots', tempDir(t)]);
  t.equal(notRepo.code, 10);
  t.match(notRepo.stderr, /not a tsbak repository/);

  const again = run('tsbak', ['init', repo]);
  t.equal(again.code, 2);
  t.match(again.stderr, /already/);

  const missing = run('tsbak-write', [repo, '/nonexistent/path']);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /no such file/);

  const noSnap = run('tsbak', ['restore', repo, 'deadbeef', '--target', tempDir(t)]);
  t.equal(noSnap.code, 16);
  t.match(noSnap.stderr, /no snapshot with id deadbeef/);
});

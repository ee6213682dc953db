// A writer key cannot poison other keys' backups, and one damaged object costs only what it
// holds (issue 16, docs/THREAT-MODEL.md): the attacker works through the public API a writer
// key holder has (Repository opened with its key file, saveBlob with a known id); the victims
// through the real programs.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { openBackend } from '../src/backend/open.js';
import { decodeIndex, encodeIndex, encodeIndexV1, INDEX_SIG_PREFIX, openIndex, sealIndex, sealIndexV1 } from '../src/format/index-file.js';
import { verifyBytes } from '../src/crypto/sign.js';
import { sha256 } from '../src/crypto/hash.js';
import { INDEX, packName } from '../src/repo/layout.js';
import { Repository } from '../src/repo/repository.js';
import { lastJson, newRepo, run } from './lib/cli.js';
import { listFiles, sha256File } from './lib/files.js';
import { tempDir } from './lib/temp.js';
import { cleanupMount, mountBg, mountPoint } from './lib/fuse-helpers.js';

const json = (r: { stdout: string }): any => lastJson(r.stdout);

/** Adds a write-only key; returns its file and id. */
function addWriter(t: Test, repo: string, name: string): { file: string; keyId: string } {
  const file = path.join(tempDir(t), `${name}.key`);
  const r = run('tsbak', ['key', 'add-writer', repo, '--name', name, '--out', file]);
  if (r.code !== 0) throw new Error(`key add-writer exited ${r.code}: ${r.stderr}`);
  return { file, keyId: JSON.parse(readFileSync(file, 'utf8')).keyId };
}

function openAs(repo: string, keyFile?: string): Promise<Repository> {
  return openBackend(repo).then((b) =>
    keyFile ? Repository.open(b, { keyFile: { path: keyFile, content: JSON.parse(readFileSync(keyFile, 'utf8')) } }) : Repository.open(b, { password: 'correct horse' }),
  );
}

/** Every file of `a` is in `b` with the same bytes. */
function sameFiles(t: Test, a: string, b: string, what: string): void {
  const files = listFiles(a);
  t.ok(files.length > 0, `${what}: there are files to compare`);
  t.same(
    files.map((f) => sha256File(path.join(b, f))),
    files.map((f) => sha256File(path.join(a, f))),
    `${what}: every file restored byte for byte`,
  );
}

function indexFiles(repo: string): string[] {
  return readdirSync(path.join(repo, 'index')).sort();
}

/** Files a backup of `src` gives blobs to: one small (a restore batch), one of several chunks. */
function sourceTree(t: Test): string {
  const src = tempDir(t);
  writeFileSync(path.join(src, 'small.txt'), randomBytes(20_000));
  writeFileSync(path.join(src, 'large.bin'), randomBytes(3 << 20));
  mkdirSync(path.join(src, 'sub'));
  writeFileSync(path.join(src, 'sub', 'note'), 'hello\n');
  return src;
}

t.test('a writer stores garbage under the ids of files others back up: their backups store their own copies', async (t) => {
  const repo = newRepo(t);
  const src = sourceTree(t);
  const a = addWriter(t, repo, 'attacker');
  const b = addWriter(t, repo, 'victim');
  const writerEnv = { TSBAK_PASSWORD: '', TSBAK_CACHE_DIR: tempDir(t) };

  // The attacker knows the victim's small file and stores garbage of its length under its id.
  const attacker = await openAs(repo, a.file);
  await attacker.loadIndex();
  const small = readFileSync(path.join(src, 'small.txt'));
  const note = readFileSync(path.join(src, 'sub', 'note'));
  const poisoned = [attacker.blobId(small), attacker.blobId(note)];
  for (const [id, len] of [[poisoned[0]!, small.length], [poisoned[1]!, note.length]] as const) t.ok((await attacker.saveBlob('data', randomBytes(len), id)).added, 'the attacker stores its copy');
  await attacker.flush();
  await attacker.closeWriter();

  // The victim (a writer key) and the master back the same files up afterwards.
  const wb = run('tsbak-write', ['--key-file', b.file, repo, src, '--json'], writerEnv);
  t.equal(wb.code, 0, wb.stderr);
  const wm = run('tsbak-write', [repo, src, '--json']);
  t.equal(wm.code, 0, wm.stderr);

  const full = await openAs(repo);
  await full.loadIndex();
  for (const id of poisoned) {
    const signers = full.locations(id).map((l) => l.pack.signer);
    t.ok(signers.includes(b.keyId) && signers.includes('master') && signers.includes(a.keyId), 'the victim and the master each stored a copy next to the garbage');
    t.ok(full.locations(id).every((l) => l.pack.verified), 'every copy is signed by a registered key');
  }

  for (const snap of [json(wb).snapshot_id, json(wm).snapshot_id]) {
    const dest = tempDir(t);
    const r = run('tsbak', ['restore', repo, snap, '--target', dest]);
    t.equal(r.code, 0, r.stderr);
    t.notMatch(r.stderr, /damaged/, 'the copies tried first are the snapshot signer’s own');
    sameFiles(t, src, path.join(dest, src), `snapshot ${snap.slice(0, 8)}`);
  }

  const check = run('tsbak', ['check', repo, '--read-data']);
  t.equal(check.code, 14, 'check --read-data reports the garbage as damage');
  for (const id of poisoned) {
    const line = check.stdout.split('\n').find((l) => l.includes(`blob ${id.toString('hex').slice(0, 16)}`)) ?? '';
    t.match(line, new RegExp(`signed by key ${a.keyId}\\).*is damaged.*another copy is good`), 'it names the attacker’s copy, and says a good one exists');
  }
  t.equal(check.stdout.split('\n').filter((l) => l.startsWith('error:')).length, poisoned.length, 'and nothing else');

  // A writer that opts into trusting other writers (the behaviour before index signatures)
  // dedups against every key's entries, the garbage included.
  const c = addWriter(t, repo, 'trusting');
  const trusting = run('tsbak-write', ['--key-file', c.file, repo, src, '--json', '--trust-writers'], { ...writerEnv, TSBAK_CACHE_DIR: tempDir(t) });
  t.equal(trusting.code, 0, trusting.stderr);
  // (Trees above the source may differ: /tmp changes as other tests run.)
  t.ok(json(trusting).bytes_added < 8192, `--trust-writers stores no file data again (${json(trusting).bytes_added} bytes of trees)`);
});

t.test('a damaged index file is skipped with a warning; check reports it', async (t) => {
  const repo = newRepo(t);
  const one = sourceTree(t);
  const two = sourceTree(t);
  const w1 = run('tsbak-write', [repo, one, '--json']);
  t.equal(w1.code, 0, w1.stderr);
  const before = indexFiles(repo);
  const w2 = run('tsbak-write', [repo, two, '--json']);
  t.equal(w2.code, 0, w2.stderr);
  const added = indexFiles(repo).filter((n) => !before.includes(n));
  t.equal(added.length, 1, 'the second backup wrote one index file');
  const victim = path.join(repo, 'index', added[0]!);
  const bytes = readFileSync(victim);
  bytes[bytes.length >> 1]! ^= 0x40;
  writeFileSync(victim, bytes);

  const dest = tempDir(t);
  const r = run('tsbak', ['restore', repo, json(w1).snapshot_id, '--target', dest]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, new RegExp(`warning: index file index/${added[0]} is damaged.*tsbak check`), 'a one-line warning names it and what to do');
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  sameFiles(t, one, path.join(dest, one), 'the snapshot that does not need it');

  const ls = run('tsbak', ['ls', repo, json(w1).snapshot_id]);
  t.equal(ls.code, 0, ls.stderr);
  t.match(ls.stdout, /small\.txt/);

  // The mount serves the snapshot that does not need it.
  const mnt = mountPoint(t, path.join(tempDir(t), 'mnt'));
  const m = mountBg(repo, mnt, ['ro']);
  t.equal(m.code, 0, m.stderr);
  const viaMount = path.join(mnt, 'ids', json(w1).snapshot_id.slice(0, 8), one);
  t.same(readFileSync(path.join(viaMount, 'large.bin')), readFileSync(path.join(one, 'large.bin')), 'the mount reads it');
  t.same(readdirSync(viaMount).sort(), readdirSync(one).sort(), 'and lists it');
  await cleanupMount(mnt);

  const lsTwo = run('tsbak', ['ls', repo, json(w2).snapshot_id]);
  t.equal(lsTwo.code, 14, 'the snapshot whose trees only it listed is damaged (14)');

  const again = run('tsbak-write', [repo, two, '--json', '--force']);
  t.equal(again.code, 0, again.stderr);
  t.ok(json(again).blobs_added >= 4, 'a backup stores again the blobs it cannot see');
  const dest2 = tempDir(t);
  const r2 = run('tsbak', ['restore', repo, json(again).snapshot_id, '--target', dest2]);
  t.equal(r2.code, 0, r2.stderr);
  sameFiles(t, two, path.join(dest2, two), 'the new snapshot of that data');
  const old = run('tsbak', ['restore', repo, json(w2).snapshot_id, '--target', tempDir(t)]);
  t.equal(old.code, 14, 'a snapshot whose trees only the damaged index listed is damaged (14)');

  const check = run('tsbak', ['check', repo]);
  t.equal(check.code, 14, 'check reports the damaged index file');
  t.match(check.stdout, new RegExp(`error: index file index/${added[0]} is damaged`));
  t.notMatch(check.stderr, /warning/, 'check reports it once, as an error');
});

t.test('a deleted tree pack is damage (14), not "not found"', async (t) => {
  const repo = newRepo(t);
  const src = sourceTree(t);
  const w = run('tsbak-write', [repo, src, '--json']);
  t.equal(w.code, 0, w.stderr);
  const trees = listFiles(path.join(repo, 'packs', 'tree'));
  t.ok(trees.length > 0);
  for (const f of trees) rmSync(path.join(repo, 'packs', 'tree', f));
  for (const args of [['ls', repo, 'latest'], ['restore', repo, 'latest', '--target', tempDir(t)]]) {
    const r = run('tsbak', args);
    t.equal(r.code, 14, `${args[0]} exits 14`);
    t.match(r.stderr, /pack packs\/tree\/.* is missing .*although the index lists it/, 'and says which pack');
  }
  const named = run('tsbak', ['restore', repo, 'deadbeef', '--target', tempDir(t)]);
  t.equal(named.code, 16, 'a snapshot the user named that does not exist stays 16');
});

t.test('a blob in two packs, the first damaged: restore reads the second', async (t) => {
  const repo = newRepo(t);
  const src = sourceTree(t);
  // Two writers back up the same tree: neither counts on the other's entries, so each
  // blob is stored twice (the master's entries would be trusted, and so not stored again).
  const a = addWriter(t, repo, 'first');
  const b = addWriter(t, repo, 'second');
  const backup = (k: { file: string }) => run('tsbak-write', ['--key-file', k.file, repo, src, '--json', '--no-cache'], { TSBAK_PASSWORD: '', TSBAK_CACHE_DIR: tempDir(t) });
  const wa = backup(a);
  t.equal(wa.code, 0, wa.stderr);
  const wb = backup(b);
  t.equal(wb.code, 0, wb.stderr);

  // Damage every blob of the first writer's data packs, the copies a restore of its snapshot reads first.
  const full = await openAs(repo);
  await full.loadIndex();
  full.preferSigner(a.keyId);
  let damaged = 0;
  for (const e of full.index.entries()) {
    if (e.pack.kind !== 'data' || e.pack.signer !== a.keyId) continue;
    t.ok(full.locations(e.id).length >= 2, 'the blob has a second copy');
    t.equal(full.locate(e.id)!.pack.signer, a.keyId, 'the snapshot signer’s copy is tried first');
    const file = path.join(repo, packName('data', e.pack.id.toString('hex')));
    const bytes = readFileSync(file);
    bytes[e.offset + (e.length >> 1)]! ^= 1;
    writeFileSync(file, bytes);
    damaged++;
  }
  t.ok(damaged >= 4, `${damaged} copies damaged`);

  const dest = tempDir(t);
  const r = run('tsbak', ['restore', repo, json(wa).snapshot_id, '--target', dest]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, new RegExp(`warning: blob [0-9a-f]{16}: pack packs/data/.*signed by key ${a.keyId}\\) damaged, read the copy in pack .*signed by key ${b.keyId}`), 'each fallback is told');
  sameFiles(t, src, path.join(dest, src), 'restore through the second copies');

  const check = run('tsbak', ['check', repo, '--read-data']);
  t.equal(check.code, 14);
  const named = check.stdout.split('\n').filter((l) => new RegExp(`the copy in pack .*signed by key ${a.keyId}\\) is damaged .*another copy is good`).test(l));
  t.equal(named.length, damaged, 'check --read-data names every bad copy and says another is good');
});

t.test('unsigned (v1) index files: read as before, not counted on by dedup unless trusted', async (t) => {
  const repo = newRepo(t);
  const src = sourceTree(t);
  const w = run('tsbak-write', [repo, src, '--json']);
  t.equal(w.code, 0, w.stderr);
  // Rewrite every index file as an older version wrote it.
  const full = await openAs(repo);
  for (const name of indexFiles(repo)) {
    const file = openIndex(full.secrets.indexKey, readFileSync(path.join(repo, 'index', name)));
    t.equal(file.version, 2, 'this version writes v2');
    t.equal(file.signer, 'master');
    const v1 = sealIndexV1(full.secrets.indexKey, file.packs);
    writeFileSync(path.join(repo, INDEX, sha256(v1).toString('hex')), v1);
    rmSync(path.join(repo, 'index', name));
  }
  const dest = tempDir(t);
  const r = run('tsbak', ['restore', repo, 'latest', '--target', dest]);
  t.equal(r.code, 0, r.stderr);
  sameFiles(t, src, path.join(dest, src), 'a repository of v1 index files');
  t.equal(run('tsbak', ['check', repo, '--read-data']).code, 0, 'and checks clean');

  const trusted = run('tsbak-write', [repo, src, '--json', '--force', '--no-cache'], { TSBAK_TRUST_WRITERS: '1' });
  t.ok(json(trusted).bytes_added < 8192, `TSBAK_TRUST_WRITERS=1 dedups file data against v1 entries (${json(trusted).bytes_added} bytes of trees added)`);
  const again = run('tsbak-write', [repo, src, '--json', '--force', '--no-cache']);
  t.equal(again.code, 0, again.stderr);
  t.ok(json(again).bytes_added > 3 << 20, 'by default a backup stores its own signed copy once');
  const third = run('tsbak-write', [repo, src, '--json', '--force', '--no-cache']);
  t.ok(json(third).bytes_added < 8192, 'and dedups against it from then on');
});

t.test('an index file that claims the master signed it is not trusted, and check says so', async (t) => {
  const repo = newRepo(t);
  const src = sourceTree(t);
  const a = addWriter(t, repo, 'forger');
  const attacker = await openAs(repo, a.file);
  await attacker.loadIndex();
  const small = readFileSync(path.join(src, 'small.txt'));
  await attacker.saveBlob('data', randomBytes(small.length), attacker.blobId(small));
  await attacker.flush();
  await attacker.closeWriter();
  // Its own index file, signed again with its own key but naming the master as signer.
  const [own] = indexFiles(repo);
  const file = openIndex(attacker.secrets.indexKey, readFileSync(path.join(repo, 'index', own!)));
  t.equal(file.signer, a.keyId, 'a writer signs its index files as itself');
  const forged = sealIndex(attacker.secrets.indexKey, file.packs, { keyId: 'master', pair: { publicKey: attacker.secrets.signPub, privateKey: attacker.secrets.signPriv } });
  const forgedName = sha256(forged).toString('hex');
  writeFileSync(path.join(repo, 'index', forgedName), forged);
  rmSync(path.join(repo, 'index', own!));

  const w = run('tsbak-write', [repo, src, '--json']);
  t.equal(w.code, 0, w.stderr);
  const dest = tempDir(t);
  const r = run('tsbak', ['restore', repo, 'latest', '--target', dest]);
  t.equal(r.code, 0, r.stderr);
  sameFiles(t, src, path.join(dest, src), 'the master stored its own copy');
  const check = run('tsbak', ['check', repo]);
  t.equal(check.code, 14);
  t.match(check.stdout, new RegExp(`error: index file index/${forgedName} is damaged \\(its signature by key master does not verify\\)`));
});

t.test('index file codec: both versions round-trip; bad lengths are refused', async (t) => {
  const pair = { publicKey: Buffer.alloc(0), privateKey: Buffer.alloc(0) };
  const { newEd25519 } = await import('../src/crypto/sign.js');
  Object.assign(pair, newEd25519());
  const packs = [{ id: randomBytes(32), kind: 'tree' as const, sealedKey: randomBytes(80), blobs: [{ id: randomBytes(32), offset: 512, length: 100, rawLength: 90 }] }];
  const v2 = decodeIndex(encodeIndex(packs, { keyId: 'master', pair }));
  t.same([v2.version, v2.signer, v2.packs], [2, 'master', packs]);
  t.ok(verifyBytes(pair.publicKey, Buffer.concat([INDEX_SIG_PREFIX, v2.signed!]), v2.sig!), 'the signature covers the bytes before it');
  const v1 = decodeIndex(encodeIndexV1(packs));
  t.same([v1.version, v1.signer, v1.packs], [1, null, packs]);
  const bytes = encodeIndexV1(packs);
  t.throws(() => decodeIndex(bytes.subarray(0, bytes.length - 1)), /truncated/);
  t.throws(() => decodeIndex(Buffer.concat([bytes, Buffer.alloc(1)])), /trailing/);
  const huge = Buffer.from(bytes);
  huge.writeUInt32BE(0xffffffff, 5 + 4 + 35 + 80);
  t.throws(() => decodeIndex(huge), /truncated/, 'a blob count larger than the bytes');
  const kind = Buffer.from(bytes);
  kind[5 + 4 + 32] = 7;
  t.throws(() => decodeIndex(kind), /kind/);
});

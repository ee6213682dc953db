// Issue 16: config, keys, KDF and signers against someone who can write to the bucket, or
// who holds a writer key. Each case alters the repository as that attacker could (or damages
// a key file as a disk could), then runs the real programs.
import t, { type Test } from 'tap';
import { existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { LocalBackend } from '../src/backend/local.js';
import { decodeConfig, ConfigError } from '../src/format/config.js';
import { sealSnapshot, type SnapshotInfo } from '../src/format/snapshot.js';
import { secretsFromJson } from '../src/format/keyfile.js';
import { wrapFullKey } from '../src/repo/keys.js';
import { Repository } from '../src/repo/repository.js';
import { sha256 } from '../src/crypto/hash.js';
import { SnapshotFs, SIGNER_XATTR } from '../src/fuse/fs.js';
import { spawnSync } from 'node:child_process';
import { BIN, lastJson, newRepo, run, testEnv, type RunResult } from './lib/cli.js';
import { tempDir } from './lib/temp.js';

// A safety net only: every case is expected to end in a second or two, not to hang.
const SAFETY_MS = 120_000;

/** run(), killed after SAFETY_MS: for cases that used to hang (a chunker of zeros, scrypt with N=2^30). */
function runBounded(bin: string, args: string[], env: Record<string, string> = {}): RunResult {
  const r = spawnSync(BIN(bin), args, { env: testEnv(env), encoding: 'utf8', timeout: SAFETY_MS, killSignal: 'SIGKILL' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr + (r.signal ? `\n(killed by ${r.signal} after ${SAFETY_MS} ms)` : '') };
}

function readJson(f: string): any {
  return JSON.parse(readFileSync(f, 'utf8'));
}

function writeJson(f: string, o: unknown): void {
  writeFileSync(f, JSON.stringify(o, null, 2));
}

/** The one full key object of a new repository. */
function fullKeyFile(repo: string): string {
  const names = readdirSync(path.join(repo, 'keys')).filter((n) => readJson(path.join(repo, 'keys', n)).kind === 'full');
  if (names.length !== 1) throw new Error(`expected one full key, found ${names.length}`);
  return path.join(repo, 'keys', names[0]!);
}

/** A repository with a source tree, one master snapshot, and a writer key file (laptop). */
function setup(t: Test) {
  const repo = newRepo(t);
  const src = tempDir(t);
  writeFileSync(path.join(src, 'a.txt'), 'hello\n');
  const w = run('tsbak-write', [repo, src]);
  if (w.code !== 0) throw new Error(w.stderr);
  const key = path.join(tempDir(t), 'laptop.key');
  const add = run('tsbak', ['key', 'add-writer', repo, '--name', 'laptop', '--out', key]);
  if (add.code !== 0) throw new Error(add.stderr);
  // The writer has its own cache (a backup machine), and no passphrase.
  const wenv = { TSBAK_PASSWORD: '', TSBAK_CACHE_DIR: tempDir(t) };
  return { repo, src, key, wenv };
}

function snapshotCount(repo: string): number {
  return existsSync(path.join(repo, 'snapshots')) ? readdirSync(path.join(repo, 'snapshots')).length : 0;
}

t.test('config: every value range-checked on decode, naming the field', async (t) => {
  const good = {
    version: 2,
    id: '0123456789abcdef0123456789abcdef',
    created: '2026-12-03T00:00:00.000Z',
    chunker: { min: 262144, avg: 1048576, max: 4194304 },
    compression: { alg: 'zstd', level: 3 },
    packSize: { data: 16777216, tree: 4194304 },
    storageClass: { data: 'STANDARD', tree: 'STANDARD', other: 'STANDARD' },
    signPub: Buffer.alloc(32, 1).toString('base64'),
    keyCheck: Buffer.alloc(32, 2).toString('base64'),
    sig: Buffer.alloc(64, 3).toString('base64'),
  };
  t.ok(decodeConfig(Buffer.from(JSON.stringify(good))).signature, 'a good version 2 config decodes, with its signature');
  const cases: Array<[string, (c: any) => void, RegExp]> = [
    ['chunker of zeros', (c) => (c.chunker = { min: 0, avg: 0, max: 0 }), /chunker\.avg/],
    ['avg not a power of two', (c) => (c.chunker.avg = 1000000), /chunker\.avg/],
    ['min above avg', (c) => (c.chunker.min = 2 << 20), /chunker\.min/],
    ['max below avg', (c) => (c.chunker.max = 1024), /chunker\.max/],
    ['huge max', (c) => (c.chunker.max = 2 ** 40), /chunker\.max/],
    ['fractional min', (c) => (c.chunker.min = 1000.5), /chunker\.min/],
    ['level 99', (c) => (c.compression.level = 99), /compression\.level/],
    ['unknown compression', (c) => (c.compression.alg = 'lz4'), /compression\.alg/],
    ['tiny data packs', (c) => (c.packSize.data = 1), /packSize\.data/],
    ['huge tree packs', (c) => (c.packSize.tree = 2 ** 33), /packSize\.tree/],
    ['unknown storage class', (c) => (c.storageClass.tree = 'FROZEN'), /storageClass\.tree/],
    ['id not hex', (c) => (c.id = '../../etc'), /^id/],
    ['version 4', (c) => (c.version = 4), /version/],
    ['version 3 without an index class', (c) => (c.version = 3), /storageClass\.index/],
    ['signature of the wrong length', (c) => (c.sig = 'AAAA'), /sig/],
    ['no chunker', (c) => delete c.chunker, /chunker/],
  ];
  for (const [what, change, field] of cases) {
    const c = structuredClone(good);
    change(c);
    let err: unknown = null;
    try {
      decodeConfig(Buffer.from(JSON.stringify(c)));
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof ConfigError, `${what}: refused`);
    t.match((err as Error)?.message, field, `${what}: names the field`);
  }
});

t.test('config altered in the bucket: the writer and the full key refuse it (14), quickly', async (t) => {
  const { repo, src, key, wenv } = setup(t);
  const cfgFile = path.join(repo, 'config');
  const original = readFileSync(cfgFile);
  const before = snapshotCount(repo);

  // Chunker of zeros: used to hang tsbak-write forever.
  const zeros = readJson(cfgFile);
  zeros.chunker = { min: 0, avg: 0, max: 0 };
  writeJson(cfgFile, zeros);
  const w = runBounded('tsbak-write', ['--key-file', key, repo, src], wenv);
  t.equal(w.code, 14, `exit 14, no hang: ${w.stderr}`);
  t.match(w.stderr, /config is damaged \(chunker\.avg/);
  t.equal(w.stderr.trim().split('\n').length, 1, 'one line');
  t.equal(runBounded('tsbak-write', [repo, src]).code, 14, 'the full key refuses it too');

  // Data moved to Deep Archive: in range, but not what the master signed.
  const deep = JSON.parse(original.toString());
  deep.storageClass.data = 'DEEP_ARCHIVE';
  writeJson(cfgFile, deep);
  const w2 = run('tsbak-write', ['--key-file', key, repo, src], wenv);
  t.equal(w2.code, 14, w2.stderr);
  t.match(w2.stderr, /config is damaged \(its signature does not verify/);
  const s = run('tsbak', ['snapshots', repo]);
  t.equal(s.code, 14, s.stderr);
  t.match(s.stderr, /signature does not verify/);

  // Fixed-size chunks, signed by another master key (a bucket writer's own): refused too.
  const other = newRepo(t);
  writeFileSync(cfgFile, readFileSync(path.join(other, 'config')));
  const full = run('tsbak', ['snapshots', repo]);
  t.equal(full.code, 14, 'the full key sees a config of another repository');
  t.match(full.stderr, /config is damaged \(its id [0-9a-f]{32} is not [0-9a-f]{32}/);
  const wo = run('tsbak-write', ['--key-file', key, repo, src], wenv);
  t.equal(wo.code, 2, 'a writer is told its key file is not for this repository');
  t.match(wo.stderr, /belongs to repository/);

  t.equal(snapshotCount(repo), before, 'no snapshot was written');
  writeFileSync(cfgFile, original);
  t.equal(run('tsbak-write', ['--key-file', key, repo, src], wenv).code, 0, 'the original config works');
});

t.test('config id changed (the signature kept): the full key says config was replaced', async (t) => {
  const { repo } = setup(t);
  const cfgFile = path.join(repo, 'config');
  const c = readJson(cfgFile);
  c.id = 'ffffffffffffffffffffffffffffffff';
  writeJson(cfgFile, c);
  const r = run('tsbak', ['snapshots', repo]);
  t.equal(r.code, 14, r.stderr);
  t.match(r.stderr, /config is damaged \(its id ffff/);
});

t.test('KDF parameters out of bounds: refused as damage (14) at once, not hours of scrypt', async (t) => {
  const repo = newRepo(t);
  const kf = fullKeyFile(repo);
  const original = readJson(kf);
  for (const [what, kdf] of [
    ['N=2^30', { ...original.kdf, N: 2 ** 30 }],
    ['r=2^20', { ...original.kdf, r: 2 ** 20 }],
    ['p=2^20', { ...original.kdf, p: 2 ** 20 }],
    ['N not a power of two', { ...original.kdf, N: 5000 }],
    ['salt of 3 bytes', { ...original.kdf, salt: 'AAAA' }],
    ['unknown KDF', { ...original.kdf, alg: 'pbkdf2' }],
  ] as const) {
    writeJson(kf, { ...original, kdf });
    const r = runBounded('tsbak', ['snapshots', repo]);
    t.equal(r.code, 14, `${what}: exit 14, at once (${r.stderr.trim()})`);
    t.match(r.stderr, new RegExp(`keys/${path.basename(kf)} is damaged`), `${what}: names the key object`);
  }
  writeJson(kf, original);
  t.equal(run('tsbak', ['snapshots', repo]).code, 0, 'the original key object opens');

  // A passphrase-protected writer key file with huge parameters: damaged too.
  const key = path.join(tempDir(t), 'p.key');
  const add = run('tsbak', ['key', 'add-writer', repo, '--name', 'p', '--out', key]);
  t.equal(add.code, 0, add.stderr);
  const file = readJson(key);
  // Made plain; give it the form of a protected one with absurd parameters.
  writeJson(key, { ...file, secrets: undefined, kdf: { ...original.kdf, N: 2 ** 30 }, wrapped: 'AAAA' });
  const w = runBounded('tsbak-write', ['--key-file', key, repo, tempDir(t)], { TSBAK_PASSWORD: 'x' });
  t.equal(w.code, 14, w.stderr);
  t.match(w.stderr, /key file .* is damaged \(scrypt N=/);
});

t.test('a damaged key object is reported as damaged (14), not as a wrong passphrase (11)', async (t) => {
  const repo = newRepo(t);
  const kf = fullKeyFile(repo);
  const original = readFileSync(kf);
  const obj = JSON.parse(original.toString());
  const cases: Array<[string, string]> = [
    ['malformed JSON', original.toString().slice(0, 40)],
    ['wrapped not base64', JSON.stringify({ ...obj, wrapped: '%%%' + obj.wrapped })],
    ['wrapped cut short', JSON.stringify({ ...obj, wrapped: 'AAAA' })],
    ['no kdf', JSON.stringify({ ...obj, kdf: undefined })],
    ['unknown kind', JSON.stringify({ ...obj, kind: 'fulll' })],
  ];
  for (const [what, bytes] of cases) {
    writeFileSync(kf, bytes);
    const r = run('tsbak', ['snapshots', repo]);
    t.equal(r.code, 14, `${what}: exit 14 (${r.stderr.trim()})`);
    t.match(r.stderr, /no key in .* opens with this passphrase, and keys\/[0-9a-f]+ is damaged/, `${what}: says which object is damaged`);
  }
  writeFileSync(kf, original);
  const wrong = run('tsbak', ['snapshots', repo], { TSBAK_PASSWORD: 'wrong' });
  t.equal(wrong.code, 11, 'an intact key and a wrong passphrase: 11');

  // Secrets that open but do not match the signed config (macKey changed, wrapped again with the passphrase).
  const backend = new LocalBackend(repo);
  const r = await Repository.open(backend, { password: testEnv().TSBAK_PASSWORD! });
  const altered = { ...(r.secrets as any), macKey: Buffer.alloc(32, 7) };
  writeFileSync(kf, JSON.stringify(wrapFullKey(altered, testEnv().TSBAK_PASSWORD!)));
  const m = run('tsbak', ['snapshots', repo]);
  t.equal(m.code, 14, m.stderr);
  t.match(m.stderr, /is damaged \(its secrets do not match config\.keyCheck\)/);
});

/** Flips one bit of a base64 secret in a plain key file. */
function flipSecret(file: string, field: string): void {
  const o = readJson(file);
  const b = Buffer.from(o.secrets[field], 'base64');
  b[5]! ^= 0x10;
  o.secrets[field] = b.toString('base64');
  writeJson(file, o);
}

t.test('a writer key file with a flipped bit is refused at open: nothing unrestorable is stored', async (t) => {
  const { repo, src, key, wenv } = setup(t);
  const original = readFileSync(key);
  const before = snapshotCount(repo);
  for (const field of ['signPriv', 'signPub', 'macKey', 'chunkerSeed', 'indexKey', 'repoPub']) {
    writeFileSync(key, original);
    flipSecret(key, field);
    const w = run('tsbak-write', ['--key-file', key, repo, src], wenv);
    t.equal(w.code, 14, `${field}: exit 14 (${w.stderr.trim()})`);
    t.match(w.stderr, /key file .*laptop\.key is damaged/, `${field}: says the key file is damaged`);
  }
  const o = JSON.parse(original.toString());
  o.secrets.macKey = o.secrets.macKey.slice(0, 20);
  writeJson(key, o);
  const cut = run('tsbak-write', ['--key-file', key, repo, src], wenv);
  t.equal(cut.code, 14, 'a secret of the wrong length');
  t.match(cut.stderr, /key file .* is damaged \(macKey/);
  t.equal(snapshotCount(repo), before, 'no snapshot was written');
  writeFileSync(key, original);
  t.equal(run('tsbak-write', ['--key-file', key, repo, src], wenv).code, 0, 'the intact key file backs up');

  // Its registration altered in the bucket (another signing key put in): refused.
  const regFile = path.join(repo, 'keys', readJson(key).keyId);
  const reg = readJson(regFile);
  writeJson(regFile, { ...reg, name: 'evil' });
  const bad = run('tsbak-write', ['--key-file', key, repo, src], wenv);
  t.equal(bad.code, 14, bad.stderr);
  t.match(bad.stderr, /registration of key file .* is damaged \(not signed by the master key\)/);
});

t.test('snapshots, ls and the mount show who signed each snapshot', async (t) => {
  const { repo, src, key, wenv } = setup(t);
  const w = run('tsbak-write', ['--key-file', key, repo, src, '--json'], wenv);
  t.equal(w.code, 0, w.stderr);
  const keyId = readJson(key).keyId as string;
  const list = JSON.parse(run('tsbak', ['snapshots', repo, '--json']).stdout);
  t.same(
    list.map((s: any) => s.signer),
    [
      { id: 'master', name: 'master' },
      { id: keyId, name: 'laptop' },
    ],
  );
  t.same(list.map((s: any) => s.future), [false, false]);
  const table = run('tsbak', ['snapshots', repo]).stdout;
  t.match(table, /Signer/);
  t.match(table, new RegExp(`laptop \\(${keyId.slice(0, 8)}\\)`));
  t.match(table, /master/);

  const ls = run('tsbak', ['ls', repo, 'latest', '--json']);
  t.equal(ls.code, 0, ls.stderr);
  const header = JSON.parse(ls.stdout).snapshot;
  t.same(header.signer, { id: keyId, name: 'laptop' }, 'ls --json: the document names the snapshot and its signer');
  t.equal(header.id, lastJson(w.stdout).snapshot_id, "latest is the writer's snapshot");
  t.match(run('tsbak', ['ls', repo, 'latest']).stderr, /signed by laptop/);

  // The mount: user.tsbak.signer on each snapshot directory.
  const r = await Repository.open(new LocalBackend(repo), { password: testEnv().TSBAK_PASSWORD! });
  const fs = new SnapshotFs(r);
  await fs.refresh();
  const latest = await fs.readlink('/snapshots/latest');
  t.same(JSON.parse((await fs.getxattr(`/snapshots/${latest}`, SIGNER_XATTR))!.toString()), { id: keyId, name: 'laptop' });
  t.same(await fs.listxattr(`/snapshots/${latest}`), [SIGNER_XATTR]);
});

/** Stores a snapshot as a writer key holder can: any info, signed with the key file's secrets. */
async function forgeSnapshot(repo: string, keyFile: string, info: SnapshotInfo): Promise<string> {
  const s = secretsFromJson(readJson(keyFile).secrets);
  const bytes = sealSnapshot(info, s.repoPub, s.keyId, { publicKey: s.signPub, privateKey: s.signPriv });
  const id = sha256(bytes).toString('hex');
  await new LocalBackend(repo).put(`snapshots/${id}`, bytes);
  return id;
}

async function masterSnapshots(repo: string) {
  const r = await Repository.open(new LocalBackend(repo), { password: testEnv().TSBAK_PASSWORD! });
  return r.listSnapshots(() => {});
}

t.test('a snapshot dated in the future is flagged and is not latest unless named', async (t) => {
  const { repo, key } = setup(t);
  const [honest] = await masterSnapshots(repo);
  const future = await forgeSnapshot(repo, key, { ...honest!.info, time: '9999-01-01T00:00:00.000Z', host: 'victim' });
  const list = JSON.parse(run('tsbak', ['snapshots', repo, '--json']).stdout);
  t.same(
    list.map((s: any) => [s.id, s.future]),
    [
      [honest!.id, false],
      [future, true],
    ],
  );
  t.match(run('tsbak', ['snapshots', repo]).stdout, /9999-01-01 00:00:00 UTC \(future!\)/);
  const ls = run('tsbak', ['ls', repo, 'latest', '--json']);
  t.equal(ls.code, 0, ls.stderr);
  t.equal(JSON.parse(ls.stdout).snapshot.id, honest!.id, 'latest is the honest snapshot');
  t.match(ls.stderr, new RegExp(`snapshot ${future.slice(0, 8)} is dated 9999.*not taken as latest \\(name its id to use it\\)`));
  const named = run('tsbak', ['ls', repo, future.slice(0, 12), '--json']);
  t.equal(JSON.parse(named.stdout).snapshot.id, future, 'named explicitly, it is used');
  const onlyFuture = run('tsbak', ['ls', repo, 'latest', '--host', 'victim']);
  t.equal(onlyFuture.code, 16, 'no snapshot of that host is eligible as latest');

  // A backup's parent is never the future-dated snapshot either.
  const src = honest!.info.paths[0]!;
  const w = run('tsbak-write', [repo, src, '--host', 'victim', '--json']);
  t.equal(w.code, 0, w.stderr);
  t.equal(lastJson(w.stdout).parent, null, 'no parent: the only snapshot of host victim is dated 9999');
  // The mount's latest link skips it too.
  const r = await Repository.open(new LocalBackend(repo), { password: testEnv().TSBAK_PASSWORD! });
  const fs = new SnapshotFs(r);
  await fs.refresh();
  t.notMatch(await fs.readlink('/snapshots/latest'), /^9999/, 'the mount: latest is not the 9999 snapshot');
});

t.test('--host, --path and --signer limit latest', async (t) => {
  const { repo, src, key, wenv } = setup(t);
  const other = tempDir(t);
  writeFileSync(path.join(other, 'b.txt'), 'other\n');
  const ids: Record<string, string> = {};
  const save = (name: string, bin: string, args: string[], env: Record<string, string> = {}) => {
    const r = run(bin, [...args, '--json'], env);
    if (r.code !== 0) throw new Error(r.stderr);
    ids[name] = lastJson(r.stdout).snapshot_id;
  };
  save('hostA', 'tsbak-write', [repo, src, '--host', 'a']);
  save('writerOther', 'tsbak-write', ['--key-file', key, repo, other, '--host', 'b'], wenv);
  save('masterOther', 'tsbak-write', [repo, other, '--host', 'b']);
  const latest = (...extra: string[]) => {
    const r = run('tsbak', ['ls', repo, 'latest', '--json', ...extra]);
    return r.code === 0 ? JSON.parse(r.stdout).snapshot.id : `exit ${r.code}`;
  };
  t.equal(latest(), ids.masterOther);
  t.equal(latest('--host', 'a'), ids.hostA);
  t.equal(latest('--path', src), ids.hostA);
  t.equal(latest('--signer', 'laptop'), ids.writerOther, 'by name');
  t.equal(latest('--signer', readJson(key).keyId.slice(0, 6)), ids.writerOther, 'by id prefix');
  t.equal(latest('--signer', 'master', '--path', other), ids.masterOther);
  t.equal(latest('--host', 'nobody'), 'exit 16');
  const snaps = JSON.parse(run('tsbak', ['snapshots', repo, '--json', '--signer', 'laptop']).stdout);
  t.same(snaps.map((s: any) => s.id), [ids.writerOther], 'snapshots --signer');
  const restore = run('tsbak', ['restore', repo, 'latest', '--host', 'a', '--target', tempDir(t), '--json']);
  t.equal(lastJson(restore.stdout).snapshot, ids.hostA, 'restore latest --host');
  // A backup's parent: the latest of the same host and paths, limited to a signer with --signer.
  const parentOf = (...extra: string[]) => lastJson(run('tsbak-write', [repo, other, '--host', 'b', '--json', ...extra]).stdout).parent;
  t.equal(parentOf('--signer', 'laptop'), ids.writerOther, "the parent among the writer's snapshots");
  t.equal(parentOf('--signer', 'nobody'), null, 'no snapshot of that signer: no parent');
});

t.test('a revoked key: its later snapshots are refused, its earlier ones kept', async (t) => {
  const { repo, src, key, wenv } = setup(t);
  const w = run('tsbak-write', ['--key-file', key, repo, src, '--json'], wenv);
  t.equal(w.code, 0, w.stderr);
  const before = lastJson(w.stdout).snapshot_id;
  const keyId = readJson(key).keyId as string;

  const rm = run('tsbak', ['key', 'remove', repo, 'laptop']);
  t.equal(rm.code, 0, rm.stderr);
  t.match(rm.stdout, new RegExp(`revoked write-only key ${keyId} \\(laptop\\); its 1 snapshot made so far stays trusted`));
  const rev = readJson(path.join(repo, 'keys', `revoked-${keyId}`));
  t.same(rev.snapshots, [before]);
  t.equal(run('tsbak', ['key', 'remove', repo, keyId]).code, 2, 'revoking twice is refused');
  t.match(run('tsbak', ['key', 'list', repo]).stdout, /write-only, revoked/);

  const again = run('tsbak-write', ['--key-file', key, repo, src], wenv);
  t.equal(again.code, 11, 'the revoked key cannot back up');
  t.match(again.stderr, /was revoked on .*: it can no longer add snapshots/);

  // The key holder stores a snapshot anyway (dated now, the same host and paths).
  const [, kept] = await masterSnapshots(repo);
  const late = await forgeSnapshot(repo, key, { ...kept!.info, time: new Date().toISOString() });
  const s = run('tsbak', ['snapshots', repo, '--json']);
  t.equal(s.code, 14, 'the listing reports the refused snapshot');
  t.match(s.stderr, new RegExp(`snapshot ${late.slice(0, 8)}.*signed by key laptop \\(${keyId}\\), revoked on`));
  const listed = JSON.parse(s.stdout).map((x: any) => x.id);
  t.ok(listed.includes(before), 'its snapshot made before the revocation is listed');
  t.notOk(listed.includes(late), 'the later one is not');
  const ls = run('tsbak', ['ls', repo, 'latest', '--json']);
  t.equal(ls.code, 0, ls.stderr);
  t.not(JSON.parse(ls.stdout).snapshot.id, late, 'not latest');
  t.match(ls.stderr, /is not considered: .*revoked/);
  t.equal(run('tsbak', ['ls', repo, late]).code, 14, 'named, it is refused as damage');
  t.equal(run('tsbak', ['ls', repo, before]).code, 0, 'the kept one still reads');
  const check = run('tsbak', ['check', repo]);
  t.equal(check.code, 14, 'check reports it');
  t.match(check.stdout, new RegExp(`error: snapshot ${late.slice(0, 8)}.*revoked`));
});

t.test('a repository made before configs were signed: opens with a warning, sign-config signs it, the pin catches a removed signature', async (t) => {
  const { repo, src, key, wenv } = setup(t);
  // Make it as older tsbak did: a version 1 config without a signature, a key file without masterSignPub.
  const cfgFile = path.join(repo, 'config');
  const c = readJson(cfgFile);
  delete c.signPub;
  delete c.keyCheck;
  delete c.sig;
  writeJson(cfgFile, { ...c, version: 1 });
  const kf = readJson(key);
  delete kf.secrets.masterSignPub;
  writeJson(key, kf);
  const fresh = { TSBAK_CACHE_DIR: tempDir(t) };

  const s = run('tsbak', ['snapshots', repo], fresh);
  t.equal(s.code, 0, s.stderr);
  t.match(s.stderr, /config is not signed .* run 'tsbak key sign-config'/);
  const w = run('tsbak-write', ['--key-file', key, repo, src], wenv);
  t.equal(w.code, 0, w.stderr);
  t.match(w.stderr, /warning: .*config is not signed/);

  const sign = run('tsbak', ['key', 'sign-config', repo], fresh);
  t.equal(sign.code, 0, sign.stderr);
  t.ok(existsSync(path.join(repo, 'config.sig')), 'config.sig written');
  t.match(run('tsbak', ['key', 'sign-config', repo], fresh).stdout, /signed already/);
  const w2 = run('tsbak-write', ['--key-file', key, repo, src], wenv);
  t.equal(w2.code, 0, w2.stderr);
  t.equal(w2.stderr, '', 'no warning once signed');
  t.ok(existsSync(path.join(wenv.TSBAK_CACHE_DIR, c.id, 'trust.json')), "the writer pinned the master's key");

  // config.sig altered, then removed: refused by the writer that pinned it, and by the full key here.
  const sig = readFileSync(path.join(repo, 'config.sig'));
  const altered = readJson(path.join(repo, 'config.sig'));
  altered.keyCheck = Buffer.alloc(32).toString('base64');
  writeJson(path.join(repo, 'config.sig'), altered);
  t.equal(run('tsbak-write', ['--key-file', key, repo, src], wenv).code, 14, 'altered config.sig: 14');
  unlinkSync(path.join(repo, 'config.sig'));
  const gone = run('tsbak-write', ['--key-file', key, repo, src], wenv);
  t.equal(gone.code, 14, gone.stderr);
  t.match(gone.stderr, /no signature, but this repository's config was signed before/);
  t.equal(run('tsbak', ['snapshots', repo], fresh).code, 14, 'the full key on a machine that saw it signed: 14');
  writeFileSync(path.join(repo, 'config.sig'), sig);
  t.equal(run('tsbak-write', ['--key-file', key, repo, src], wenv).code, 0);
});

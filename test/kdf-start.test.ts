// The passphrase KDF: scrypt's lanes in parallel in C give node:crypto's bytes (RFC 7914's
// vector and random parameters), and a derivation started early is the one taken later.
import t from 'tap';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, scryptSync } from 'node:crypto';
import { scryptLanes, scryptSimd } from '../src/platform/native/scrypt.js';
import { deriveKeyAsync, startDeriveKey, useScrypt, type KdfParams } from '../src/crypto/kdf.js';
import { startKdfFor } from '../src/cli/kdf-prefetch.js';

t.test('scryptLanes is scrypt', async (t) => {
  const v = await scryptLanes('password', Buffer.from('NaCl'), 1024, 8, 16, 64);
  t.equal(
    v.toString('hex'),
    'fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640',
    'RFC 7914 section 12, third vector',
  );
  for (const [N, r, p] of [[1024, 8, 1], [1024, 8, 2], [2048, 1, 3], [4096, 4, 5], [1 << 15, 8, 4]]) {
    const salt = randomBytes(16);
    const pw = `pässwörd ${N}`;
    t.same(await scryptLanes(pw, salt, N, r, p, 32), scryptSync(pw, salt, 32, { N, r, p, maxmem: 1 << 30 }), `N=${N} r=${r} p=${p}`);
  }
});

t.test('each SIMD kind of SMix this CPU has is scrypt', async (t) => {
  const kinds = ['scalar', 'sse2', 'avx2', 'avx512'] as const;
  const best = scryptSimd();
  const saved = process.env.TSBAK_SCRYPT_SIMD;
  t.teardown(() => {
    if (saved === undefined) delete process.env.TSBAK_SCRYPT_SIMD;
    else process.env.TSBAK_SCRYPT_SIMD = saved;
  });
  if (process.arch === 'x64') t.not(best, 'scalar', 'x86-64 has at least SSE2');
  for (const kind of kinds.slice(0, kinds.indexOf(best) + 1)) {
    process.env.TSBAK_SCRYPT_SIMD = kind;
    t.equal(scryptSimd(), kind, `${kind} chosen when named`);
    const v = await scryptLanes('password', Buffer.from('NaCl'), 1024, 8, 16, 64);
    t.equal(v.toString('hex').slice(0, 16), 'fdbabe1c9d347200', `${kind}: RFC 7914's third vector`);
    // p odd (a lane left over after the pairs), r = 1, N = 2 (one step per loop), the key's own parameters.
    for (const [N, r, p] of [[2, 1, 1], [16, 3, 3], [1024, 8, 2], [2048, 1, 5], [4096, 4, 4], [1 << 15, 8, 4]]) {
      const salt = randomBytes(16);
      const pw = `${kind} ${N} ${r} ${p}`;
      t.same(await scryptLanes(pw, salt, N, r, p, 48), scryptSync(pw, salt, 48, { N, r, p, maxmem: 1 << 30 }), `${kind}: N=${N} r=${r} p=${p}`);
    }
  }
  process.env.TSBAK_SCRYPT_SIMD = 'none of these';
  t.equal(scryptSimd(), best, 'an unknown name: the best');
});

t.test('deriveKeyAsync with the lanes in parallel, and started early', async (t) => {
  const params: KdfParams = { alg: 'scrypt', N: 1 << 12, r: 8, p: 3, salt: randomBytes(16).toString('base64') };
  const want = scryptSync('pw', Buffer.from(params.salt, 'base64'), 32, { N: params.N, r: params.r, p: params.p });
  t.same(await deriveKeyAsync('pw', params), want, 'node:crypto');
  useScrypt(scryptLanes);
  t.teardown(() => useScrypt(null));
  t.same(await deriveKeyAsync('pw', params), want, 'lanes in C');
  let calls = 0;
  useScrypt(async (...a) => (calls++, scryptLanes(...a)));
  startDeriveKey('pw', params);
  t.equal(calls, 1, 'started at once');
  t.same(await deriveKeyAsync('pw', params), want, 'the started one');
  t.equal(calls, 1, 'taken, not derived again');
  t.same(await deriveKeyAsync('pw', params), want);
  t.equal(calls, 2, 'taken once');
  startDeriveKey('other', params);
  t.same(await deriveKeyAsync('pw', params), want, 'another passphrase started is not taken');
  t.equal(calls, 4);
  startDeriveKey('pw', { ...params, N: 3 });
  t.equal(calls, 4, 'parameters out of bounds start nothing');
});

t.test('startKdfFor starts the key of a local repository with one passphrase', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsbak-kdf-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const repo = join(dir, 'repo');
  mkdirSync(join(repo, 'keys'), { recursive: true });
  writeFileSync(join(repo, 'config'), 'x');
  const params: KdfParams = { alg: 'scrypt', N: 1 << 10, r: 8, p: 2, salt: randomBytes(16).toString('base64') };
  writeFileSync(join(repo, 'keys', 'a'), JSON.stringify({ kind: 'full', kdf: params }));
  writeFileSync(join(repo, 'keys', 'w'), JSON.stringify({ kind: 'writer' }));
  const pwFile = join(dir, 'pw');
  writeFileSync(pwFile, 'secret\n');
  const seen: string[] = [];
  const count = () => useScrypt(async (pw, ...a) => (seen.push(pw), scryptLanes(pw, ...a)));
  t.teardown(() => useScrypt(null));
  const env = process.env.TSBAK_PASSWORD;
  delete process.env.TSBAK_PASSWORD;
  t.teardown(() => (env === undefined ? delete process.env.TSBAK_PASSWORD : (process.env.TSBAK_PASSWORD = env)));

  count();
  startKdfFor(['--password-file', pwFile, repo, '/some/path']);
  t.same(seen, ['secret'], 'started with the file passphrase, its newline dropped');
  await deriveKeyAsync('secret', params);
  t.same(seen, ['secret'], 'and taken');

  seen.length = 0;
  startKdfFor([repo]);
  t.same(seen, [], 'no passphrase given: nothing');
  startKdfFor(['--key-file', pwFile, '--password-file', pwFile, repo]);
  t.same(seen, [], '--key-file: nothing');
  startKdfFor(['--password-file', pwFile, 's3://bucket/x', dir]);
  t.same(seen, [], 'not a repository: nothing');
  writeFileSync(join(repo, 'keys', 'b'), JSON.stringify({ kind: 'full', kdf: params }));
  startKdfFor(['--password-file', pwFile, repo]);
  t.same(seen, [], 'two passphrase keys: nothing');
});

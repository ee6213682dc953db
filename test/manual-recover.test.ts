// docs/FORMAT.md "Recovering by hand", followed literally by scripts/manual-recover.mjs with
// node's own crypto, tar and zstd, on a repository whose index/ is gone: the files come
// back byte for byte. The script must not lean on tsbak's code.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { lastJson, newRepo, ROOT, run, testEnv } from './lib/cli.js';
import { sha256File } from './lib/files.js';
import { tempDir } from './lib/temp.js';

const SCRIPT = path.join(ROOT, 'scripts', 'manual-recover.mjs');

t.test('the script imports nothing but node built-ins', async (t) => {
  const text = readFileSync(SCRIPT, 'utf8');
  const imports = [...text.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
  t.ok(imports.length > 0, 'it has imports');
  t.same(
    imports.filter((m) => !m!.startsWith('node:')),
    [],
    'only node: modules',
  );
  t.notMatch(text, /import\(/, 'no dynamic import');
});

t.test('openssl enc cannot open AES-GCM (why the procedure uses node)', { skip: spawnSync('openssl', ['version']).status !== 0 && 'no openssl' }, async (t) => {
  const r = spawnSync('openssl', ['enc', '-d', '-aes-256-gcm', '-K', '00'.repeat(32), '-iv', '00'.repeat(12)], { input: Buffer.alloc(64) });
  t.not(r.status, 0, 'refused');
  t.match(r.stderr.toString(), /AEAD|not supported/i, r.stderr.toString().trim());
});

t.test('a file recovered by hand from packs, key object and snapshot', async (t) => {
  const repo = newRepo(t);
  const src = tempDir(t);
  mkdirSync(path.join(src, 'a', 'b'), { recursive: true });
  writeFileSync(path.join(src, 'a', 'b', 'large.bin'), randomBytes(5 << 20)); // several chunks
  writeFileSync(path.join(src, 'a', 'small.txt'), 'a small file\n'.repeat(50));
  writeFileSync(path.join(src, 'random.bin'), randomBytes(30_000)); // stored raw (incompressible)
  // Sparse: data, a hole, data.
  const fd = openSync(path.join(src, 'sparse'), 'w');
  writeSync(fd, randomBytes(70_000), 0, 70_000, 0);
  writeSync(fd, randomBytes(10_000), 0, 10_000, 8 << 20);
  closeSync(fd);
  const b = run('tsbak', ['backup', repo, src, '--json']);
  t.equal(b.code, 0, b.stderr);
  t.ok(lastJson(b.stdout).snapshot_id);
  rmSync(path.join(repo, 'index'), { recursive: true }); // not needed: the packs describe themselves

  const out = tempDir(t);
  for (const rel of ['a/b/large.bin', 'a/small.txt', 'random.bin', 'sparse']) {
    const dest = path.join(out, rel.replace(/\//g, '_'));
    const r = spawnSync(process.execPath, [SCRIPT, repo, path.join(src, rel), dest], { env: testEnv(), encoding: 'utf8' });
    t.equal(r.status, 0, `${rel}: ${r.stderr}`);
    t.match(r.stderr, /step 1: key object keys\/[0-9a-f]+ opened/, `${rel}: the steps ran`);
    t.equal(sha256File(dest), sha256File(path.join(src, rel)), `${rel}: the same bytes`);
  }

  const wrong = spawnSync(process.execPath, [SCRIPT, repo, path.join(src, 'random.bin'), path.join(out, 'x')], { env: testEnv({ TSBAK_PASSWORD: 'not it' }), encoding: 'utf8' });
  t.not(wrong.status, 0, 'another passphrase opens nothing');
  t.match(wrong.stderr, /no key object/);
});

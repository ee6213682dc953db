// A backup killed before the parity of its last packs is written (TSBAK_CRASH_AT, right
// after its tenth data pack, or after its first index file, with checkpoints every 1.5 MB): its checkpoints listed only packs whose parity group is
// written, so every indexed pack has parity; the rerun stores the rest again, with parity.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { openBackend } from '../src/backend/open.js';
import { decodeParityHeader, PARITY_PREFIX } from '../src/format/parity.js';
import { Repository } from '../src/repo/repository.js';
import { BIN, lastJson, run, testEnv } from './lib/cli.js';
import { listFiles, sha256File } from './lib/files.js';
import { tempDir } from './lib/temp.js';

/** Stored and indexed packs (kind/id hex) and those some parity group covers. */
async function coverage(repoDir: string): Promise<{ stored: Set<string>; indexed: Set<string>; covered: Set<string> }> {
  const repo = await Repository.open(await openBackend(repoDir), { password: 'correct horse' });
  await repo.loadIndex();
  const indexed = new Set(repo.index.packs.map((p) => `${p.kind}/${p.id.toString('hex')}`));
  const covered = new Set<string>();
  const stored = new Set<string>();
  for (const kind of ['data', 'tree']) {
    const kd = path.join(repoDir, 'packs', kind);
    if (!existsSync(kd)) continue;
    for (const sub of readdirSync(kd)) for (const f of readdirSync(path.join(kd, sub))) if (/^[0-9a-f]{64}$/.test(f)) stored.add(`${kind}/${f}`);
  }
  const dir = path.join(repoDir, 'packs', 'parity');
  if (existsSync(dir)) for (const sub of readdirSync(dir)) for (const f of readdirSync(path.join(dir, sub))) {
    if (!/^[0-9a-f]{64}$/.test(f)) continue; // a temporary file the kill left
    const { header } = decodeParityHeader(repo.secrets.indexKey, readFileSync(path.join(dir, sub, f)).subarray(0, PARITY_PREFIX));
    for (const m of header.members) covered.add(`${m.kind}/${m.id.toString('hex')}`);
  }
  return { stored, indexed, covered };
}

for (const crashAt of ['packs/data/#10:after', 'index/#1:after', 'packs/parity/#2'])
t.test(`a backup killed (${crashAt}): every indexed pack has parity, the rerun stores the rest with parity`, async (t) => {
  const src = tempDir(t);
  // 28 files of 600 kB: 13-14 data packs of 1 MiB, so that the tenth is always reached (20 files
  // gave 9 packs in one run of 12).
  for (let i = 0; i < 28; i++) writeFileSync(path.join(src, `f${i}`), randomBytes(600_000));
  const repo = path.join(tempDir(t), 'repo');
  t.equal(run('tsbak', ['init', repo, '--pack-size', '1', '--parity', '4+1']).code, 0);
  const env = { TSBAK_CHECKPOINT_BYTES: String(1_500_000) };
  const killed = spawnSync(BIN('tsbak-write'), [repo, src], { env: testEnv({ ...env, TSBAK_CRASH_AT: crashAt }) });
  t.equal(killed.signal, 'SIGKILL', `killed at ${crashAt} (exit ${killed.status}: ${String(killed.stderr).trim().slice(0, 300)})`);
  const before = await coverage(repo);
  // The first index file waits for a whole group's parity: a group of 4 packs at least.
  if (crashAt.startsWith('index/')) t.ok(before.indexed.size >= 4, `${before.indexed.size} packs listed by its first checkpoint`);
  t.same([...before.indexed].filter((p) => !before.covered.has(p)), [], 'every pack a checkpoint listed has parity');
  const unlisted = [...before.stored].filter((p) => !before.indexed.has(p));
  // Killed after its tenth data pack, the third group (packs 9 and 10) is still open.
  if (crashAt.startsWith('packs/')) t.ok(unlisted.length >= 2, `${unlisted.length} stored packs of groups not written are not listed`);

  run('tsbak', ['unlock', repo]);
  const r = run('tsbak-write', [repo, src, '--json'], env);
  t.equal(r.code, 0, r.stderr);
  const after = await coverage(repo);
  t.ok(after.indexed.size >= before.indexed.size, `the rerun completed the backup (${after.indexed.size - before.indexed.size} more packs listed)`);
  t.same([...after.indexed].filter((p) => !after.covered.has(p)), [], 'every indexed pack is in a parity group');

  // The parity works: a pack of the rerun and one of the killed backup are lost, and rebuilt.
  const victims = [[...after.indexed].find((p) => p.startsWith('data/') && !before.indexed.has(p)), [...before.indexed].find((p) => p.startsWith('data/'))].filter((v): v is string => !!v);
  t.ok(victims.length > 0, `${victims.length} packs lost`);
  for (const v of victims) {
    const [kind, id] = v.split('/');
    rmSync(path.join(repo, 'packs', kind!, id!.slice(0, 2), id!));
  }
  const fix = run('tsbak', ['repair', 'packs', repo, '--json']);
  t.equal(fix.code, 0, fix.stderr);
  t.same(lastJson(fix.stdout).packs.map((p: any) => p.state), victims.map(() => 'rebuilt'));
  const target = tempDir(t);
  t.equal(run('tsbak', ['restore', repo, 'latest', '-t', target]).code, 0);
  const files = listFiles(src);
  t.same(files.map((f) => sha256File(path.join(target, src, f))), files.map((f) => sha256File(path.join(src, f))), 'restores identical');
});

// End to end, with the real executables, on a real S3 server process with Glacier
// semantics (scripts/s3-dev-server.mjs: s3rver + our proxy; time scaled): a repository
// whose data packs are in DEEP_ARCHIVE; snapshots and ls with no restore; restore
// --no-wait (exit 15, each pack requested once, resumed); restore once the restores are
// complete, with identical bytes; a second restore from the local cache; warm (idempotent,
// --wait); expiry; cost. The server's clock is manual: restores complete, and restored
// copies expire, only when the test says so, never while a command runs by chance.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { lastJson, run, start, type RunResult } from './lib/cli.js';
import { listFiles, sha256File as sha } from './lib/files.js';
import { devServerEnv, shiftedClockEnv, withDevServer, type DevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

// With the manual clock restores complete by completeRestores(), never by a delay; restored
// copies expire when the test advances the clock (and the programs' clocks) past a day.
const DAY_MS = 6 * 3_600_000;

const server: DevServer = await withDevServer(t, { dayMs: DAY_MS, buckets: ['cold'], manualClock: true });

const cache = tempDir(t, 'tsbak-cold-cache-');
// Moved forward with the server's clock (shiftedClockEnv) once the test advances it.
let env = devServerEnv(server, { TSBAK_CACHE_DIR: cache });
const REPO = 's3://cold/home';
const tsbak = (...args: string[]) => run('tsbak', args, env);

/**
 * Runs tsbak; once its stderr matches `waiting` (it is waiting for restores), calls `then`
 * (which completes them). Resolves when it exits, with whether `then` ran before the exit.
 */
function runWaiting(args: string[], runEnv: Record<string, string>, waiting: RegExp, then: () => Promise<unknown>): Promise<RunResult & { thenRan: boolean }> {
  const child = start('tsbak', args, runEnv);
  let stdout = '';
  let stderr = '';
  let thenRan = false;
  let thenDone: Promise<unknown> = Promise.resolve();
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    if (!thenRan && waiting.test(stderr)) {
      thenRan = true;
      thenDone = then();
    }
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      thenDone.then(() => resolve({ code: code ?? -1, stdout, stderr, thenRan }), reject);
    });
  });
}

function sameTree(t: Test, a: string, b: string): void {
  const fa = listFiles(a);
  t.same(listFiles(b), fa, 'same files');
  for (const f of fa) if (sha(path.join(a, f)) !== sha(path.join(b, f))) t.fail(`${f} differs`);
}
const json = lastJson;
const stats = () => server.stats();
const resetStats = () => server.resetStats();

const src = tempDir(t, 'tsbak-cold-src-');
mkdirSync(path.join(src, 'docs/deep'), { recursive: true });
mkdirSync(path.join(src, 'photos'), { recursive: true });
writeFileSync(path.join(src, 'photos/a.raw'), randomBytes(3 << 20));
writeFileSync(path.join(src, 'photos/b.raw'), randomBytes(2 << 20));
writeFileSync(path.join(src, 'docs/deep/notes.txt'), 'cold notes\n'.repeat(1000));
writeFileSync(path.join(src, 'docs/empty'), '');
for (let i = 0; i < 20; i++) writeFileSync(path.join(src, `docs/small-${i}.txt`), `small ${i}\n`.repeat(i + 1));
const dataBytes = (3 << 20) + (2 << 20);

let snap = '';
let dataPacks = 0;

t.test('backup to an s3:// repository with data packs in DEEP_ARCHIVE', async (t) => {
  // The endpoint as an option here, from AWS_ENDPOINT_URL_S3 everywhere else.
  const init = run('tsbak', ['init', REPO, '--data-class', 'DEEP_ARCHIVE', '--pack-size', '1', '--s3-endpoint', server.url, '--s3-path-style'], env);
  t.equal(init.code, 0, init.stderr);
  const w = run('tsbak-write', [REPO, src, '--json'], env);
  t.equal(w.code, 0, w.stderr);
  snap = json(w.stdout).snapshot_id;
  const cost = tsbak('cost', REPO, '--json');
  t.equal(cost.code, 0, cost.stderr);
  const c = json(cost.stdout);
  const data = c.objects.find((o: any) => o.kind === 'data');
  t.equal(data.storage_class, 'DEEP_ARCHIVE');
  dataPacks = data.objects;
  t.ok(dataPacks >= 2, `${dataPacks} data packs`);
  for (const o of c.objects.filter((o: any) => o.kind !== 'data')) t.equal(o.storage_class, 'STANDARD', `${o.kind} stays STANDARD`);
  t.ok(c.monthly_usd > 0);
  t.equal(c.restore.packs, dataPacks);
  t.same(c.restore.tiers.map((x: any) => x.tier), ['Standard', 'Bulk'], 'Deep Archive: no Expedited');
  const human = tsbak('cost', REPO);
  t.match(human.stdout, /data packs\s+DEEP_ARCHIVE/);
  t.match(human.stdout, /Bulk\s+24h-48h/);
});

t.test('snapshots and ls need no restore', async (t) => {
  await resetStats();
  const s = tsbak('snapshots', REPO);
  t.equal(s.code, 0, s.stderr);
  t.match(s.stdout, snap.slice(0, 8));
  const ls = tsbak('ls', REPO, snap, '--long');
  t.equal(ls.code, 0, ls.stderr);
  t.match(ls.stdout, /photos\/a\.raw/);
  t.match(ls.stdout, /docs\/deep\/notes\.txt/);
  const st = await stats();
  t.equal(st.requests.RestoreObject ?? 0, 0, 'no RestoreObject');
  t.same(st.restores, {}, 'no restore started');
  t.same(st.errors, {}, 'no request failed (no GET of a cold object)');
});

const out1 = tempDir(t, 'tsbak-cold-out1-');

t.test('restore --no-wait: requests each needed pack once, exits 15, resumes', async (t) => {
  await resetStats();
  const r1 = tsbak('restore', REPO, snap, '--target', out1, '--no-wait');
  t.equal(r1.code, 15, 'EXIT.COLD_PENDING');
  t.match(r1.stderr, /restores requested, run again later \(expected by \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)/);
  t.match(r1.stderr, /in DEEP_ARCHIVE: \d+ cold/);
  t.match(r1.stderr, /to restore: \d+ objects, .* tier Standard/);
  let st = await stats();
  t.equal(st.requests.RestoreObject, dataPacks, 'one RestoreObject per data pack');
  t.equal(st.restores.Standard, dataPacks, 'tier Standard by default');
  t.equal(readdirSync(out1).length, 0, 'nothing restored yet');

  const r2 = tsbak('restore', REPO, snap, '--target', out1, '--no-wait');
  t.equal(r2.code, 15);
  t.match(r2.stderr, /\d+ being restored/);
  st = await stats();
  t.equal(st.requests.RestoreObject, dataPacks, 'run again: no new restore requests');

  // The journal is in the cache directory.
  const repoDir = readdirSync(cache).find((d) => statSync(path.join(cache, d, 'restores.jsonl'), { throwIfNoEntry: false }));
  t.ok(repoDir, 'journal exists');
  const lines = readFileSync(path.join(cache, repoDir!, 'restores.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.equal(new Set(lines.map((l) => l.pack)).size, dataPacks);
  t.ok(lines.every((l) => (l.phase === 'requested' || l.phase === 'in-progress') && l.tier === 'Standard' && l.expectedBy));
});

t.test('once the restores complete, restore succeeds with identical bytes', async (t) => {
  t.equal(await server.completeRestores(), dataPacks, 'every data pack was being restored');
  await resetStats();
  const r = tsbak('restore', REPO, snap, '--target', out1, '--no-wait');
  t.equal(r.code, 0, r.stderr);
  sameTree(t, src, path.join(out1, src));
  const st = await stats();
  t.equal(st.requests.RestoreObject ?? 0, 0, 'no restore requested');
  t.ok(st.bytesOut >= dataBytes, 'data came from S3');
});

t.test('a second restore reads data packs from the local cache', async (t) => {
  const out2 = tempDir(t, 'tsbak-cold-out2-');
  await resetStats();
  const r = tsbak('restore', REPO, snap, '--target', out2);
  t.equal(r.code, 0, r.stderr);
  sameTree(t, src, path.join(out2, src));
  const st = await stats();
  t.equal(st.requests.RestoreObject ?? 0, 0);
  t.equal(st.requests.HeadObject ?? 0, 0, 'no HEAD of data packs');
  t.ok(st.bytesOut < dataBytes / 20, `only hot objects from S3 (${st.bytesOut} bytes)`);
  // Same number of GETs as ls, which reads no data at all.
  await resetStats();
  t.equal(tsbak('ls', REPO, snap).code, 0);
  const lsGets = (await stats()).requests.GetObject;
  t.equal(st.requests.GetObject, lsGets, 'no GET of a data pack');
});

let snap2 = '';
t.test('warm: one batch, prints the estimate, idempotent, --wait', async (t) => {
  // New data in a second snapshot: cold again.
  // 6 MiB: more than a 1 MiB pack plus one largest chunk (4 MiB), so always 2 packs or more.
  writeFileSync(path.join(src, 'photos/c.raw'), randomBytes(6 << 20));
  // more.bin in a backup of its own after c.raw's, so that its packs hold none of c.raw's
  // chunks (backed up together, the two directories' files may share packs).
  const wc = run('tsbak-write', [REPO, src, '--json'], env);
  t.equal(wc.code, 0, wc.stderr);
  writeFileSync(path.join(src, 'docs/deep/more.bin'), randomBytes(1 << 20));
  const w = run('tsbak-write', [REPO, src, '--json'], env);
  t.equal(w.code, 0, w.stderr);
  snap2 = json(w.stdout).snapshot_id;

  await resetStats();
  const dry = tsbak('warm', REPO, snap2, path.join(src, 'photos'), '--dry-run');
  t.equal(dry.code, 0, dry.stderr);
  t.match(dry.stdout, /to restore: \d+ objects, .*tier Bulk.*\$[\d.]+ .*expected by/);
  t.equal((await stats()).requests.RestoreObject ?? 0, 0, 'dry run: no request');

  const w1 = tsbak('warm', REPO, snap2, path.join(src, 'photos'), '--json', '--days', '1');
  t.equal(w1.code, 0, w1.stderr);
  const j1 = json(w1.stdout);
  t.ok(j1.requested >= 2, `${j1.requested} restores requested for photos/c.raw`);
  t.equal(j1.states.restoring, j1.requested);
  t.ok(j1.states.cached >= 1, 'a.raw and b.raw are in the local cache');
  t.equal(j1.ready, false);
  t.ok(j1.expected_by);
  const st1 = await stats();
  t.equal(st1.requests.RestoreObject, j1.requested);
  t.equal(st1.restores.Bulk, j1.requested, 'tier Bulk by default');

  const w2 = tsbak('warm', REPO, snap2, path.join(src, 'photos'), '--json', '--days', '1');
  t.equal(json(w2.stdout).requested, 0, 'idempotent');
  t.equal((await stats()).requests.RestoreObject, j1.requested, 'no new RestoreObject');

  // The whole snapshot: only docs/deep/more.bin's packs are new.
  const w3 = await runWaiting(['warm', REPO, snap2, '--wait', '--poll-interval', '0.3', '--days', '1'], env, /restored \d+\/\d+ packs/, () => server.completeRestores());
  t.equal(w3.code, 0, w3.stderr);
  t.ok(w3.thenRan, 'it waited until the restores were completed');
  t.match(w3.stdout, /requested \d+ restores? \(tier Bulk, kept 1 day\)/);
  t.match(w3.stdout, /all \d+ packs? (are|is) restored/);
  const w4 = tsbak('warm', REPO, snap2, '--json');
  const j4 = json(w4.stdout);
  t.equal(j4.ready, true);
  t.equal(j4.requested, 0);
  t.equal(j4.states.cold + j4.states.restoring, 0);
});

t.test('expiry makes the data cold again; restore requests it again', async (t) => {
  // Restored copies of snap2's new packs were kept 1 (scaled) day.
  await server.advance(2 * DAY_MS);
  env = { ...env, ...shiftedClockEnv(2 * DAY_MS) };
  const w = tsbak('warm', REPO, snap2, '--json', '--dry-run');
  const j = json(w.stdout);
  t.ok(j.states.cold >= 2, `${j.states.cold} packs cold again`);
  t.equal(j.states.available, 0, 'no restored copy left');
  t.ok(j.states.cached >= 1, 'packs in the local cache stay readable');
  await resetStats();
  const out3 = tempDir(t, 'tsbak-cold-out3-');
  const r = tsbak('restore', REPO, snap2, '--target', out3, '--no-wait', '--include', path.join(src, 'photos/c.raw'));
  t.equal(r.code, 15, r.stderr);
  const st = await stats();
  t.ok(st.requests.RestoreObject >= 2, 'the expired packs are requested again');
  t.ok(st.requests.RestoreObject <= j.states.cold, 'only the packs --include needs');
  // And it comes back.
  t.ok((await server.completeRestores()) >= 2);
  const r2 = tsbak('restore', REPO, snap2, '--target', out3, '--include', path.join(src, 'photos/c.raw'), '--poll-interval', '0.3');
  t.equal(r2.code, 0, r2.stderr);
  t.equal(sha(path.join(out3, src, 'photos/c.raw')), sha(path.join(src, 'photos/c.raw')));
});

t.test('restore waits (polling) when --no-wait is not given', async (t) => {
  // New data (never restored) and a fresh cache directory (nothing cached, nothing known).
  writeFileSync(path.join(src, 'docs/wait.bin'), randomBytes(1 << 20));
  const w = run('tsbak-write', [REPO, src, '--json'], env);
  t.equal(w.code, 0, w.stderr);
  const snap3 = json(w.stdout).snapshot_id;
  const env2 = { ...env, TSBAK_CACHE_DIR: tempDir(t, 'tsbak-cold-cache2-') };
  const out4 = tempDir(t, 'tsbak-cold-out4-');
  const r = await runWaiting(['restore', REPO, snap3, '--target', out4, '--include', path.join(src, 'docs'), '--poll-interval', '0.3', '--tier', 'Bulk', '--days', '1'], env2, /restored \d+\/\d+ packs/, () => server.completeRestores());
  t.equal(r.code, 0, r.stderr);
  t.ok(r.thenRan, 'waited for the restore');
  t.match(r.stderr, /restored \d+\/\d+ packs/);
  sameTree(t, path.join(src, 'docs'), path.join(out4, src, 'docs'));
});

t.test('usage errors', async (t) => {
  const r = tsbak('warm', REPO, snap, '--tier', 'Expedited');
  t.equal(r.code, 2);
  t.match(r.stderr, /Expedited tier is not available for DEEP_ARCHIVE/);
});

// Issue 5, the mount over cold data, end to end: a repository on a real S3 server process
// with Glacier semantics (scripts/s3-dev-server.mjs: s3rver + our proxy; short restore
// delay), data packs in DEEP_ARCHIVE, mounted for real with bin/mount.tsbak.
//
// ls -lR/stat/getfattr need no restore and no data pack; user.tsbak.state says cold; cat of
// a cold file fails with ENODATA after requesting each pack it needs once (one log line);
// reading again requests nothing new; the state goes restoring -> available -> cached; the
// status file lists the restore; a second read and a read after a remount ask S3 nothing;
// cold=wait blocks until the restore is done (or fails with ENODATA after cold_timeout);
// python3, cat, cp and rsync each fail clearly on a cold file, then read it once restored.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { lastJson, run } from './lib/cli.js';
import { daemonPids, isMounted, mountBg, mountPoint, waitFor } from './lib/fuse-helpers.js';
import { devServerEnv, withDevServer, type DevServer, type DevStats } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

// Restores complete when the test says so (the dev server's manual clock), never while a
// step runs by chance.
const sh = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const json = lastJson;

const server: DevServer = await withDevServer(t, { manualClock: true, buckets: ['cold'] });

const dir = tempDir(t, 'tsbak-fuse-cold-');
const cache = path.join(dir, 'cache'); // the mount's cache_dir: restore journal and packs
const mnt = mountPoint(t, path.join(dir, 'mnt'));
const logFile = path.join(dir, 'mount.log');

const env = devServerEnv(server, { TSBAK_CACHE_DIR: path.join(dir, 'writer-cache') });
const REPO = 's3://cold/mnt';

const stats = (): Promise<DevStats> => server.stats();
const resetStats = () => server.resetStats();
const req = (st: DevStats, kind: string) => st.requests[kind] ?? 0;

const src = path.join(dir, 'src');
mkdirSync(path.join(src, 'docs'), { recursive: true });
const files = {
  a: randomBytes(3 << 20), // several chunks, several 1 MiB packs
  b: randomBytes(2 << 20), // read with cold=wait
  c: randomBytes(1 << 20), // cold=wait that times out (backed up later: packs of its own)
};
writeFileSync(path.join(src, 'a.bin'), files.a);
writeFileSync(path.join(src, 'empty'), '');
for (let i = 0; i < 10; i++) writeFileSync(path.join(src, `docs/note-${i}.txt`), `note ${i}\n`.repeat(i + 1));
sh('setfattr', ['-n', 'user.color', '-v', 'blue', path.join(src, 'a.bin')]);

const init = run('tsbak', ['init', REPO, '--data-class', 'DEEP_ARCHIVE', '--pack-size', '1', '--s3-endpoint', server.url, '--s3-path-style'], env);
t.equal(init.code, 0, init.stderr);
const w = run('tsbak-write', [REPO, src, '--json'], env);
t.equal(w.code, 0, w.stderr);
// b.bin in a run of its own: its data packs then hold nothing of a.bin's, by construction
// (within one run, where one file's chunks end and the next one's begin shares a pack).
writeFileSync(path.join(src, 'b.bin'), files.b);
const wb = run('tsbak-write', [REPO, src, '--json'], env);
t.equal(wb.code, 0, wb.stderr);

/**
 * Packs whose restore reading a file must request, independently of the mount: `tsbak warm
 * --dry-run` on the mount's cache directory (its cold packs; packs shared with a file read
 * before are in the local cache already).
 */
function packsToRestore(file: string): number {
  const r = run('tsbak', ['warm', REPO, 'latest', path.join(src, file), '--dry-run', '--json'], { ...env, TSBAK_CACHE_DIR: cache });
  if (r.code !== 0) throw new Error(r.stderr);
  const j = json(r.stdout);
  return j.states.cold;
}

// refresh=86400: on S3 the mount lists the snapshots again every 60 s by default, and that
// LIST, landing in a step's counting window on a slow run, is a request the step did not make
// (`st.total === 0` below). A day is longer than any run; each mount still lists them once at
// start, and every step that adds a snapshot remounts.
const baseOpts = [`s3_endpoint=${server.url}`, 's3_path_style', `cache_dir=${cache}`, 'cold_poll=1', 'refresh=86400', `log=${logFile}`];
function mount(extra: string[] = []) {
  const m = mountBg(REPO, mnt, [...baseOpts, ...extra], env);
  if (m.code !== 0) throw new Error(`mount failed: ${m.stderr}`);
}
async function unmount() {
  sh('fusermount', ['-u', mnt]);
  await waitFor('the daemon to exit', () => daemonPids(mnt).length === 0 && !isMounted(mnt), 10_000);
}
const logText = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
const state = (f: string) => sh('getfattr', ['--only-values', '-n', 'user.tsbak.state', f]).stdout;
const status = () => readFileSync(path.join(mnt, '.tsbak-status'), 'utf8');

mount();
// The snapshot with both files (a later one adds c.bin).
const snapName = path.basename(readlinkSync(path.join(mnt, 'snapshots', 'latest')));
const snapDir = path.join(mnt, 'snapshots', snapName);
const inMount = (f: string) => path.join(snapDir, src.slice(1), f);
const A = inMount('a.bin');
const B = inMount('b.bin');
const C = path.join(mnt, 'snapshots/latest', src.slice(1), 'c.bin');

t.test('ls -lR, stat and getfattr: no restore, no data pack', async (t) => {
  await resetStats();
  const ls = sh('ls', ['-lR', mnt]);
  t.equal(ls.status, 0, ls.stderr);
  t.match(ls.stdout, /a\.bin/);
  t.match(ls.stdout, /note-9\.txt/);
  t.equal(statSync(A).size, files.a.length, 'stat: size');
  const gf = sh('getfattr', ['-R', '-d', snapDir]);
  t.equal(gf.status, 0, gf.stderr);
  let st = await stats();
  t.equal(req(st, 'RestoreObject'), 0, 'no RestoreObject');
  t.same(st.restores, {}, 'no restore started');
  t.same(st.errors, {}, 'no GET of an archived pack (it would be 403 InvalidObjectState)');
  t.ok(st.bytesOut < files.c.length / 4, `only hot objects (${st.bytesOut} bytes)`);

  // With the trees loaded: the state of every file costs no request at all.
  await resetStats();
  const d = sh('getfattr', ['-d', A]);
  t.equal(d.status, 0, d.stderr);
  t.match(d.stdout, /user\.color="blue"/, "the file's own xattr");
  t.match(d.stdout, /user\.tsbak\.state="cold"/, 'and its state, listed');
  t.equal(state(A), 'cold');
  t.equal(state(B), 'cold');
  t.equal(state(inMount('docs/note-3.txt')), 'cold');
  t.equal(state(inMount('empty')), 'hot', 'an empty file has no data to restore');
  t.notMatch(sh('getfattr', ['-d', inMount('empty')]).stdout, /tsbak/, 'and does not list the state');
  t.equal(sh('getfattr', ['-n', 'user.tsbak.state', snapDir]).status, 1, 'directories have no state');
  statSync(A);
  st = await stats();
  t.equal(st.total, 0, `no S3 request (${JSON.stringify(st.requests)})`);

  t.ok(lstatSync(path.join(mnt, '.tsbak-status')).isSymbolicLink(), 'the status file is a link to a fresh copy');
  t.ok(readdirSync(mnt).includes('.tsbak-status'));
  t.match(status(), /^summary: no restores pending; 0 packs/m);
});

const need = { a: 0, b: 0, c: 0 };

t.test('cat of a cold file: ENODATA, each pack requested once, one log line', async (t) => {
  need.a = packsToRestore('a.bin');
  t.ok(need.a >= 2, `a.bin is in ${need.a} packs`);
  await resetStats();
  // Restores complete only when the test says so: failing at all is failing without waiting.
  const cat = sh('cat', [A]);
  t.not(cat.status, 0);
  t.match(cat.stderr, /No data available/);
  const st = await stats();
  t.equal(req(st, 'RestoreObject'), need.a, `one RestoreObject per pack a.bin needs (${need.a})`);
  t.equal(st.restores.Standard, need.a, 'tier Standard by default');
  t.same(st.errors, {}, 'no GET of an archived pack');
  const lines = logText().split('\n').filter((l) => l.includes(A));
  t.equal(lines.length, 1, 'one log line names the file');
  t.match(lines[0], new RegExp(`requested the restore of its ${need.a} packs, [\\d.]+ MiB, tier Standard, expected by \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ; reads fail with ENODATA`));

  // Again, before the restore is done: nothing new.
  const again = sh('cat', [A]);
  t.match(again.stderr, /No data available/);
  const head = sh('head', ['-c', '10', A]);
  t.match(head.stderr, /No data available/);
  const st2 = await stats();
  t.equal(req(st2, 'RestoreObject'), need.a, 'no new RestoreObject');
  t.same(st2.errors, {});
  t.equal(logText().split('\n').filter((l) => l.includes(A)).length, 1, 'no new log line');
  t.equal(state(A), 'restoring');
  t.equal(state(B), 'cold', 'other files are not affected');
});

t.test('the status file lists the restore', async (t) => {
  const s = status();
  const rows = s.split('\n').filter((l) => /^packs\/data\//.test(l));
  t.equal(rows.length, need.a, s);
  for (const r of rows) t.match(r, /^packs\/data\/\S+\s+\d+\s+Standard\s+\d{4}-\S+Z\s+\d{4}-\S+Z\s+restoring\s+-$/);
  t.match(s, /^PACK\s+BYTES\s+TIER\s+REQUESTED-AT\s+EXPECTED-BY\s+STATE\s+EXPIRES$/m);
  t.match(s, new RegExp(`^summary: ${need.a} restores pending \\(${need.a} restoring, 0 available\\), .*expected by \\d{4}-`, 'm'));
  const target = readlinkSync(path.join(mnt, '.tsbak-status'));
  t.match(target, /^\.tsbak-status@\d+$/);
  t.equal(readFileSync(path.join(mnt, target), 'utf8').split('\n').slice(1).join('\n'), s.split('\n').slice(1).join('\n'), 'a copy stays readable under its name');
  t.throws(() => writeFileSync(path.join(mnt, '.tsbak-status'), 'x'), { code: 'EROFS' });
});

t.test('once restored: available, then the read succeeds and it is cached', async (t) => {
  t.equal(await server.completeRestores(), need.a, "a.bin's restores complete");
  await waitFor('the mount to see a.bin restored', () => state(A) === 'available', 15_000, 200);
  t.match(status(), /\savailable\s/);
  await resetStats();
  const got = readFileSync(A);
  t.equal(sha(got), sha(files.a), 'the right bytes');
  let st = await stats();
  t.equal(req(st, 'RestoreObject'), 0, 'no restore requested');
  t.equal(req(st, 'GetObject'), need.a, 'one GET per pack, into the local cache');
  // Asked right after the read, before the kernel's release reaches the daemon: the state
  // remembered at open must not be served (it was, once, under CI load).
  t.equal(state(A), 'cached');
  t.match(status(), new RegExp(`^summary: no restores pending; ${need.a} packs \\(.*\\) in the local cache`, 'm'));

  await resetStats();
  t.equal(sha(readFileSync(A)), sha(files.a), 'a second read');
  t.equal(sh('cmp', [A, path.join(src, 'a.bin')]).status, 0);
  st = await stats();
  t.equal(st.total, 0, `makes no S3 request (${JSON.stringify(st.requests)})`);
});

t.test('remount: no repeated restore, cached data read without S3; cold=wait blocks until restored', async (t) => {
  await unmount();
  await resetStats();
  // A timeout far beyond what the steps take on a loaded machine: this test is about waiting.
  mount(['cold=wait', 'cold_timeout=900']);
  t.equal(state(A), 'cached', 'the local cache survives the remount');
  statSync(A);
  t.equal(sha(readFileSync(A)), sha(files.a));
  // Trees may still be fetched in the background (the mount walks ahead): count data packs.
  const after = await stats();
  const dataGets = Object.keys(after.getsByKey).filter((k) => k.includes('/packs/data/'));
  t.same(dataGets, [], 'no GET of a data pack to read the cached file');
  t.equal(req(after, 'RestoreObject'), 0, 'no repeated restore request');

  t.equal(state(B), 'cold');
  need.b = packsToRestore('b.bin');
  t.ok(need.b >= 1, `b.bin needs ${need.b} restores`);
  await resetStats();
  let done = false;
  const reading = readFile(B).finally(() => (done = true)); // blocks until restored
  // The read asked for b.bin's restores and waits: complete them.
  await waitFor('the restores of b.bin to be requested', async () => req(await stats(), 'RestoreObject') >= need.b, 15_000, 100);
  t.notOk(done, 'the read is still waiting');
  t.equal(await server.completeRestores(), need.b);
  const got = await reading;
  t.equal(sha(got), sha(files.b), 'read correctly once restored');
  const st = await stats();
  t.equal(req(st, 'RestoreObject'), need.b, `one RestoreObject per pack b.bin needs (${need.b})`);
  t.same(st.errors, {});
  t.equal(state(B), 'cached');
  const lines = logText().split('\n').filter((l) => l.includes(B));
  t.equal(lines.length, 1, 'one log line names the file');
  t.match(lines[0], /reads wait up to 900 s/);
});

t.test('cold=wait gives up after cold_timeout with ENODATA', async (t) => {
  // A later snapshot with new data: packs no file read before shares.
  writeFileSync(path.join(src, 'c.bin'), files.c);
  const w2 = run('tsbak-write', [REPO, src, '--json'], env);
  t.equal(w2.code, 0, w2.stderr);
  await unmount();
  mount(['cold=wait', 'cold_timeout=1']);
  need.c = packsToRestore('c.bin');
  t.ok(need.c >= 1, `c.bin needs ${need.c} restores`);
  await resetStats();
  const start = Date.now();
  const cat = sh('cat', [C]);
  const took = Date.now() - start;
  t.match(cat.stderr, /No data available/);
  // A lower bound only: the daemon's timer cannot fire early, but a busy machine may be late.
  t.ok(took >= 900, `after waiting cold_timeout (${took} ms)`);
  t.equal(req(await stats(), 'RestoreObject'), need.c);
  t.match(logText(), /c\.bin: not restored after waiting 1 s \(cold_timeout\)/);
  t.equal(logText().split('\n').filter((l) => l.includes('c.bin: not restored')).length, 1, 'said once');
  t.equal(state(C), 'restoring');
});

t.test('python3, cat, cp and rsync on a cold file: a clear failure each, the restore requested once, then the data', async (t) => {
  const files_d = randomBytes(1 << 20);
  writeFileSync(path.join(src, 'd.bin'), files_d);
  const w3 = run('tsbak-write', [REPO, src, '--json'], env);
  t.equal(w3.code, 0, w3.stderr);
  await unmount();
  mount(); // cold=fail, the default
  const D = path.join(mnt, 'snapshots/latest', src.slice(1), 'd.bin');
  const need_d = packsToRestore('d.bin');
  t.ok(need_d >= 1, `d.bin needs ${need_d} restores`);
  await resetStats();
  const out = path.join(dir, 'out-cold');
  mkdirSync(out);
  // Python's buffered read() turned EAGAIN into None; ENODATA is an OSError.
  const pyRead = `import hashlib, sys
try:
    data = open(sys.argv[1], 'rb').read()
except OSError as e:
    print('OSError', e.errno, e.strerror); sys.exit(3)
print('read', None if data is None else hashlib.sha256(data).hexdigest())`;
  const py = sh('python3', ['-c', pyRead, D]);
  t.equal(py.status, 3, `python3 raises: ${py.stdout}${py.stderr}`);
  t.match(py.stdout, /^OSError 61 No data available$/m);
  const cat = sh('cat', [D]);
  t.equal(cat.status, 1);
  t.match(cat.stderr, /No data available/);
  const cp = sh('cp', [D, path.join(out, 'cp.bin')]);
  t.equal(cp.status, 1);
  t.match(cp.stderr, /error reading .*d\.bin.*: No data available/);
  const rs = sh('rsync', [D, path.join(out, 'rsync.bin')]);
  t.equal(rs.status, 23, 'rsync: some files were not transferred');
  t.match(rs.stderr, /No data available \(61\)/);
  t.notOk(existsSync(path.join(out, 'rsync.bin')), 'rsync writes no copy');
  const st = await stats();
  t.equal(req(st, 'RestoreObject'), need_d, `each pack requested once for the four tools (${need_d})`);
  t.same(st.errors, {}, 'no GET of an archived pack');
  t.equal(state(D), 'restoring');

  // Done: each of them reads the data (retrying is all it takes).
  // (c.bin's restore, left pending above, completes too.)
  t.ok((await server.completeRestores()) >= need_d);
  await waitFor('the mount to see d.bin restored', () => state(D) === 'available', 15_000, 200);
  const py2 = sh('python3', ['-c', pyRead, D]);
  t.equal(py2.status, 0, py2.stderr);
  t.equal(py2.stdout.trim(), `read ${sha(files_d)}`);
  t.equal(sha(spawnSync('cat', [D]).stdout), sha(files_d), 'cat');
  t.equal(sh('cp', [D, path.join(out, 'cp.bin')]).status, 0);
  t.equal(sha(readFileSync(path.join(out, 'cp.bin'))), sha(files_d), 'cp');
  t.equal(sh('rsync', [D, path.join(out, 'rsync.bin')]).status, 0);
  t.equal(sha(readFileSync(path.join(out, 'rsync.bin'))), sha(files_d), 'rsync');
});

t.test('mount options are checked before mounting', async (t) => {
  const bad = (o: string, re: RegExp) => {
    const r = run('mount.tsbak', [REPO, mnt, '-o', o], env);
    t.equal(r.code, 2, `${o}: usage error`);
    t.match(r.stderr, re);
  };
  bad('cold=maybe', /cold= is fail or wait/);
  bad('tier=Fast', /tier= is Bulk, Standard or Expedited/);
  bad('days=0', /days= must be at least 1/);
  bad('pack_cache_size=lots', /pack_cache_size=.*not a size/);
  bad('state_xattr=maybe', /state_xattr= is listed or hidden/);
  bad('cold_timeout=soon', /cold_timeout= needs a whole number/);
});

#!/usr/bin/env node
// Restore and `check --read-data` over S3 and from a local repository, with requests
// counted and latency added per request, for one or more builds of tsbak side by side (a
// build is a compiled dist/ directory, e.g. a copy of the one before a change): issue 23.
//
// The latency is added by a Backend wrapper in this process (every call waits `ms` before
// it goes out), which is what a WAN does to each request; requests are counted there too.
// The S3 server is scripts/s3-dev-server.mjs on loopback. restic 0.14 restores the same
// corpus from a local repository in the same run, as the reference.
//
// Usage: node scripts/bench-readplan.mjs [--build name=/path/to/dist]... [--corpus /usr/include]
//        [--latency 0,100 (restores over S3; check runs at 0 ms)] [--kinds local,s3] [--work /tmp/tsbak-readplan] [--no-restic] [--check]
// Default build: this checkout's dist/. Prints one line per run and a table at the end.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const builds = [];
for (let i = 0; i < args.length; i++) if (args[i] === '--build') {
  const [n, d] = args[i + 1].split('=');
  builds.push({ name: n, dist: path.resolve(d) });
}
if (!builds.length) builds.push({ name: 'this', dist: path.join(here, 'dist') });
const corpusSrc = opt('--corpus', '/usr/include');
const latencies = opt('--latency', '0,100').split(',').map(Number);
const work = opt('--work', '/tmp/tsbak-readplan');
const withRestic = !args.includes('--no-restic');
const withCheck = args.includes('--check');
const kinds = opt('--kinds', 'local,s3').split(',');
const PASSWORD = 'bench-password';

const say = (m) => process.stderr.write(m + '\n');

if (args[0] === '--child') {
  const [, name, dist, kind, ms, what, w, u] = args;
  const r = await runOne({ name, dist }, kind, Number(ms), what, w, u);
  process.stdout.write(JSON.stringify(r));
  process.exit(0);
}
mkdirSync(work, { recursive: true });
const corpus = path.join(work, 'corpus');
if (!existsSync(corpus)) {
  say(`copying ${corpusSrc} to ${corpus}`);
  mkdirSync(corpus);
  execFileSync('cp', ['-a', corpusSrc + '/.', corpus]);
}

// The repositories are made once, by the first build's CLI.
const cli = (dist, argv, env = {}) =>
  execFileSync(process.execPath, [path.join(dist, 'src/cli/entry-tsbak.js'), ...argv], { env: { ...process.env, TSBAK_PASSWORD: PASSWORD, TSBAK_FAST_KDF: '1', TSBAK_CACHE_DIR: path.join(work, 'cache'), ...env }, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const cliWrite = (dist, argv, env = {}) =>
  execFileSync(process.execPath, [path.join(dist, 'src/cli/entry-tsbak-write.js'), ...argv], { env: { ...process.env, TSBAK_PASSWORD: PASSWORD, TSBAK_FAST_KDF: '1', TSBAK_CACHE_DIR: path.join(work, 'cache'), ...env }, stdio: ['ignore', 'pipe', 'pipe'] }).toString();

const localRepo = path.join(work, 'repo-local');
if (!existsSync(localRepo)) {
  say('local repository: init and backup');
  cli(builds[0].dist, ['init', localRepo]);
  cliWrite(builds[0].dist, [localRepo, corpus]);
}

// The S3 dev server, its data kept in the work directory between runs.
const s3dir = path.join(work, 's3');
mkdirSync(s3dir, { recursive: true });
const server = spawn(process.execPath, [path.join(here, 'scripts/s3-dev-server.mjs'), '--port', '0', '--dir', s3dir, '--bucket', 'bench', '--exit-on-stdin-close'], { stdio: ['pipe', 'pipe', 'inherit'] });
const url = await new Promise((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d) => {
    out += d;
    const m = /listening on (http:\/\/\S+)/.exec(out);
    if (m) resolve(m[1]);
  });
  server.once('exit', (c) => reject(new Error(`s3-dev-server exited ${c}`)));
});
const s3env = { AWS_ENDPOINT_URL_S3: url, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
Object.assign(process.env, s3env);
if (!existsSync(path.join(work, 's3-ready'))) {
  say('S3 repository: init and backup');
  cli(builds[0].dist, ['init', 's3://bench/repo'], s3env);
  cliWrite(builds[0].dist, ['s3://bench/repo', corpus], s3env);
  execFileSync('touch', [path.join(work, 's3-ready')]);
}

/** The backend with `ms` added before every request, and requests counted by kind. */
function slowCounting(inner, ms, counts, readConcurrency) {
  const wait = () => (ms ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());
  const count = (k) => (counts[k] = (counts[k] ?? 0) + 1);
  const b = {
    location: inner.location,
    putConcurrency: inner.putConcurrency,
    readConcurrency,
    async put(n, d, o) { count('put'); await wait(); return inner.put(n, d, o); },
    async get(n, r, s) { count('get'); if (process.env.BENCH_LOG_GETS) say(`GET ${n.slice(0, 18)} ${r ? `${r.offset}+${r.length}` : 'whole'}`); await wait(); return inner.get(n, r, s); },
    async head(n) { count('head'); await wait(); return inner.head(n); },
    async *list(p, s) { count('list'); await wait(); yield* inner.list(p, s); },
    async delete(n) { count('delete'); await wait(); return inner.delete(n); },
  };
  if (inner.readInto) b.readInto = async (n, r, into, s) => { count('get'); await wait(); return inner.readInto(n, r, into, s); };
  if (inner.restore) b.restore = (...a) => inner.restore(...a);
  return b;
}

async function runOne(build, kind, ms, what, work, url) {
  const localRepo = path.join(work, 'repo-local');
  const imp = (p) => import(pathToFileURL(path.join(build.dist, p)).href);
  const { Repository } = await imp('src/repo/repository.js');
  const { restoreSnapshot } = await imp('src/restore/restore.js');
  const { checkRepository } = await imp('src/repo/check.js');
  let inner;
  if (kind === 'local') {
    const { LocalBackend } = await imp('src/backend/local.js');
    inner = new LocalBackend(localRepo);
  } else {
    const { S3Backend } = await imp('src/backend/s3.js');
    const { withRetry } = await imp('src/backend/retry.js');
    inner = withRetry(new S3Backend({ bucket: 'bench', prefix: 'repo', endpoint: url, forcePathStyle: true }));
  }
  const counts = {};
  const backend = slowCounting(inner, ms, counts, kind === 'local' ? 2 : 12);
  const target = path.join(work, 'target');
  rmSync(target, { recursive: true, force: true });
  const t0 = performance.now();
  const repo = await Repository.open(backend, { password: PASSWORD });
  await repo.loadIndex();
  let extra = '';
  if (what === 'restore') {
    const snap = await repo.findSnapshot('latest');
    const r = await restoreSnapshot(repo, snap, { target });
    if (r.errors.length) throw new Error(`restore errors: ${JSON.stringify(r.errors.slice(0, 3))}`);
    extra = `${r.files} files${r.reads ? ` ${JSON.stringify(r.reads)}` : ""}`;
  } else {
    const r = await checkRepository(repo, { readData: true });
    if (r.errors.length) throw new Error(`check errors: ${r.errors.slice(0, 3)}`);
    extra = `${r.packs} packs, ${r.blobsRead} blobs`;
  }
  const s = (performance.now() - t0) / 1000;
  await backend.close?.();
  const ru = process.resourceUsage();
  return { s, counts, extra, rssMB: ru.maxRSS / 1024, cpuS: (ru.userCPUTime + ru.systemCPUTime) / 1e6 };
}

function restic() {
  const repo = path.join(work, 'restic-repo');
  const env = { ...process.env, RESTIC_PASSWORD: PASSWORD, RESTIC_CACHE_DIR: path.join(work, 'restic-cache') };
  if (!existsSync(repo)) {
    execFileSync('restic', ['init', '-r', repo, '-q'], { env });
    execFileSync('restic', ['backup', '-r', repo, '-q', corpus], { env });
  }
  const target = path.join(work, 'target');
  rmSync(target, { recursive: true, force: true });
  const t0 = performance.now();
  execFileSync('restic', ['restore', '-r', repo, '-q', 'latest', '--target', target], { env });
  return (performance.now() - t0) / 1000;
}

const rows = [];
const whats = withCheck ? ['restore', 'check'] : ['restore'];
for (const what of whats) {
  for (const kind of kinds) {
    for (const ms of kind === 'local' ? [0] : what === 'check' ? [0] : latencies) {
      for (const b of builds) {
        // Each in a child process of its own, so that builds do not share module state.
        const out = execFileSync(process.execPath, ['--max-semi-space-size=2', fileURLToPath(import.meta.url), '--child', b.name, b.dist, kind, String(ms), what, work, url], { env: process.env, stdio: ['ignore', 'pipe', 'inherit'] }).toString();
        const r = JSON.parse(out);
        const reqs = Object.values(r.counts).reduce((a, c) => a + c, 0);
        rows.push({ what, kind, ms, build: b.name, s: r.s, reqs, counts: r.counts, extra: r.extra, rss: r.rssMB });
        say(`${what} ${kind} ${ms} ms ${b.name}: ${r.s.toFixed(2)} s, ${r.cpuS.toFixed(2)} CPU-s, ${r.rssMB.toFixed(0)} MB peak RSS, ${reqs} requests ${JSON.stringify(r.counts)} (${r.extra})`);
      }
    }
  }
  if (what === 'restore' && withRestic && kinds.includes('local')) {
    const s = restic();
    rows.push({ what, kind: 'local', ms: 0, build: 'restic 0.14', s, reqs: NaN, counts: {}, extra: '' });
    say(`restore local restic: ${s.toFixed(2)} s`);
  }
}
server.stdin.end();
console.log('| step | repository | latency | build | seconds | requests | peak RSS MB |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.what} | ${r.kind} | ${r.ms} ms | ${r.build} | ${r.s.toFixed(2)} | ${Number.isNaN(r.reqs) ? '' : r.reqs} | ${r.rss ? r.rss.toFixed(0) : ''} |`);

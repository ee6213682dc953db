#!/usr/bin/env node
// What browsing and restoring cost in request and retrieval fees with tree packs and index
// files in each storage class, measured: a repository of a corpus (default /usr/include) with
// data packs in DEEP_ARCHIVE on the S3 dev server, behind a proxy that counts every request
// and the bytes of every response by object kind. Then the fees of each step, and of a
// typical month (storage, 30 daily backups, one browse), are computed from the price table
// (src/glacier/prices.ts) for each choice of tree and index class.
//
//   node scripts/bench/metadata-class.mjs [--corpus /usr/include] [--region us-east-1] [--no-mount] [--json]
//
// Needs a built dist/ and the native addon; the mount step needs /dev/fuse and fusermount.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values: args } = parseArgs({
  options: { corpus: { type: 'string', default: '/usr/include' }, region: { type: 'string', default: 'us-east-1' }, 'no-mount': { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, keep: { type: 'boolean', default: false } },
});
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const cost = await import(pathToFileURL(path.join(here, 'dist/src/glacier/cost.js')).href);
const { S3Client, ListObjectsV2Command } = await import('@aws-sdk/client-s3');

const work = mkdtempSync(path.join(os.tmpdir(), 'tsbak-metaclass-'));
const log = (s) => process.stderr.write(`metadata-class: ${s}\n`);
const BUCKET = 'bench';

// ---- the dev server and a counting proxy in front of it ----
const dev = spawn(process.execPath, [path.join(here, 'scripts/s3-dev-server.mjs'), '--port', '0', '--dir', path.join(work, 's3'), '--restore-delay-ms', '0', '--bucket', BUCKET, '--exit-on-stdin-close'], { stdio: ['pipe', 'pipe', 'inherit'] });
const devUrl = await new Promise((resolve, reject) => {
  let buf = '';
  dev.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d;
    const m = /listening on (http:\/\/\S+)/.exec(buf);
    if (m) resolve(m[1]);
  });
  dev.on('exit', (c) => reject(new Error(`dev server exited ${c}`)));
});
const target = new URL(devUrl);

/** Requests of the current step: { kind, op, bytes }. */
let requests = [];
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
function kindOf(key) {
  if (key.startsWith('packs/data/')) return 'data';
  if (key.startsWith('packs/tree/')) return 'tree';
  if (key.startsWith('index/')) return 'index';
  if (key.startsWith('snapshots/')) return 'snapshot';
  if (key.startsWith('keys/')) return 'key';
  if (key.startsWith('locks/')) return 'lock';
  return 'other';
}
const proxy = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  const parts = u.pathname.split('/').filter(Boolean);
  const key = decodeURIComponent(parts.slice(1).join('/')).replace(/^repo\//, '');
  const op = req.method === 'GET' ? (key ? 'GET' : 'LIST') : req.method === 'POST' && u.searchParams.has('restore') ? 'RESTORE' : req.method;
  const rec = { kind: key ? kindOf(key) : 'bucket', op, bytes: 0 };
  requests.push(rec);
  const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent }, (r) => {
    res.writeHead(r.statusCode, r.headers);
    r.on('data', (d) => {
      if (op === 'GET') rec.bytes += d.length;
    });
    r.pipe(res);
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
});
await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
const proxyUrl = `http://127.0.0.1:${proxy.address().port}`;

const env = {
  ...process.env,
  AWS_ENDPOINT_URL_S3: proxyUrl,
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER',
  TSBAK_PASSWORD: 'metadata-class bench',
};
const REPO = `s3://${BUCKET}/repo`;
const cacheDir = (name) => {
  const d = path.join(work, 'cache', name);
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
  return d;
};
/** Runs a program (asynchronously: the proxy lives on this event loop). */
function run(bin, argv, extraEnv = {}) {
  const file = path.isAbsolute(bin) || !existsSync(path.join(here, 'bin', bin)) ? bin : path.join(here, 'bin', bin);
  const child = spawn(file, argv, { env: { ...env, ...extraEnv }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${bin} ${argv.join(' ')} exited ${code}: ${stderr}`))));
  });
}
const steps = [];
async function step(name, fn) {
  requests = [];
  log(name);
  await fn();
  const by = {};
  for (const q of requests) {
    const k = (by[q.kind] ??= { GET: 0, getBytes: 0, PUT: 0, HEAD: 0, LIST: 0, RESTORE: 0, other: 0 });
    if (q.op in k) k[q.op]++;
    else k.other++;
    k.getBytes += q.bytes;
  }
  steps.push({ name, requests: requests.length, by });
}

// ---- the corpus: the given tree plus a small directory that changes between backups ----
const changing = path.join(work, 'changing');
mkdirSync(changing);
writeFileSync(path.join(changing, 'today'), 'day 1\n');
const paths = [args.corpus, changing];

await run('tsbak', ['init', REPO, '--data-class', 'DEEP_ARCHIVE']);
const writerCache = cacheDir('writer');
await step('first backup', () => run('tsbak-write', ['--quiet', REPO, ...paths], { TSBAK_CACHE_DIR: writerCache }));
writeFileSync(path.join(changing, 'today'), 'day 2\n');
await step('daily backup', () => run('tsbak-write', ['--quiet', REPO, ...paths], { TSBAK_CACHE_DIR: writerCache }));
// A machine backing up with its own write-only key: its parent's trees come from its local cache.
const keyFile = path.join(work, 'writer.key');
await run('tsbak', ['key', 'add-writer', REPO, '--name', 'bench', '--out', keyFile]);
const wCache = cacheDir('writer-key');
writeFileSync(path.join(changing, 'today'), 'day 3\n');
await run('tsbak-write', ['--quiet', '--key-file', keyFile, REPO, ...paths], { TSBAK_CACHE_DIR: wCache, TSBAK_PASSWORD: '' });
writeFileSync(path.join(changing, 'today'), 'day 4\n');
await step('daily backup (writer key)', () => run('tsbak-write', ['--quiet', '--key-file', keyFile, REPO, ...paths], { TSBAK_CACHE_DIR: wCache, TSBAK_PASSWORD: '' }));
const lsCache = cacheDir('ls');
await step('ls -l (new cache)', () => run('tsbak', ['ls', '-l', REPO, 'latest'], { TSBAK_CACHE_DIR: lsCache }));
await step('ls -l (warm cache)', () => run('tsbak', ['ls', '-l', REPO, 'latest'], { TSBAK_CACHE_DIR: lsCache }));
const canMount = !args['no-mount'] && existsSync('/dev/fuse') && spawnSync('sh', ['-c', 'command -v fusermount']).status === 0;
if (canMount) {
  const mnt = path.join(work, 'mnt');
  mkdirSync(mnt);
  const mountCache = cacheDir('mount');
  await step('mount ls -lR (new cache)', async () => {
    await run('mount.tsbak', [REPO, mnt], { TSBAK_CACHE_DIR: mountCache });
    try {
      await run('ls', ['-lR', path.join(mnt, 'snapshots', 'latest') + '/']);
    } finally {
      spawnSync('fusermount', ['-u', mnt]);
    }
  });
}
const out = path.join(work, 'out');
await step('restore (new cache)', () => run('tsbak', ['restore', REPO, 'latest', '--target', out, '--poll-interval', '1'], { TSBAK_CACHE_DIR: cacheDir('restore') }));

// ---- what is stored ----
const s3 = new S3Client({ endpoint: devUrl, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
const sizes = { data: cost.emptySizes(), tree: cost.emptySizes(), index: cost.emptySizes(), other: cost.emptySizes() };
let token;
do {
  const r = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'repo/', ContinuationToken: token }));
  for (const o of r.Contents ?? []) {
    const k = kindOf(o.Key.slice('repo/'.length));
    cost.addSize(sizes[k === 'data' || k === 'tree' || k === 'index' ? k : 'other'], o.Size ?? 0);
  }
  token = r.IsTruncated ? r.NextContinuationToken : undefined;
} while (token);
s3.destroy();

// ---- fees ----
const region = args.region;
const CLASSES = ['STANDARD', 'STANDARD_IA', 'GLACIER_IR'];
const choices = [];
for (const tree of CLASSES) for (const index of CLASSES) choices.push({ tree, index });
const reads = (s) => ({
  indexGets: s.by.index?.GET ?? 0,
  indexBytes: s.by.index?.getBytes ?? 0,
  treeGets: s.by.tree?.GET ?? 0,
  treeBytes: s.by.tree?.getBytes ?? 0,
});
const stepFees = (s, c) => cost.metadataReadUsd(reads(s), c, region);
const find = (n) => steps.find((s) => s.name === n);
const daily = find('daily backup');
const browse = find('ls -l (new cache)');
const activity = {
  backups: 30,
  putsPerBackup: { data: daily.by.data?.PUT ?? 0, tree: daily.by.tree?.PUT ?? 0, index: daily.by.index?.PUT ?? 0, other: (daily.by.snapshot?.PUT ?? 0) + (daily.by.lock?.PUT ?? 0) },
  backupReads: reads(daily),
  browses: 1,
  browseReads: reads(browse),
};
const writerDaily = find('daily backup (writer key)');
const month = (c, scale = 1, act = activity) => {
  const sc = (x) => ({ objects: x.objects * scale, bytes: x.bytes * scale, bytesAtMin: x.bytesAtMin * scale });
  const r = (m) => ({ indexGets: m.indexGets * scale, indexBytes: m.indexBytes * scale, treeGets: m.treeGets * scale, treeBytes: m.treeBytes * scale });
  return cost.typicalMonthUsd({ data: sc(sizes.data), tree: sc(sizes.tree), index: sc(sizes.index), other: sizes.other }, { data: 'DEEP_ARCHIVE', ...c }, { ...act, backupReads: r(act.backupReads), browseReads: r(act.browseReads) }, region);
};
const SCALE = 1000;
const writerActivity = { ...activity, backupReads: reads(writerDaily) };

const result = {
  corpus: args.corpus,
  region,
  stored: Object.fromEntries(Object.entries(sizes).map(([k, v]) => [k, { objects: v.objects, bytes: v.bytes }])),
  steps: steps.map((s) => ({ name: s.name, requests: s.requests, by_kind: s.by, fees_usd: Object.fromEntries(choices.map((c) => [`${c.tree}/${c.index}`, stepFees(s, c)])) })),
  month: Object.fromEntries(choices.map((c) => [`${c.tree}/${c.index}`, { x1: month(c), [`x${SCALE}`]: month(c, SCALE), [`x${SCALE}_writer_key`]: month(c, SCALE, writerActivity) }])),
};
if (args.json) process.stdout.write(JSON.stringify(result) + '\n');
else {
  const usd = cost.fmtUsd;
  const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
  const p = (s) => process.stdout.write(s + '\n');
  p(`## Metadata storage class: measured (scripts/bench/metadata-class.mjs)`);
  p('');
  p(`${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC. Corpus ${args.corpus}; data packs in DEEP_ARCHIVE on the S3 dev server; prices ${region} (src/glacier/prices.ts).`);
  p(`Stored: data ${sizes.data.objects} packs ${kib(sizes.data.bytes)}; tree ${sizes.tree.objects} packs ${kib(sizes.tree.bytes)}; index ${sizes.index.objects} files ${kib(sizes.index.bytes)}; other ${sizes.other.objects} objects ${kib(sizes.other.bytes)}.`);
  p('');
  p('| step | requests | index GETs (bytes) | tree GETs (bytes) | data GETs | PUTs | fees: tree/index STANDARD | STANDARD_IA | GLACIER_IR | tree GLACIER_IR, index STANDARD |');
  p('|---|---|---|---|---|---|---|---|---|---|');
  for (const s of steps) {
    const g = (k) => s.by[k] ?? { GET: 0, getBytes: 0, PUT: 0 };
    const puts = Object.values(s.by).reduce((n, k) => n + k.PUT, 0);
    p(`| ${s.name} | ${s.requests} | ${g('index').GET} (${kib(g('index').getBytes)}) | ${g('tree').GET} (${kib(g('tree').getBytes)}) | ${g('data').GET} | ${puts} | ${usd(stepFees(s, { tree: 'STANDARD', index: 'STANDARD' }))} | ${usd(stepFees(s, { tree: 'STANDARD_IA', index: 'STANDARD_IA' }))} | ${usd(stepFees(s, { tree: 'GLACIER_IR', index: 'GLACIER_IR' }))} | ${usd(stepFees(s, { tree: 'GLACIER_IR', index: 'STANDARD' }))} |`);
  }
  const rs = find('restore (new cache)');
  const restoreReq = rs.by.data?.RESTORE ?? 0;
  const rc = cost.estimateRestoreCost('DEEP_ARCHIVE', 'Standard', restoreReq, sizes.data.bytes, 7, { region, transferOut: false });
  const rb = cost.estimateRestoreCost('DEEP_ARCHIVE', 'Bulk', restoreReq, sizes.data.bytes, 7, { region, transferOut: false });
  p('');
  p(`The restore's data, the same in every metadata class: ${restoreReq} RestoreObject requests, ${rs.by.data?.GET ?? 0} GETs of ${kib(sizes.data.bytes)} of DEEP_ARCHIVE packs: ${usd(rc.totalUsd)} with the Standard tier, ${usd(rb.totalUsd)} with Bulk (requests, retrieval, restored copies kept 7 days, GETs; transfer out ${usd(cost.transferOutUsd(sizes.data.bytes, region))} more).`);
  p('');
  p(`A typical month: storage, 30 daily backups (PUTs and reads as measured with the full key; the last column with a writer key's), one ls -l with a new cache. "x${SCALE}": the same repository ${SCALE} times larger (storage and bytes and GETs read scale; PUTs per backup do not).`);
  p('');
  p(`| tree | index | month | of it metadata storage | PUTs | reads | month x${SCALE} | metadata storage x${SCALE} | reads x${SCALE} | month x${SCALE}, backups by a writer key |`);
  p('|---|---|---|---|---|---|---|---|---|---|');
  for (const c of choices) {
    const a = month(c);
    const b = month(c, SCALE);
    p(`| ${c.tree} | ${c.index} | ${usd(a.totalUsd)} | ${usd(a.metadataStorageUsd)} | ${usd(a.putsUsd)} | ${usd(a.readsUsd)} | ${usd(b.totalUsd)} | ${usd(b.metadataStorageUsd)} | ${usd(b.readsUsd)} | ${usd(month(c, SCALE, writerActivity).totalUsd)} |`);
  }
}

proxy.close();
agent.destroy();
dev.stdin.end();
dev.kill();
if (!args.keep) rmSync(work, { recursive: true, force: true });
else log(`kept ${work}`);

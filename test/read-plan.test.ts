// Reads planned by pack (issue 23): over a real S3 server process (scripts/s3-dev-server.mjs
// on loopback) a restore reads each data pack with a few ranged GETs, its trees with a few
// more, and check --read-data GETs each pack once; counted by a Backend wrapper around the
// real S3 backend. The read plan stays within its byte budget (counted, on a real local
// repository), and the restore's output is the source's, byte for byte.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Backend, Range } from '../src/backend/backend.js';
import { LocalBackend } from '../src/backend/local.js';
import { S3Backend } from '../src/backend/s3.js';
import { withRetry } from '../src/backend/retry.js';
import { parsePackName } from '../src/repo/layout.js';
import { Repository } from '../src/repo/repository.js';
import { checkRepository } from '../src/repo/check.js';
import { restoreSnapshot } from '../src/restore/restore.js';
import { ReadPlan } from '../src/restore/read-plan.js';
import { ReadForecast } from '../src/restore/read-forecast.js';
import type { BlobLocation } from '../src/repo/blob-index.js';
import { listFiles, sha256File } from './lib/files.js';
import { run, newRepo } from './lib/cli.js';
import { DEV_CREDENTIALS, devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

const PASSWORD = 'correct horse';

/** Every request the repository makes, by operation and object name. */
interface Counted {
  backend: Backend;
  gets: Array<{ name: string; range?: Range }>;
  others: string[];
  reset(): void;
}

function counting(inner: Backend, readConcurrency: number): Counted {
  const c: Counted = {
    gets: [],
    others: [],
    reset() {
      c.gets.length = 0;
      c.others.length = 0;
    },
    backend: {
      location: inner.location,
      readConcurrency,
      put: (n, d, o) => (c.others.push(`put ${n}`), inner.put(n, d, o)),
      get: (n, r, s) => (c.gets.push({ name: n, range: r }), inner.get(n, r, s)),
      head: (n) => (c.others.push(`head ${n}`), inner.head(n)),
      list: (p, s) => (c.others.push(`list ${p}`), inner.list(p, s)),
      delete: (n) => (c.others.push(`delete ${n}`), inner.delete(n)),
    } as Backend,
  };
  return c;
}

/** Directories of small files, a few nested, and two files of several chunks. */
function buildSource(root: string): void {
  for (let d = 0; d < 12; d++) {
    const dir = path.join(root, `d${d}`, d % 3 === 0 ? 'deeper/still' : '');
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 40; i++) writeFileSync(path.join(dir, `f${i}`), i % 2 ? randomBytes(3000 + i * 97) : Buffer.from(`text ${d} ${i}\n`.repeat(50 + i)));
  }
  writeFileSync(path.join(root, 'big1'), randomBytes(5 << 20));
  writeFileSync(path.join(root, 'd1', 'big2'), randomBytes(3 << 20));
}

function sameFiles(t: Test, a: string, b: string): void {
  const fa = listFiles(a);
  t.same(listFiles(b), fa, 'the same files');
  let differ = 0;
  for (const f of fa) if (sha256File(path.join(a, f)) !== sha256File(path.join(b, f))) differ++;
  t.equal(differ, 0, 'with the same bytes');
}

t.test('over S3: a restore reads each data pack with a few ranged GETs; check --read-data GETs each pack once', async (t) => {
  const server = await withDevServer(t, { buckets: ['plan'] });
  const env = devServerEnv(server);
  const src = tempDir(t);
  buildSource(src);
  const repoUrl = 's3://plan/repo';
  // Data packs of 2 MiB: the restore touches several.
  const init = run('tsbak', ['init', repoUrl, '--pack-size', '2'], env);
  t.equal(init.code, 0, init.stderr);
  const w = run('tsbak-write', [repoUrl, src], env);
  t.equal(w.code, 0, w.stderr);

  const s3 = withRetry(new S3Backend({ bucket: 'plan', prefix: 'repo', endpoint: server.url, forcePathStyle: true, region: 'us-east-1', credentials: DEV_CREDENTIALS }));
  const c = counting(s3, 12);
  const repo = await Repository.open(c.backend, { password: PASSWORD });
  await repo.loadIndex();
  const snap = await repo.findSnapshot('latest');
  const dataPacks = repo.index.packs.filter((p) => p.kind === 'data').length;
  t.ok(dataPacks >= 4, `several data packs (${dataPacks})`);

  c.reset();
  const target = tempDir(t);
  const res = await restoreSnapshot(repo, snap, { target });
  t.same(res.errors, [], 'no errors');
  sameFiles(t, src, path.join(target, src));

  const kindOf = (name: string) => parsePackName(name)?.kind ?? 'other';
  const dataGets = c.gets.filter((g) => kindOf(g.name) === 'data');
  const touched = new Set(dataGets.map((g) => g.name)).size;
  t.equal(touched, dataPacks, 'every data pack is read');
  t.ok(dataGets.length <= 3 * touched, `at most 3 GETs per data pack (${dataGets.length} for ${touched})`);
  t.ok(dataGets.every((g) => g.range), 'ranged GETs');
  const treeGets = c.gets.filter((g) => kindOf(g.name) === 'tree').length;
  const treePacks = repo.index.packs.filter((p) => p.kind === 'tree').length;
  // The root (loaded before the walk), then its children's neighbourhood: the rest comes from those bytes.
  t.ok(treeGets <= 1 + 2 * treePacks, `trees: ${treeGets} GETs for ${treePacks} tree pack(s) and ${res.dirs} directories`);
  t.equal(c.gets.length, dataGets.length + treeGets, 'nothing else read during the restore');
  t.equal(res.reads?.data, dataGets.length, 'the plan counts its reads');
  t.ok(res.reads!.peakBytes > 0 && res.reads!.peakBytes <= res.reads!.budgetBytes, `data held within the budget (${res.reads!.peakBytes} of ${res.reads!.budgetBytes})`);

  c.reset();
  const r = await checkRepository(repo, { readData: true });
  t.same(r.errors, [], 'check finds nothing wrong');
  const wholeGets = c.gets.filter((g) => kindOf(g.name) !== 'other' && !g.range);
  const packs = repo.index.packs.length;
  t.equal(wholeGets.length, packs, `one whole-pack GET per pack (${packs})`);
  t.equal(new Set(wholeGets.map((g) => g.name)).size, packs, 'each pack once');
  t.equal(c.gets.filter((g) => kindOf(g.name) === 'data').length, dataPacks, 'data packs: no GET but that one');
  await s3.close?.();
});

t.test('the read plan holds no more than its budget, and coalesces reads', async (t) => {
  const src = tempDir(t);
  buildSource(src);
  const repoDir = newRepo(t);
  const w = run('tsbak-write', [repoDir, src]);
  t.equal(w.code, 0, w.stderr);
  const backend = new LocalBackend(repoDir);
  const repo = await Repository.open(backend, { password: PASSWORD });
  await repo.loadIndex();
  const locs = [...repo.index.entries()].filter((e) => e.pack.kind === 'data');
  const budget = 512 << 10;
  const plan = new ReadPlan(repo, { concurrency: 2, gap: 64 << 10, span: 128 << 10, budget, readsInto: true });
  // Requests of a few blobs each, as the walk makes them; each checked against a read of
  // its own and let go once the check is done, in whatever order the reads come back.
  const pending: Array<Promise<void>> = [];
  let wrong = 0;
  let requests = 0;
  for (let i = 0; i < locs.length; i += 3) {
    // The small files' blobs (under 8 KiB): the large files' chunks lie far apart in their packs, whatever the chunker.
    const some = locs.slice(i, i + 3).filter((l) => l.length < 16 << 10);
    if (!some.length) continue;
    requests++;
    const { ready } = await plan.request(some);
    pending.push(
      ready.then(async (got) => {
        for (let k = 0; k < some.length; k++) {
          const l = some[k]!;
          const direct = await repo.readPackRange(l.pack, l.offset, l.length);
          if (!direct.equals(got.bytes.subarray(got.offsets[k]!, got.offsets[k]! + l.length))) wrong++;
        }
        plan.release(got);
      }),
    );
  }
  await Promise.all(pending);
  t.equal(wrong, 0, 'every blob has its bytes');
  t.ok(requests > 50, `many requests (${requests})`);
  t.ok(plan.reads < requests / 2, `fewer reads (${plan.reads}) than requests (${requests})`);
  t.ok(plan.peak <= plan.budget, `peak ${plan.peak} within the budget ${plan.budget}`);
  t.ok(plan.peak > budget / 4, 'the budget was what bounded it');
  t.equal(plan.held, 0, 'nothing held at the end');
});

t.test('a walk that waits on something else (a file slot, a tree) lets the reads of what it asked for start at once', async (t) => {
  // A source whose reads are answered when the test says: which reads are in flight is
  // known from events, not from time.
  const started: Array<{ offset: number; length: number; answer: () => void }> = [];
  let onStart: (() => void) | null = null;
  const src = {
    readPackRange: (_pack: unknown, offset: number, length: number) =>
      new Promise<Buffer>((resolve) => {
        started.push({ offset, length, answer: () => resolve(Buffer.alloc(length, 7)) });
        onStart?.();
      }),
  };
  const nextStart = () => new Promise<void>((r) => (onStart = r));
  const pack = { id: Buffer.alloc(32), kind: 'data', sealedKey: Buffer.alloc(32), indexFile: 'index/x', signer: null } as any;
  const loc = (offset: number) => ({ pack, offset, length: 100, rawLength: 100 });
  const plan = new ReadPlan(src as any, { concurrency: 4, gap: 1024, span: 1 << 20, budget: 64 << 20, readsInto: false });
  const turn = () => new Promise<void>((r) => setImmediate(r));

  const first = nextStart();
  const a = await plan.request([loc(0)]);
  await first;
  t.equal(started.length, 1, 'the first read started once the walk paused');
  const b = await plan.request([loc(100_000)]);
  await turn();
  await turn();
  t.equal(started.length, 1, 'a read that could still grow waits while another is in flight');
  let release!: () => void;
  const slot = new Promise<void>((r) => (release = r));
  const second = nextStart();
  const waited = plan.whileBlocked(slot);
  await second;
  t.same(
    started.map((s) => s.offset),
    [0, 100_000],
    'with the walk blocked, it starts beside the first',
  );
  for (const s of started) s.answer();
  release();
  await waited;
  plan.release(await a.ready);
  plan.release(await b.ready);
  t.equal(plan.held, 0, 'nothing held at the end');
});

t.test('over S3, packs of 16 MiB: the restore reads its data packs with a few ranged GETs each, its tree pack with one', async (t) => {
  const server = await withDevServer(t, { buckets: ['plan16'] });
  const env = devServerEnv(server);
  const src = tempDir(t);
  // ~26 MiB that does not compress: directories of small and medium files, and two large
  // files, so that the walk asks for a pack's blobs over many of its waits.
  for (let d = 0; d < 16; d++) {
    const dir = path.join(src, `d${d}`, d % 4 === 0 ? 'sub' : '');
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 60; i++) writeFileSync(path.join(dir, `f${i}`), randomBytes(i % 10 === 0 ? 200_000 + i * 1000 : 2000 + i * 131));
  }
  writeFileSync(path.join(src, 'd3', 'big'), randomBytes(6 << 20));
  writeFileSync(path.join(src, 'zbig'), randomBytes(5 << 20));
  const repoUrl = 's3://plan16/repo';
  const init = run('tsbak', ['init', repoUrl], env);
  t.equal(init.code, 0, init.stderr);
  const w = run('tsbak-write', [repoUrl, src], env);
  t.equal(w.code, 0, w.stderr);

  const s3 = withRetry(new S3Backend({ bucket: 'plan16', prefix: 'repo', endpoint: server.url, forcePathStyle: true, region: 'us-east-1', credentials: DEV_CREDENTIALS }));
  const c = counting(s3, 12);
  const repo = await Repository.open(c.backend, { password: PASSWORD });
  // As the CLI does: trees kept on disk, tree packs fetched whole.
  repo.useTreeCache(tempDir(t));
  await repo.loadIndex();
  const snap = await repo.findSnapshot('latest');
  const packs = repo.index.packs;
  const size = new Map<string, number>();
  for (const e of repo.index.entries()) {
    const k = e.pack.id.toString('hex');
    size.set(k, Math.max(size.get(k) ?? 0, e.offset + e.length));
  }
  t.ok([...size.values()].some((n) => n > 12 << 20), 'a data pack of more than 12 MiB');

  c.reset();
  const target = tempDir(t);
  const res = await restoreSnapshot(repo, snap, { target });
  t.same(res.errors, [], 'no errors');
  sameFiles(t, src, path.join(target, src));

  const byPack = new Map<string, number>();
  for (const g of c.gets) byPack.set(g.name, (byPack.get(g.name) ?? 0) + 1);
  const kindOf = (name: string) => parsePackName(name)?.kind ?? 'other';
  const data = [...byPack].filter(([n]) => kindOf(n) === 'data');
  t.equal(data.length, packs.filter((p) => p.kind === 'data').length, 'every data pack is read');
  const bytesRead = new Map<string, number>();
  for (const g of c.gets) bytesRead.set(g.name, (bytesRead.get(g.name) ?? 0) + (g.range?.length ?? 0));
  const perPack = data.map(([name, n]) => `${n} of ${name.slice(-8)} (${bytesRead.get(name)} B read of ${[...size].find(([k]) => name.includes(k))?.[1]})`).join(', ');
  // How many GETs a pack takes depends on when the walk pauses and on the room left in the
  // budget (2 to 6 per pack here, about 3 on the benchmark's corpus: docs/PERFORMANCE.md).
  // What does not: reads are coalesced, far from one per blob.
  const blobs = [...repo.index.entries()].filter((e) => e.pack.kind === 'data').length;
  const dataGets = data.reduce((s, [, n]) => s + n, 0);
  t.ok(dataGets * 20 <= blobs, `${dataGets} GETs for ${blobs} blobs: ${perPack}`);
  const trees = [...byPack].filter(([n]) => kindOf(n) === 'tree');
  for (const [name, n] of trees) t.equal(n, 1, `one GET of tree pack ${name.slice(-12)}: the root's, whole`);
  t.equal(c.gets.length, data.reduce((s, [, n]) => s + n, 0) + trees.length, 'nothing else read during the restore');
  t.ok(res.reads!.peakBytes <= res.reads!.budgetBytes, `data held within the budget (${res.reads!.peakBytes} of ${res.reads!.budgetBytes})`);
  await s3.close?.();
});

/** A pack source whose bytes say where they are (each 4-byte word its offset), answering `turns` turns of the event loop late. */
function patternSource(turns = 0): { reads: Array<{ offset: number; length: number }>; readPackRange: (pack: unknown, offset: number, length: number) => Promise<Buffer> } {
  const reads: Array<{ offset: number; length: number }> = [];
  return {
    reads,
    readPackRange: async (_pack: unknown, offset: number, length: number) => {
      reads.push({ offset, length });
      for (let k = 0; k < turns; k++) await new Promise((r) => setImmediate(r));
      const b = Buffer.alloc(length);
      for (let i = 0; i < length; i += 4) b.writeUInt32LE((offset + i) >>> 0, i);
      return b;
    },
  };
}

/** Asks the plan for `order`, `per` blobs a request, as a walk does; how many blobs came back with wrong bytes. */
async function walkPattern(plan: ReadPlan, order: BlobLocation[], per: number): Promise<number> {
  let wrong = 0;
  const pending: Array<Promise<void>> = [];
  for (let i = 0; i < order.length; i += per) {
    const some = order.slice(i, i + per);
    const { ready } = await plan.request(some);
    pending.push(
      ready.then((got) => {
        some.forEach((l, k) => {
          if (got.bytes.readUInt32LE(got.offsets[k]!) !== l.offset) wrong++;
        });
        plan.release(got);
      }),
    );
  }
  await Promise.all(pending);
  return wrong;
}

t.test('with a forecast, reads go ahead of the walk by pack and requests are served from what they brought', async (t) => {
  const src = patternSource();
  const reads = src.reads;
  const pack = { id: Buffer.alloc(32), kind: 'data', sealedKey: Buffer.alloc(32), indexFile: 'index/x', signer: null } as any;
  // 2000 blobs of 4 KiB back to back (8 MB), asked for in an order a little off the pack's.
  const locs = Array.from({ length: 2000 }, (_, i) => ({ pack, offset: i * 4096, length: 4096, rawLength: 4096 }));
  const forecast = new ReadForecast();
  for (const l of locs) forecast.add(l);
  const plan = new ReadPlan(src as any, { concurrency: 12, gap: 1 << 20, span: 2 << 20, budget: 16 << 20, readsInto: false }, forecast);
  plan.foreseen(true);
  const order = locs.map((l, i) => ({ l, k: i + ((i * 7919) % 13) })).sort((a, b) => a.k - b.k).map((x) => x.l);
  const wrong = await walkPattern(plan, order, 5);
  t.equal(wrong, 0, 'every blob has its bytes');
  t.ok(reads.length <= 5, `8 MB in ${reads.length} reads of at most 2 MiB`);
  t.equal(reads.reduce((s, r) => s + r.length, 0), 2000 * 4096, 'each byte read once');
  t.ok(plan.peak <= plan.budget, `peak ${plan.peak} within the budget ${plan.budget}`);
  plan.dropStash();
  t.equal(plan.held, 0, 'nothing held at the end');
});

t.test('with a forecast, reads ahead go in the order the walk asks, not the pack\'s: bytes wanted first are not pushed out by bytes wanted last', async (t) => {
  // Answered some turns of the event loop later, as a network would be: the walk goes on meanwhile.
  const src = patternSource(50);
  const reads = src.reads;
  const pack = { id: Buffer.alloc(32), kind: 'data', sealedKey: Buffer.alloc(32), indexFile: 'index/x', signer: null } as any;
  // 24 MiB of 64 KiB blobs; the walk asks for the second half of the pack first (a backup
  // wrote those files first), in requests of 4 blobs.
  const locs = Array.from({ length: 384 }, (_, i) => ({ pack, offset: i << 16, length: 1 << 16, rawLength: 1 << 16 }));
  const order = [...locs.slice(192), ...locs.slice(0, 192)];
  const forecast = new ReadForecast();
  for (const l of order) forecast.add(l);
  const plan = new ReadPlan(src as any, { concurrency: 12, gap: 1 << 20, span: 2 << 20, budget: 16 << 20, readsInto: false }, forecast);
  plan.foreseen(true);
  t.ok(reads.length > 0 && reads[0]!.offset >= 192 << 16, `the first read ahead is where the walk starts (${reads[0]?.offset})`);
  const wrong = await walkPattern(plan, order, 4);
  t.equal(wrong, 0, 'every blob has its bytes');
  const bytes = reads.reduce((s, r) => s + r.length, 0);
  t.equal(bytes, 384 << 16, `each byte read once: ${bytes} bytes in ${reads.length} reads`);
  t.ok(plan.peak <= plan.budget, `peak ${plan.peak} within the budget ${plan.budget}`);
  plan.dropStash();
  t.equal(plan.held, 0, 'nothing held at the end');
});

t.test('a forecast blob larger than reads ahead may hold does not stop the reads ahead after it', async (t) => {
  const src = patternSource();
  const reads = src.reads;
  const pack = { id: Buffer.alloc(32), kind: 'data', sealedKey: Buffer.alloc(32), indexFile: 'index/x', signer: null } as any;
  // A 9 MiB blob (more than half the 16 MiB budget) whose file the walk never asks for (it
  // failed), then 64 blobs of 64 KiB after it in the pack.
  const big = { pack, offset: 0, length: 9 << 20, rawLength: 9 << 20 };
  const small = Array.from({ length: 64 }, (_, i) => ({ pack, offset: (16 << 20) + (i << 16), length: 1 << 16, rawLength: 1 << 16 }));
  const forecast = new ReadForecast();
  for (const l of [big, ...small]) forecast.add(l);
  const plan = new ReadPlan(src as any, { concurrency: 12, gap: 1 << 20, span: 2 << 20, budget: 16 << 20, readsInto: false }, forecast);
  plan.foreseen(true);
  t.ok(reads.length > 0, 'reads ahead started before the walk asked for anything');
  t.ok(reads.every((r) => r.offset >= 16 << 20), `none of them for the blob too large to read ahead (${JSON.stringify(reads.slice(0, 3))})`);
  const wrong = await walkPattern(plan, small, 4);
  t.equal(wrong, 0, 'every blob asked for has its bytes');
  t.equal(reads.reduce((s, r) => s + r.length, 0), 64 << 16, 'the small blobs read once, the large one never');
  plan.dropStash();
  t.equal(plan.held, 0, 'nothing held at the end');
});

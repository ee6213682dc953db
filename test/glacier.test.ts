// src/glacier: policy, cost model, the disk cache of packs, the restore tracker and its
// journal, and the Repository's cold-storage API (blobState, fileState, warmBlobs,
// waitForBlobs, coldStatus, loadBlob on cold packs) against a real S3 server process
// (s3rver behind our Glacier proxy, scripts/s3-dev-server.mjs). No mocks.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { S3Backend } from '../src/backend/s3.js';
import { withRetry } from '../src/backend/retry.js';
import { Repository } from '../src/repo/repository.js';
import { backup } from '../src/writer/backup.js';
import { TsbakError } from '../src/errors.js';
import { attachColdStorage, GlacierColdStore, RestorePendingError } from '../src/glacier/cold-store.js';
import { RestoreTracker, commonDir } from '../src/glacier/tracker.js';
import { PackCache } from '../src/repo/pack-cache.js';
import { estimateBackupCost, estimateRestoreCost, fmtUsd, GB, monthlyStorageUsd } from '../src/glacier/cost.js';
import { checkRestoreRequest, expectedRestoreMs, isColdClass, parseTier, tiersFor } from '../src/glacier/policy.js';
import { DEV_CREDENTIALS, withDevServer, type DevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

process.env.TSBAK_FAST_KDF = '1';

// The server's clock is manual: restores complete when the test says so, and time passes
// (restored copies expire) only when the test advances it, on the server and, by `now`,
// for the trackers and stores here. A day is long against the test's run time.
const DAY_MS = 6 * 3_600_000;
let shiftMs = 0;
const now = () => Date.now() + shiftMs;
async function advance(ms: number): Promise<void> {
  await server.advance(ms);
  shiftMs += ms;
}

const server: DevServer = await withDevServer(t, { manualClock: true, dayMs: DAY_MS, buckets: ['gl'] });

const backends: S3Backend[] = [];
t.teardown(async () => {
  for (const b of backends) await b.close();
});
function s3(prefix: string) {
  const b = new S3Backend({ bucket: 'gl', prefix, endpoint: server.url, region: 'us-east-1', credentials: DEV_CREDENTIALS });
  backends.push(b);
  return withRetry(b, { baseMs: 50 });
}
const stats = () => server.stats();
const resetStats = () => server.resetStats();
async function restores(): Promise<number> {
  const s = await stats();
  return s.requests.RestoreObject ?? 0;
}

t.test('policy', async (t) => {
  t.ok(isColdClass('GLACIER'));
  t.ok(isColdClass('DEEP_ARCHIVE'));
  for (const c of ['STANDARD', 'STANDARD_IA', 'GLACIER_IR']) t.notOk(isColdClass(c), c);
  t.same(tiersFor('DEEP_ARCHIVE'), ['Standard', 'Bulk']);
  t.same(tiersFor('GLACIER'), ['Expedited', 'Standard', 'Bulk']);
  t.equal(expectedRestoreMs('DEEP_ARCHIVE', 'Standard'), 12 * 3600_000);
  t.equal(expectedRestoreMs('DEEP_ARCHIVE', 'Bulk'), 48 * 3600_000);
  t.equal(expectedRestoreMs('GLACIER', 'Expedited'), 5 * 60_000);
  t.throws(() => checkRestoreRequest('DEEP_ARCHIVE', 'Expedited', 7), { code: 'USAGE' });
  t.throws(() => checkRestoreRequest('GLACIER', 'Bulk', 0), { code: 'USAGE' });
  t.equal(parseTier('bulk', 'Standard'), 'Bulk');
  t.equal(parseTier(undefined, 'Standard'), 'Standard');
  t.throws(() => parseTier('fast', 'Standard'), { code: 'USAGE' });
});

t.test('cost model', async (t) => {
  // 1 TB in Deep Archive, 64 MiB packs: storage + 40 KB per object overhead.
  const tb = 1024 * GB;
  const objects = tb / (64 << 20);
  const m = monthlyStorageUsd('DEEP_ARCHIVE', tb, objects);
  const expected = 1024 * 0.00099 + ((objects * 32 * 1024) / GB) * 0.00099 + ((objects * 8 * 1024) / GB) * 0.023;
  t.ok(Math.abs(m - expected) < 1e-9, `DA 1 TB: ${m}`);
  t.ok(m > 1.01 && m < 1.03, 'about $1.02 a month');
  t.ok(Math.abs(monthlyStorageUsd('STANDARD', tb, objects) - 1024 * 0.023) < 1e-9, 'no overhead for STANDARD');
  // Small objects in GLACIER_IR are billed at 128 KB.
  t.ok(Math.abs(monthlyStorageUsd('GLACIER_IR', 1000, 10) - ((10 * 128 * 1024) / GB) * 0.004) < 1e-12);

  const b = estimateBackupCost({ storageClass: { data: 'DEEP_ARCHIVE', tree: 'STANDARD', other: 'STANDARD' } }, [
    { bytes: 64 << 20, kind: 'data' },
    { bytes: 64 << 20, kind: 'data' },
    { bytes: 1 << 20, kind: 'tree' },
    { bytes: 10_000, kind: 'index' },
    { bytes: 600, kind: 'snapshot' },
  ]);
  t.equal(b.byClass.DEEP_ARCHIVE?.objects, 2);
  t.equal(b.byClass.STANDARD?.objects, 3);
  t.ok(Math.abs(b.requestsUsd - (2 * 0.05 + 3 * 0.005) / 1000) < 1e-12, 'PUT prices per class');
  t.ok(Math.abs(b.monthlyUsd - (b.byClass.DEEP_ARCHIVE!.monthlyUsd + b.byClass.STANDARD!.monthlyUsd)) < 1e-12);
  t.ok(Math.abs(b.minimumCommitmentUsd - (b.byClass.DEEP_ARCHIVE!.monthlyUsd * 6 + 0)) < 1e-12, '180 days of Deep Archive');

  const bulk = estimateRestoreCost('DEEP_ARCHIVE', 'Bulk', 16384, tb, 7);
  t.ok(Math.abs(bulk.retrievalUsd - 1024 * 0.0025) < 1e-9, 'DA Bulk $0.0025/GB');
  t.ok(Math.abs(bulk.requestsUsd - 16.384 * 0.025) < 1e-9, 'DA Bulk $0.025 per 1000');
  t.ok(Math.abs(bulk.transferUsd - 1024 * 0.09) < 1e-9, 'transfer out $0.09/GB');
  t.equal(bulk.hoursHigh, 48);
  const std = estimateRestoreCost('DEEP_ARCHIVE', 'Standard', 16384, tb, 7);
  t.ok(Math.abs(std.retrievalUsd - 1024 * 0.02) < 1e-9, 'DA Standard $0.02/GB');
  t.equal(std.hoursHigh, 12);
  t.equal(estimateRestoreCost('GLACIER', 'Bulk', 100, tb).retrievalUsd, 0, 'Glacier Bulk retrieval is free');
  t.ok(Math.abs(estimateRestoreCost('GLACIER', 'Expedited', 1000, GB).requestsUsd - 10) < 1e-9, 'Expedited $10 per 1000');
  t.equal(estimateRestoreCost('STANDARD', 'Standard', 10, GB).requestsUsd, 0, 'no restore for STANDARD');
  t.equal(fmtUsd(0), '$0');
  t.equal(fmtUsd(1.234), '$1.23');
  t.equal(fmtUsd(0.0000061), '$0.0000061');
  t.equal(fmtUsd(12345), '$12,345');
});

t.test('disk cache of packs: bounded, LRU, survives restarts, atomic files', async (t) => {
  const dir = path.join(tempDir(t), 'packs');
  const name = (i: number) => `packs/data/${String(i).padStart(2, '0')}/${String(i).padStart(64, '0')}`;
  const c = new PackCache(dir, 1000);
  const data = [0, 1, 2, 3].map(() => randomBytes(300));
  await c.put(name(0), data[0]!);
  await c.put(name(1), data[1]!);
  await c.put(name(2), data[2]!);
  t.equal(c.usedBytes, 900);
  t.same(await c.read(name(0), { offset: 10, length: 20 }), data[0]!.subarray(10, 30), 'range read');
  // 0 was used last: putting 3 evicts 1, the least recently used.
  await c.put(name(3), data[3]!);
  t.ok(c.has(name(0)));
  t.notOk(c.has(name(1)), 'the least recently used pack was evicted');
  t.ok(c.has(name(2)));
  t.equal(c.usedBytes, 900);
  t.equal(readdirSync(dir).length, 3, 'evicted files are deleted; no temporary files left');
  t.equal(await c.read(name(1), { offset: 0, length: 1 }), null, 'a miss');
  t.equal(await c.read(name(2), { offset: 290, length: 20 }), null, 'a range past the end is a miss (and drops the file)');
  t.notOk(c.has(name(2)));

  // A restart sees the files; the LRU order comes from mtimes.
  const old = new Date(Date.now() - 3600_000);
  utimesSync(path.join(dir, PackCache.key(name(3))), old, old);
  const c2 = new PackCache(dir, 1000);
  t.equal(c2.count, 2);
  t.same(await c2.read(name(0)), data[0], 'whole pack after restart');
  await c2.put(name(1), randomBytes(300));
  await c2.put(name(2), randomBytes(300));
  t.notOk(c2.has(name(3)), 'oldest mtime evicted first after a restart');
  t.ok(c2.has(name(0)));
  // A pack larger than the bound is kept (it is being read), the others go.
  await c2.put(name(4), randomBytes(1500));
  t.ok(c2.has(name(4)));
  t.equal(c2.count, 1);
  // Another process's file is adopted on a miss.
  writeFileSync(path.join(dir, PackCache.key(name(5))), randomBytes(10));
  t.ok(c2.has(name(5)));
});

t.test('restore tracker: journal survives a restart; no request is repeated', async (t) => {
  const backend = s3('tracker');
  const names = [0, 1, 2].map((i) => `packs/data/0${i}/${String(i).repeat(64)}`);
  for (const n of names) await backend.put(n, randomBytes(1000), { storageClass: 'DEEP_ARCHIVE' });
  await backend.put('packs/data/09/' + '9'.repeat(64), randomBytes(10), { storageClass: 'STANDARD' });
  const file = path.join(tempDir(t), 'repo', 'restores.jsonl');
  const pk = (n: string) => ({ name: n, bytes: 1000, storageClass: 'DEEP_ARCHIVE' as const });

  const before = await restores();
  const a = new RestoreTracker(file, backend, { reloadMs: 0, now });
  t.equal(a.get(names[0]!), undefined);
  t.equal(await a.request(pk(names[0]!), 'Bulk', 1), true, 'sent');
  // Concurrent requests for one pack: one RestoreObject.
  const both = await Promise.all([a.request(pk(names[1]!), 'Bulk', 1), a.request(pk(names[1]!), 'Bulk', 1)]);
  t.same(both.sort(), [false, true]);
  t.equal(await a.request(pk(names[0]!), 'Bulk', 1), false, 'already requested: nothing sent');
  a.flush();
  t.equal((await restores()) - before, 2);
  const r0 = a.get(names[0]!)!;
  t.equal(r0.phase, 'requested');
  t.equal(r0.tier, 'Bulk');
  t.equal(r0.expectedBy! - r0.requestedAt!, 48 * 3600_000, 'expected by: Deep Archive Bulk, 48 h');

  // "Restart": a new tracker over the same journal.
  const b = new RestoreTracker(file, backend, { reloadMs: 0, now });
  t.equal(b.get(names[0]!)?.phase, 'requested', 'remembered');
  t.equal(b.get(names[0]!)?.requestedAt, r0.requestedAt);
  t.equal(await b.request(pk(names[0]!), 'Bulk', 1), false, 'not requested again after a restart');
  t.equal(await b.request(pk(names[1]!), 'Standard', 1), false);
  t.equal((await restores()) - before, 2, 'no new RestoreObject');

  // Lines another process appends are seen.
  t.equal(await a.request(pk(names[2]!), 'Standard', 1), true);
  t.equal(b.get(names[2]!)?.phase, 'requested', 'the other tracker sees the new line');

  // HEAD: in progress, then available with an expiry, then (expired) cold.
  await b.refresh(names.map(pk));
  t.equal(b.get(names[0]!)?.phase, 'in-progress');
  t.ok((await server.completeRestores()) >= 1);
  await b.refresh(names.map(pk), { totalPacks: 4 }); // 3 of 4: one listing instead of 3 HEADs
  const avail = b.get(names[0]!)!;
  t.equal(avail.phase, 'available');
  t.ok(avail.expiry! > now(), 'expiry in the future');
  // A restored object: RestoreObject answers 200; tracked as available, not as a new restore.
  const c = new RestoreTracker(file, backend, { reloadMs: 0, now });
  t.equal(c.get(names[0]!)?.phase, 'available', 'available after a restart too');
  // 409 RestoreAlreadyInProgress and 200 are normal: a tracker with no journal.
  const fresh = new RestoreTracker(path.join(tempDir(t), 'x', 'restores.jsonl'), backend, { reloadMs: 0, now });
  t.equal(await fresh.request(pk(names[0]!), 'Bulk', 1), true);
  t.equal(fresh.get(names[0]!)?.phase, 'available', '200: already restored');
  // A class without restores (403 InvalidObjectState): readable, available.
  const hot = { name: 'packs/data/09/' + '9'.repeat(64), bytes: 10, storageClass: 'DEEP_ARCHIVE' as const };
  t.equal(await fresh.request(hot, 'Bulk', 1), true);
  t.equal(fresh.get(hot.name)?.phase, 'available');
  t.equal(fresh.get(hot.name)?.expiry, undefined);

  // Expiry: after the (scaled) day passes, the copy is gone and the pack is cold again.
  // The 200 answer above extended the copy's expiry on the server (as AWS does), so wait
  // for the later of the two (the header has whole seconds: one more second of margin).
  const serverExpiry = (await backend.head(names[0]!))?.restore?.expiry?.getTime() ?? 0;
  await advance(Math.max(avail.expiry!, serverExpiry + 1000) - now() + 100);
  t.equal(c.get(names[0]!)?.phase, 'cold', 'known expiry passed: cold without asking S3');
  await c.refreshOne(pk(names[0]!));
  t.equal(c.get(names[0]!)?.phase, 'cold', 'HEAD agrees');
  const n0 = await restores();
  t.equal(await c.request(pk(names[0]!), 'Bulk', 1), true, 'requested again once expired');
  t.equal((await restores()) - n0, 1);

  t.equal(commonDir(['packs/data/00/a', 'packs/data/01/b']), 'packs/data/');
  t.equal(commonDir(['packs/data/00/a', 'packs/data/00/b']), 'packs/data/00/');
});

t.test('a journal with many superseded lines is compacted on open', async (t) => {
  const backend = s3('compact');
  const n = 'packs/data/aa/' + 'a'.repeat(64);
  await backend.put(n, randomBytes(100), { storageClass: 'GLACIER' });
  const file = path.join(tempDir(t), 'r', 'restores.jsonl');
  const lines = Array.from({ length: 100 }, (_, i) => JSON.stringify({ pack: n, phase: i % 2 ? 'requested' : 'in-progress', class: 'GLACIER', bytes: 100, tier: 'Bulk', requestedAt: new Date().toISOString(), at: new Date().toISOString() }));
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, lines.join('\n') + '\n{"pack": "torn');
  const tr = new RestoreTracker(file, backend);
  t.equal(tr.get(n)?.phase, 'requested', 'the last whole line wins; a torn line is ignored');
  t.equal(readFileSync(file, 'utf8').trim().split('\n').length, 1, 'compacted to one line');
});

t.test('Repository cold API: blobState, fileState, loadBlob, warmBlobs, waitForBlobs, coldStatus', async (t) => {
  const backend = s3('repo-api');
  const repo = await Repository.init(backend, 'pw', { packSize: { data: 1 << 20, tree: 1 << 20 }, storageClass: { data: 'DEEP_ARCHIVE', tree: 'STANDARD', other: 'STANDARD' } });
  const src = tempDir(t);
  // a.bin: over a 4 MiB chunk, so 2 packs or more. b.bin comes in a second backup, so its
  // chunks are in packs of their own (files of one backup share packs in any order).
  const files: Record<string, Buffer> = { 'a.bin': randomBytes(6 << 20), 'b.bin': randomBytes(2 << 20), 'c.txt': Buffer.from('hello\n') };
  for (const n of ['a.bin', 'c.txt']) writeFileSync(path.join(src, n), files[n]!);
  await backup(repo, { paths: [src], cacheDir: null });
  writeFileSync(path.join(src, 'b.bin'), files['b.bin']!);
  const res = await backup(repo, { paths: [src], cacheDir: null });
  const cacheDir = tempDir(t);

  const open = async () => {
    const r = await Repository.open(backend, { password: 'pw' });
    const logs: string[] = [];
    const store = attachColdStorage(r, { cacheDir, log: (m) => logs.push(m), now })!;
    r.configureCold({ tier: 'Standard', days: 2, pollMs: 200 });
    await r.loadIndex();
    return { r, store, logs };
  };
  const { r, store, logs } = await open();
  t.ok(store instanceof GlacierColdStore);
  t.equal(store.options.days, 2, 'configureCold reaches the store');
  const snap = await r.loadSnapshot(res.snapshotId);
  // Find the files' nodes: the tree is /<src path components>/<files>.
  let tree = await r.loadTree(Buffer.from(snap.info.tree, 'hex'));
  for (const comp of src.split('/').filter(Boolean)) tree = await r.loadTree(tree.nodes.find((n) => n.name.toString() === comp)!.subtree!);
  const node = (name: string) => tree.nodes.find((n) => n.name.toString() === name)!;
  const a = node('a.bin').content!;
  const all = [...a, ...node('b.bin').content!, ...node('c.txt').content!];
  const packs = r.packsOf(all);
  t.ok(packs.length >= 3, `${packs.length} data packs`);
  t.ok(packs.every((p) => p.storageClass === 'DEEP_ARCHIVE' && p.bytes > 0));

  t.equal(await r.blobState(Buffer.from(snap.info.tree, 'hex')), 'hot', 'trees are hot');
  t.equal(await r.blobState(a[0]!), 'cold');
  t.equal(await r.fileState(a), 'cold');
  t.equal(await r.fileState([]), 'hot', 'an empty file');

  // Reading a cold blob: ColdError naming the pack; the restore is requested once.
  await resetStats();
  const err1 = await r.loadBlob(a[0]!).catch((e) => e);
  t.ok(err1 instanceof TsbakError && err1.code === 'COLD', 'COLD');
  t.ok(err1 instanceof RestorePendingError);
  const pack0 = r.packsOf([a[0]!])[0]!.name;
  t.same(err1.objects, [pack0], 'names the object');
  t.match(err1.message, /restore requested .* expected by/);
  t.equal(await restores(), 1, 'one RestoreObject');
  t.match(logs.join('\n'), /requested restore of packs\/data/);
  const err2 = await r.loadBlob(a[0]!).catch((e) => e);
  t.equal(err2.code, 'COLD');
  t.equal(await restores(), 1, 'asked again: no new request');
  t.equal(await r.blobState(a[0]!), 'restoring');
  t.equal(await r.fileState(all), 'cold', 'coldest chunk wins');

  const st = r.coldStatus();
  t.equal(st.length, 1);
  t.equal(st[0]!.pack, pack0);
  t.equal(st[0]!.state, 'restoring');
  t.equal(st[0]!.tier, 'Standard');
  t.ok(st[0]!.requestedAt && st[0]!.expectedBy && st[0]!.expectedBy > st[0]!.requestedAt);

  // Warm everything: only the packs not yet requested; then idempotent.
  const w1 = await r.warmBlobs(all, { tier: 'Bulk', days: 1 });
  t.equal(w1.packs, packs.length);
  t.equal(w1.requested, packs.length - 1);
  t.ok(w1.bytes >= 5 << 20);
  t.equal(await restores(), packs.length);
  const w2 = await r.warmBlobs(all, { tier: 'Bulk', days: 1 });
  t.equal(w2.requested, 0, 'warm twice: no new requests');
  t.equal(await restores(), packs.length);
  t.equal(r.coldStatus().length, packs.length);

  // A restart of the process: the journal says requested.
  {
    const again = await open();
    t.equal(await again.r.blobState(a[0]!), 'restoring');
    t.equal((await again.r.warmBlobs(all)).requested, 0, 'no repeat after a restart');
    t.equal(await restores(), packs.length);
  }

  // Waiting: the restores complete once it has reported progress (it is polling).
  const progress: number[] = [];
  let completing: Promise<number> | undefined;
  const waited = r.waitForBlobs(all, { pollMaxMs: 200, onProgress: (p) => {
    progress.push(p.ready);
    completing ??= server.completeRestores();
  } });
  t.equal(await waited, true);
  t.ok((await completing)! >= packs.length, 'it waited for every restore');
  t.equal(progress[0], 0, 'nothing was ready before');
  t.equal(progress[progress.length - 1], packs.length);
  t.equal(await r.blobState(a[0]!), 'available');

  // Available: the first read fetches the whole pack into the disk cache, then serves.
  await resetStats();
  const got = Buffer.concat(await Promise.all(a.map((id) => r.loadBlob(id))));
  t.same(got, files['a.bin'], 'bytes of a.bin');
  const s1 = await stats();
  t.equal(s1.requests.GetObject, r.packsOf(a).length, 'one GET per pack, however many chunks');
  t.equal(await r.blobState(a[0]!), 'cached');
  t.equal(r.coldStatus().find((s) => s.pack === pack0)?.state, 'cached');

  // A new process (empty memory cache) reads from the disk cache: no S3 request at all.
  const later = await open();
  await resetStats();
  t.same(Buffer.concat(await Promise.all(a.map((id) => later.r.loadBlob(id)))), files['a.bin']);
  t.equal((await stats()).total, 0, 'served from the local disk cache');
  t.equal(await later.r.fileState(a), 'cached');
  t.ok(existsSync(path.join(cacheDir, r.id, 'packs')));

  // A damaged cache file is dropped and the pack read again from S3 (still restored).
  const cached = readdirSync(path.join(cacheDir, r.id, 'packs'));
  const victim = path.join(cacheDir, r.id, 'packs', cached[0]!);
  const orig = readFileSync(victim);
  const bad = Buffer.from(orig);
  for (let i = 0; i < bad.length; i += 512) bad[i] ^= 0xff;
  writeFileSync(victim, bad);
  const third = await open();
  t.same(Buffer.concat(await Promise.all(a.map((id) => third.r.loadBlob(id)))), files['a.bin'], 'healed from S3');
  t.same(readFileSync(victim), orig, 'the cache file was replaced');

  // Expiry (scaled days): restored copies go away; uncached packs are cold again.
  const b = node('b.bin').content!;
  const bPacks = r.packsOf(b).filter((p) => !r.packsOf(a).some((q) => q.name === p.name));
  t.ok(bPacks.length > 0);
  const exp = Math.max(...r.coldStatus().filter((s) => bPacks.some((p) => p.name === s.pack)).map((s) => Date.parse(s.expiry!)));
  await advance(exp - now() + 100);
  const bOnly = b.filter((id) => bPacks.some((p) => p.name === r.packsOf([id])[0]!.name));
  t.equal(await r.blobState(bOnly[0]!), 'cold', 'expired: cold again');
  t.equal(await r.blobState(a[0]!), 'cached', 'cached packs stay readable locally');
  await resetStats();
  const expired = await r.loadBlob(bOnly[0]!).catch((e) => e);
  t.equal(expired.code, 'COLD', expired.message);
  t.equal(await restores(), 1, 'a read requests it again');
  t.same(Buffer.concat(await Promise.all(a.map((id) => r.loadBlob(id)))), files['a.bin'], 'cached data still reads');
});

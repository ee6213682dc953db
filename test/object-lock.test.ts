// S3 Object Lock (issue 19, WORM) on the dev server: tsbak-write --lock-days puts a retention
// on every object the snapshot needs (earlier packs and index files extended), S3 refuses to
// delete or overwrite them, forget keeps and shows a locked snapshot, prune keeps a locked pack
// and, once the server's clock is past the date, deletes it. Locks expire by the dev server's
// clock (--manual-clock, /__dev/advance); tsbak reads the time from S3's Date header.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { writeFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { S3Client, CreateBucketCommand, DeleteObjectCommand, PutObjectCommand, PutObjectRetentionCommand, GetObjectRetentionCommand } from '@aws-sdk/client-s3';
import type { Backend } from '../src/backend/backend.js';
import { withRetry } from '../src/backend/retry.js';
import { S3Backend } from '../src/backend/s3.js';
import { lastJson, run } from './lib/cli.js';
import { checkAgainstDoc } from './lib/json-doc.js';
import { DEV_CREDENTIALS, devFetch, devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

const DAY = 86_400_000;
const server = await withDevServer(t, { buckets: ['plain'], manualClock: true });
const env = devServerEnv(server);
const S3 = ['--s3-endpoint', server.url, '--s3-path-style'];
const client = new S3Client({ endpoint: server.url, region: 'us-east-1', forcePathStyle: true, credentials: DEV_CREDENTIALS });
t.teardown(() => client.destroy());
await client.send(new CreateBucketCommand({ Bucket: 'wormbucket', ObjectLockEnabledForBucket: true }));

// Retried: its kept-alive sockets sit idle while the CLI runs, and the server may close them.
const backend = (bucket: string, prefix: string) => withRetry(new S3Backend({ bucket, prefix, endpoint: server.url, region: 'us-east-1', credentials: DEV_CREDENTIALS, forcePathStyle: true }), { baseMs: 10 });
async function names(b: Backend, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of b.list(prefix)) out.push(o.name);
  return out.sort();
}
type LockState = { retention: Record<string, { mode: string; until: string; in_force: boolean }> };
const lockState = async () => (await (await devFetch(`${server.url}/__dev/object-lock`)).json()) as LockState;

t.test('--lock-days is refused, before anything is written, where Object Lock is not', async (t) => {
  t.equal(run('tsbak', ['init', 's3://plain/r', ...S3], env).code, 0);
  const src = tempDir(t);
  writeFileSync(path.join(src, 'f'), 'x');
  const w = run('tsbak-write', ['s3://plain/r', src, '--lock-days', '3', ...S3], env);
  t.equal(w.code, 2, w.stderr);
  t.match(w.stderr, /does not have Object Lock enabled/);
  t.equal(w.stderr.trim().split('\n').length, 1, 'one line');
  const b = backend('plain', 'r');
  t.teardown(() => b.close?.());
  t.same([...(await names(b, 'packs/')), ...(await names(b, 'index/')), ...(await names(b, 'snapshots/')), ...(await names(b, 'locks/'))], [], 'nothing written');
  const local = path.join(tempDir(t), 'repo');
  t.equal(run('tsbak', ['init', local], {}).code, 0);
  const l = run('tsbak-write', [local, src, '--lock-days', '3'], {});
  t.equal(l.code, 2);
  t.match(l.stderr, /need S3 Object Lock.*not on S3/);
  t.match(run('tsbak-write', [local, src, '--lock-days', '0'], {}).stderr, /--lock-days "0": give a whole number/);
  t.match(run('tsbak-write', [local, src, '--lock-days', '2', '--lock-until', '2030-01-01'], {}).stderr, /not both/);
});

t.test('locked backups: every object locked, deletes refused, forget and prune respect the date', async (t) => {
  const repo = 's3://wormbucket/r';
  const b = backend('wormbucket', 'r');
  t.teardown(() => b.close?.());
  t.equal(run('tsbak', ['init', repo, ...S3], env).code, 0);
  const src = tempDir(t);
  writeFileSync(path.join(src, 'a'), randomBytes(100_000));
  const w1 = run('tsbak-write', [repo, src, '--json', ...S3], env);
  t.equal(w1.code, 0, w1.stderr);
  const s1 = lastJson(w1.stdout).snapshot_id as string;
  t.equal(lastJson(w1.stdout).lock, null);
  const packs1 = await names(b, 'packs/');

  // Second backup, locked: a new file in its own pack; a's pack (written unlocked) is reused.
  writeFileSync(path.join(src, 'b'), randomBytes(300_000));
  const w2 = run('tsbak-write', [repo, src, '--lock-days', '10', '--json', ...S3], env);
  t.equal(w2.code, 0, w2.stderr);
  const j2 = lastJson(w2.stdout);
  checkAgainstDoc(t, '`tsbak backup --json` and `tsbak-write --json`', j2);
  const s2 = j2.snapshot_id as string;
  t.equal(j2.lock.mode, 'governance');
  const until = Date.parse(j2.lock.until);
  const clock = (await (await devFetch(`${server.url}/__dev/clock`)).json()) as { now: number };
  t.ok(Math.abs(until - (clock.now + 10 * DAY)) < 10 * 60_000, 'ten days from the server clock');
  t.ok(j2.lock.objects_extended >= packs1.length, `earlier objects extended (${j2.lock.objects_extended})`);
  const newPacks = (await names(b, 'packs/')).filter((n) => !packs1.includes(n));
  t.ok(newPacks.length >= 1, 'the locked backup wrote packs');

  const st = await lockState();
  const held = (n: string) => st.retention[`wormbucket/r/${n}`];
  for (const n of [...(await names(b, 'packs/')), ...(await names(b, 'index/')), `snapshots/${s2}`]) {
    const r = held(n);
    t.ok(r && r.mode === 'GOVERNANCE' && Date.parse(r.until) >= until - 1000 && r.in_force, `${n} locked until the date`);
  }
  t.notOk(held(`snapshots/${s1}`), 'the unlocked snapshot is not locked');
  t.same(await names(b, 'locks/'), [], 'no lock file left');
  t.same(Object.keys(st.retention).filter((k) => k.includes('/locks/')), [], 'lock files were never locked');
  const viaApi = await client.send(new GetObjectRetentionCommand({ Bucket: 'wormbucket', Key: `r/snapshots/${s2}` }));
  t.equal(viaApi.Retention?.Mode, 'GOVERNANCE', 'GetObjectRetention agrees');

  // S3 refuses to delete or overwrite them; shortening needs the governance bypass.
  await t.rejects(b.delete(`snapshots/${s2}`), /protected by Object Lock/);
  await t.rejects(client.send(new PutObjectCommand({ Bucket: 'wormbucket', Key: `r/${newPacks[0]}`, Body: 'x', ChecksumAlgorithm: 'CRC32' })), { name: 'AccessDenied' });
  await t.rejects(client.send(new PutObjectRetentionCommand({ Bucket: 'wormbucket', Key: `r/snapshots/${s2}`, Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(clock.now + DAY) } })), { name: 'AccessDenied' });
  t.ok(await b.head(`snapshots/${s2}`), 'still there');

  // A third backup without b, unlocked.
  rmSync(path.join(src, 'b'));
  const w3 = run('tsbak-write', [repo, src, '--json', ...S3], env);
  t.equal(w3.code, 0, w3.stderr);
  const s3 = lastJson(w3.stdout).snapshot_id as string;

  // forget: the locked snapshot is kept and shown with its date.
  const dry = run('tsbak', ['forget', repo, '--keep-last', '1', '--dry-run', ...S3], env);
  t.equal(dry.code, 0, dry.stderr);
  t.match(dry.stdout, new RegExp(`kept 1 snapshots locked by S3 Object Lock[\\s\\S]*${s2.slice(0, 8)}\\s+governance\\s+${j2.lock.until.slice(0, 10)}`));
  const f = run('tsbak', ['forget', repo, '--keep-last', '1', '--json', ...S3], env);
  t.equal(f.code, 0, f.stderr);
  const fj = JSON.parse(f.stdout);
  checkAgainstDoc(t, '`tsbak forget --json`', fj);
  t.same(fj.removed, [s1]);
  t.same(fj.locked.map((l: any) => [l.id, l.mode]), [[s2, 'governance']]);
  t.same(await names(b, 'snapshots/'), [s2, s3].map((s) => `snapshots/${s}`).sort(), 'the locked snapshot stays');
  const named = JSON.parse(run('tsbak', ['forget', repo, s2.slice(0, 12), '--json', ...S3], env).stdout);
  t.same(named.removed, []);
  t.equal(named.locked[0].id, s2);

  // An admin removes the locked snapshot with the governance bypass: its own pack is then
  // unused, but still locked: prune keeps it, and says why.
  await client.send(new DeleteObjectCommand({ Bucket: 'wormbucket', Key: `r/snapshots/${s2}`, BypassGovernanceRetention: true }));
  const p1 = run('tsbak', ['prune', repo, '--json', ...S3], env);
  t.equal(p1.code, 0, p1.stderr);
  const pj = JSON.parse(p1.stdout);
  checkAgainstDoc(t, '`tsbak prune --json`', pj);
  const onlyS2 = newPacks.filter((n) => pj.decisions.some((d: any) => d.pack === n && d.used_bytes === 0));
  t.ok(onlyS2.length >= 1, 'a pack only the removed snapshot used');
  for (const n of onlyS2) {
    const d = pj.decisions.find((x: any) => x.pack === n);
    t.equal(d.fate, 'keep');
    t.match(d.why, /locked \(S3 Object Lock\) until/);
    t.ok(pj.locked.some((l: any) => l.name === n), `${n} listed as locked`);
  }
  for (const n of onlyS2) t.ok(await b.head(n), `${n} kept`);
  const text = run('tsbak', ['prune', repo, '--dry-run', ...S3], env);
  t.match(text.stdout, /locked by S3 Object Lock: \d+ packs .* kept until their dates/);
  t.equal(run('tsbak', ['check', repo, ...S3], env).code, 0, 'the repository checks');

  // Past the date, prune deletes what is unused.
  await server.advance(11 * DAY);
  const p2 = run('tsbak', ['prune', repo, '--json', ...S3], env);
  t.equal(p2.code, 0, p2.stderr);
  const pj2 = JSON.parse(p2.stdout);
  t.same(pj2.locked, []);
  for (const n of onlyS2) t.notOk(await b.head(n), `${n} deleted once its lock expired`);
  const c = run('tsbak', ['check', repo, ...S3], env);
  t.equal(c.code, 0, c.stdout + c.stderr);
});

t.test('the dev server: compliance is never shortened nor bypassed; puts need a checksum', async (t) => {
  const key = 'scratch/c';
  const now = ((await (await devFetch(`${server.url}/__dev/clock`)).json()) as { now: number }).now;
  await client.send(new PutObjectCommand({ Bucket: 'wormbucket', Key: key, Body: 'c', ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: new Date(now + 2 * DAY), ChecksumAlgorithm: 'CRC32' }));
  await t.rejects(client.send(new DeleteObjectCommand({ Bucket: 'wormbucket', Key: key, BypassGovernanceRetention: true })), { name: 'AccessDenied' }, 'no bypass for compliance');
  await t.rejects(client.send(new PutObjectRetentionCommand({ Bucket: 'wormbucket', Key: key, BypassGovernanceRetention: true, Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(now + 3 * DAY) } })), { name: 'AccessDenied' }, 'compliance cannot become governance');
  await client.send(new PutObjectRetentionCommand({ Bucket: 'wormbucket', Key: key, Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date(now + 3 * DAY) } }));
  await t.rejects(client.send(new PutObjectRetentionCommand({ Bucket: 'wormbucket', Key: key, Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date(now + 2 * DAY) } })), { name: 'AccessDenied' }, 'never shortened');
  // A put with lock headers and no checksum (raw HTTP: the SDK always adds one).
  const raw = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(`${server.url}/wormbucket/scratch/nochecksum`, { method: 'PUT', headers: { 'x-amz-object-lock-mode': 'GOVERNANCE', 'x-amz-object-lock-retain-until-date': new Date(now + DAY).toISOString(), 'content-length': 1, authorization: 'AWS S3RVER:x' } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end('x');
  });
  t.equal(raw.status, 400);
  t.match(raw.body, /Content-MD5 OR x-amz-checksum- HTTP header is required/);
  await server.advance(4 * DAY);
  await client.send(new DeleteObjectCommand({ Bucket: 'wormbucket', Key: key }));
});

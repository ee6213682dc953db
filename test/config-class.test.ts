// Storage classes of tree packs and index files, end to end on the S3 dev server: init
// --tree-class/--index-class, `tsbak config set` (full key only; hostile values refused; a
// forged settings object ignored), new packs and index files stored in the new classes (as
// the server lists them), and `tsbak cost --json` (region, per host, what-if).
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { lastJson, run } from './lib/cli.js';
import { DEV_CREDENTIALS, devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';
import { S3Backend } from '../src/backend/s3.js';

const server = await withDevServer(t, { buckets: ['cls'], manualClock: true });
const cache = tempDir(t, 'tsbak-cls-cache-');
const env = devServerEnv(server, { TSBAK_CACHE_DIR: cache });
const REPO = 's3://cls/r';
const tsbak = (...args: string[]) => run('tsbak', args, env);
// A new client each time: the server closes connections left idle while a child ran.
const s3 = () => new S3Backend({ endpoint: server.url, region: 'us-east-1', credentials: DEV_CREDENTIALS, bucket: 'cls', prefix: 'r', forcePathStyle: true, maxAttempts: 3 });

/** name -> storage class, as the server lists them. */
async function classes(): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for await (const o of s3().list('')) m.set(o.name, o.storageClass ?? 'STANDARD');
  return m;
}
const of = (m: Map<string, string>, prefix: string) => [...m].filter(([n]) => n.startsWith(prefix));

const src = tempDir(t, 'tsbak-cls-src-');
mkdirSync(path.join(src, 'a'), { recursive: true });
writeFileSync(path.join(src, 'a/big'), randomBytes(3 << 20));
for (let i = 0; i < 10; i++) writeFileSync(path.join(src, `a/s${i}`), `small ${i}\n`);
const keyFile = path.join(tempDir(t), 'writer.key');

t.test('init --tree-class GLACIER_IR --index-class STANDARD_IA: a version 3 config; the first backup follows it', async (t) => {
  const init = tsbak('init', REPO, '--data-class', 'DEEP_ARCHIVE', '--tree-class', 'GLACIER_IR', '--index-class', 'STANDARD_IA', '--pack-size', '1');
  t.equal(init.code, 0, init.stderr);
  t.match(init.stdout, /tree packs GLACIER_IR, index STANDARD_IA/);
  const bad = tsbak('init', 's3://cls/other', '--tree-class', 'DEEP_ARCHIVE');
  t.equal(bad.code, 2, 'an archive class for trees is refused');
  const w = run('tsbak-write', [REPO, src, '--json'], env);
  t.equal(w.code, 0, w.stderr);
  const m = await classes();
  t.ok(of(m, 'packs/data/').length >= 2);
  for (const [n, c] of of(m, 'packs/data/')) t.equal(c, 'DEEP_ARCHIVE', n);
  for (const [n, c] of of(m, 'packs/tree/')) t.equal(c, 'GLACIER_IR', n);
  for (const [n, c] of of(m, 'index/')) t.equal(c, 'STANDARD_IA', n);
  for (const [n, c] of [...of(m, 'snapshots/'), ...of(m, 'keys/'), ...of(m, 'config')]) t.equal(c, 'STANDARD', n);
  const show = lastJson(tsbak('config', 'show', REPO, '--json').stdout);
  t.same(show.storage_class, { data: 'DEEP_ARCHIVE', tree: 'GLACIER_IR', index: 'STANDARD_IA', other: 'STANDARD' });
  t.equal(show.version, 3);
});

t.test('config set: full key only, hostile values refused', async (t) => {
  const add = tsbak('key', 'add-writer', REPO, '--name', 'laptop', '--out', keyFile);
  t.equal(add.code, 0, add.stderr);
  const writer = run('tsbak', ['config', 'set', REPO, 'tree-class=STANDARD', '--key-file', keyFile], { ...env, TSBAK_PASSWORD: '' });
  t.equal(writer.code, 12, 'a write-only key may not change classes');
  t.match(writer.stderr, /full key/);
  for (const v of ['tree-class=DEEP_ARCHIVE', 'index-class=GLACIER', 'tree-class=', 'data-class=STANDARD', 'colour=red', 'tree-class']) {
    const r = tsbak('config', 'set', REPO, v);
    t.equal(r.code, 2, v);
    t.match(r.stderr, /config set/, v);
  }
  t.equal(of(await classes(), 'settings/').length, 0, 'nothing written');
});

t.test('config set tree-class=STANDARD_IA index-class=GLACIER_IR: later packs and index files, also from a writer key', async (t) => {
  const before = await classes();
  const r = tsbak('config', 'set', REPO, 'tree-class=STANDARD_IA', 'index-class=GLACIER_IR');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /tree packs GLACIER_IR -> STANDARD_IA, index STANDARD_IA -> GLACIER_IR/);
  writeFileSync(path.join(src, 'a/new'), randomBytes(100 << 10));
  const w = run('tsbak-write', [REPO, src, '--key-file', keyFile, '--json'], { ...env, TSBAK_PASSWORD: '' });
  t.equal(w.code, 0, w.stderr);
  const after = await classes();
  const added = (p: string) => of(after, p).filter(([n]) => !before.has(n));
  t.ok(added('packs/tree/').length >= 1, 'a new tree pack');
  for (const [n, c] of added('packs/tree/')) t.equal(c, 'STANDARD_IA', n);
  t.ok(added('index/').length >= 1, 'a new index file');
  for (const [n, c] of added('index/')) t.equal(c, 'GLACIER_IR', n);
  for (const [n, c] of of(before, 'packs/tree/')) t.equal(after.get(n), c, 'earlier objects keep their class');
  const show = lastJson(tsbak('config', 'show', REPO, '--json').stdout);
  t.equal(show.settings_seq, 1);
  t.same(show.config_storage_class.tree, 'GLACIER_IR', 'config itself is unchanged');
});

t.test('a settings object not signed by the master key is ignored, with a warning', async (t) => {
  const forged = { v: 1, kind: 'storage-classes', repoId: lastJson(tsbak('config', 'show', REPO, '--json').stdout).id, seq: 99, time: new Date().toISOString(), storageClass: { tree: 'STANDARD', index: 'STANDARD' }, sig: randomBytes(64).toString('base64') };
  await s3().put(`settings/${'f'.repeat(32)}`, Buffer.from(JSON.stringify(forged)));
  await s3().put(`settings/${'e'.repeat(32)}`, Buffer.from('{"v":1,"kind":"storage-classes","seq":{"$ne":0}}'));
  const show = tsbak('config', 'show', REPO, '--json');
  t.equal(show.code, 0, show.stderr);
  t.match(show.stderr, /settings\/f{32} is not signed by this repository's master key: ignored/);
  t.match(show.stderr, /settings\/e{32} is damaged/);
  const j = lastJson(show.stdout);
  t.equal(j.settings_seq, 1, 'the signed settings still apply');
  t.equal(j.storage_class.tree, 'STANDARD_IA');
});

t.test('cost --json: region, prices source, per host, what-if, snake_case', async (t) => {
  const r = run('tsbak', ['cost', REPO, '--json'], { ...env, AWS_REGION: 'eu-central-1' });
  t.equal(r.code, 0, r.stderr);
  const c = lastJson(r.stdout);
  t.equal(c.prices.region, 'eu-central-1');
  t.equal(c.prices.local, false);
  t.match(c.prices.source, /aws\.amazon\.com/);
  t.ok(c.monthly_usd > 0);
  t.ok(c.by_class.DEEP_ARCHIVE, 'class names stay as they are');
  t.ok(c.objects.every((o: any) => 'storage_class' in o && 'monthly_usd' in o));
  t.equal(c.by_host.length, 1);
  t.ok(c.by_host[0].data_bytes > 3 << 20);
  t.ok(c.by_host[0].metadata_bytes > 0);
  t.ok(c.by_host[0].metadata_monthly_usd > 0 && c.by_host[0].data_monthly_usd > 0);
  const std = c.what_if.find((w: any) => w.data === 'DEEP_ARCHIVE' && w.tree === 'STANDARD' && w.index === 'STANDARD');
  t.ok(std, 'the what-if has tree and index in STANDARD');
  t.ok(c.what_if.find((w: any) => w.data === 'GLACIER'), 'and data in GLACIER');
  t.equal(c.what_if.filter((w: any) => w.current).length, 1);
  for (const k of ['storage_usd', 'metadata_storage_usd', 'puts_usd', 'reads_usd', 'total_usd']) t.type(std[k], 'number', k);
  const human = run('tsbak', ['cost', REPO], env);
  t.equal(human.code, 0, human.stderr);
  t.match(human.stdout, /storage of s3:\/\/cls\/r.*AWS us-east-1 list prices/);
  t.match(human.stdout, /per host: metadata/);
  t.match(human.stdout, /what-if: a typical month/);
  t.match(human.stdout, /DEEP_ARCHIVE\s+STANDARD\s+STANDARD\s/);
  t.match(human.stdout, /\(current\)/);
  const unknown = run('tsbak', ['cost', REPO, '--region', 'xx-nowhere-1'], env);
  t.equal(unknown.code, 0, unknown.stderr);
  t.match(unknown.stderr, /no prices for region xx-nowhere-1.*showing us-east-1 prices/);
  t.match(unknown.stdout, /us-east-1 list prices/);
});

t.test('cost of a local repository is a labeled what-if', async (t) => {
  const repo = path.join(tempDir(t), 'local');
  t.equal(run('tsbak', ['init', repo]).code, 0);
  t.equal(run('tsbak-write', [repo, src]).code, 0);
  const r = run('tsbak', ['cost', repo]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /is a local repository: it costs the disk it is on\. What it would cost on S3 in us-east-1/);
  t.match(r.stdout, /what-if total:/);
  t.match(r.stdout, /what-if: restoring snapshot/);
  const j = lastJson(run('tsbak', ['cost', repo, '--json', '--region', 'eu-west-1']).stdout);
  t.equal(j.prices.local, true);
  t.equal(j.prices.what_if, true);
  t.equal(j.prices.region, 'eu-west-1');
});

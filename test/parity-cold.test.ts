// repair packs on an S3 repository whose data packs and parity are in DEEP_ARCHIVE (the dev
// server with Glacier semantics and a manual clock): a deleted pack's group is known from
// its parity group record; repair says what restoring the fewest shards it needs costs,
// requests exactly those in one batch and exits 15; once the restores are complete a rerun
// rebuilds the pack (in DEEP_ARCHIVE, where it was meant to be), check --read-data passes
// and the snapshot restores identical.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { openBackend } from '../src/backend/open.js';
import { decodeParityGroup, type ParityGroupRow } from '../src/format/parity-group.js';
import { packName, parityName, PARITY_GROUPS } from '../src/repo/layout.js';
import { Repository } from '../src/repo/repository.js';
import { lastJson, run } from './lib/cli.js';
import { listFiles, sha256File } from './lib/files.js';
import { devFetch, devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

const server = await withDevServer(t, { buckets: ['cold'], manualClock: true });
const env = devServerEnv(server, { TSBAK_CACHE_DIR: tempDir(t, 'tsbak-paritycold-cache-') });
const REPO = 's3://cold/par';
const S3 = ['--s3-path-style'];
const tsbak = (...args: string[]) => run('tsbak', [...args, ...S3], env);

/** Keys of the bucket with a restore requested on the dev server. */
async function restoredKeys(): Promise<string[]> {
  const st = (await (await devFetch(`${server.url}/__dev/state`)).json()) as any;
  const out: string[] = [];
  const walk = (o: any, where: string) => {
    if (!o || typeof o !== 'object') return;
    if (o.restore && typeof o.restore === 'object') out.push(where);
    for (const [k, v] of Object.entries(o)) if (k !== 'restore') walk(v, k);
  };
  walk(st, '');
  return out;
}

t.test('a deleted Deep Archive pack: cost first, the fewest restores, then the rebuild', async (t) => {
  const src = tempDir(t);
  for (let i = 0; i < 12; i++) writeFileSync(path.join(src, `f${i}`), randomBytes(300_000));
  writeFileSync(path.join(src, 'note'), 'cold parity\n');
  let r = tsbak('init', REPO, '--data-class', 'DEEP_ARCHIVE', '--pack-size', '1', '--parity', '3+2');
  t.equal(r.code, 0, r.stderr);
  r = tsbak('backup', REPO, src);
  t.equal(r.code, 0, r.stderr);

  for (const [k, v] of Object.entries(env)) process.env[k] = v;
  const backend = await openBackend(REPO, { endpoint: server.url, pathStyle: true, region: 'us-east-1' });
  t.teardown(() => backend.close?.());
  const repo = await Repository.open(backend, { password: 'correct horse' });
  const classOf = new Map<string, string | undefined>();
  for await (const o of backend.list('packs/')) classOf.set(o.name, o.storageClass);
  const groups: ParityGroupRow[][] = [];
  for await (const o of backend.list(PARITY_GROUPS)) groups.push(decodeParityGroup(repo.secrets.indexKey, await backend.get(o.name)));
  t.ok(groups.length >= 2, `${groups.length} parity group records, readable at once`);
  for (const g of groups) for (const row of g) t.equal(classOf.get(parityName(row.object.toString('hex'))), 'DEEP_ARCHIVE', 'parity objects are archived with the data');

  // tsbak cost: parity bytes and their monthly price as their own line, per class.
  let parityBytes = 0;
  let parityObjects = 0;
  for await (const o of backend.list('packs/parity/')) {
    parityBytes += o.size;
    parityObjects++;
  }
  const cost = tsbak('cost', REPO, '--json');
  t.equal(cost.code, 0, cost.stderr);
  const cj = JSON.parse(cost.stdout);
  t.equal(cj.parity.setting, '3+2');
  t.equal(cj.parity.objects, parityObjects);
  t.equal(cj.parity.bytes, parityBytes);
  t.same(cj.parity.by_class.map((c: any) => c.storage_class), ['DEEP_ARCHIVE'], 'priced in the data class');
  t.ok(cj.parity.monthly_usd > 0 && cj.parity.of_pack_bytes > 0.3, `$${cj.parity.monthly_usd} per month, ${cj.parity.of_pack_bytes} of the packs' bytes`);
  t.ok(cj.objects.some((o: any) => o.kind === 'parity' && o.storage_class === 'DEEP_ARCHIVE' && o.bytes === parityBytes), 'a row of its own in the table');
  t.match(tsbak('cost', REPO).stdout, /^parity: \d+ objects, [\d.]+ [KM]iB in DEEP_ARCHIVE: \$[\d.]+ per month \([\d.]+% of the packs' bytes; new packs get parity 3\+2\)$/m);

  // A full group with a data member: that member is lost.
  const group = groups.find((g) => g[0]!.header.members.length === 3 && g[0]!.header.members.some((m) => m.kind === 'data'))!;
  t.ok(group, 'a full group of 3 packs');
  const members = group[0]!.header.members.map((m) => packName(m.kind, m.id.toString('hex')));
  const victim = members.find((n) => n.startsWith('packs/data/'))!;
  await backend.delete(victim);
  const groupObjects = new Set([...members.filter((n) => n !== victim), ...group.map((row) => parityName(row.object.toString('hex')))]);
  const hotMembers = members.filter((n) => n !== victim && classOf.get(n) !== 'DEEP_ARCHIVE').length;
  const need = 3 - hotMembers;
  const coldShards = groupObjects.size - hotMembers;
  t.ok(coldShards > need, `${coldShards} archived shards survive, ${need} are enough: repair must choose`);

  const chk = tsbak('check', REPO);
  t.equal(chk.code, 14, 'check finds the pack missing');
  t.match(chk.stdout + chk.stderr, /repairable: run tsbak repair packs/, 'and that its archived group can rebuild it');

  await server.resetStats();
  const dry = tsbak('repair', 'packs', REPO, '--dry-run', '--json');
  t.equal(dry.code, 14, `dry run: damage found: ${dry.stderr}`);
  const dj = lastJson(dry.stdout);
  t.same(dj.packs, [{ name: victim, problem: 'missing', state: 'waiting' }]);
  t.equal(dj.cold.length, need, `the plan: ${need} archived shards (3 needed, ${hotMembers} hot)`);
  t.ok(dj.cold.every((c: any) => groupObjects.has(c.object) && c.storage_class === 'DEEP_ARCHIVE' && c.state === 'cold'), 'all of the lost pack\'s group');
  t.ok(dj.cold_restore[0].restore_usd > 0, `with the cost: $${dj.cold_restore[0].restore_usd}`);
  t.equal(dj.restores_requested, 0);
  t.same((await server.stats()).restores, {}, 'a dry run requests nothing');
  const dryText = tsbak('repair', 'packs', REPO, '--dry-run');
  t.match(dryText.stdout, /to restore: \d+ objects, .* tier Standard, .*\$/, 'the text says the cost');
  t.match(dryText.stdout, /no restore requested/);
  t.comment(dryText.stdout);

  const first = tsbak('repair', 'packs', REPO, '--json');
  t.equal(first.code, 15, `restores requested: exit 15: ${first.stderr}`);
  t.match(first.stderr, /restores requested, run again later/);
  const fj = lastJson(first.stdout);
  t.equal(fj.restores_requested, need, 'one batch of the chosen shards');
  t.same(fj.cold.map((c: any) => c.object).sort(), dj.cold.map((c: any) => c.object).sort(), 'the shards of the plan');
  t.same((await server.stats()).restores, { Standard: need }, 'the dev server saw exactly those restore requests');
  const keys = await restoredKeys();
  t.equal(keys.length, need, `restores on the server: ${keys.join(' ')}`);
  for (const k of keys) t.ok([...groupObjects].some((o) => k.endsWith(o)), `${k} is a shard of the group`);

  const again = tsbak('repair', 'packs', REPO, '--json');
  t.equal(again.code, 15, 'still restoring: run again later');
  t.equal(lastJson(again.stdout).restores_requested, 0, 'nothing asked twice');

  t.equal(await server.completeRestores(), need, 'the restores complete');
  const fix = tsbak('repair', 'packs', REPO, '--json');
  t.equal(fix.code, 0, fix.stderr);
  t.same(lastJson(fix.stdout).packs, [{ name: victim, problem: 'missing', state: 'rebuilt' }]);
  const head = await backend.head(victim);
  t.equal(head?.storageClass, 'DEEP_ARCHIVE', 'rebuilt into the class the lost pack was meant to have');

  // check --read-data: its own restores first (exit 15), then a pass.
  const c1 = tsbak('check', REPO, '--read-data');
  t.equal(c1.code, 15, c1.stderr + c1.stdout);
  await server.completeRestores();
  const c2 = tsbak('check', REPO, '--read-data');
  t.equal(c2.code, 0, c2.stderr + c2.stdout);

  const target = tempDir(t);
  const rr = tsbak('restore', REPO, 'latest', '--target', target);
  t.equal(rr.code, 0, rr.stderr);
  const files = listFiles(src);
  t.same(
    files.map((f) => sha256File(path.join(target, src, f))),
    files.map((f) => sha256File(path.join(src, f))),
    'the snapshot restores identical',
  );
});

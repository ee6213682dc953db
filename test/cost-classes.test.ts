// The price table (regions, the fallback and its warning, 128 KiB minimums), the typical
// month of the what-if, config version 3 and storage class settings as hostile input, and
// the pack subsets of check --read-data-subset.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { addSize, earlyDeletionUsd, emptySizes, estimateBackupCost, estimateRestoreCost, metadataReadUsd, monthlyStorageUsd, monthlyUsdOf, PRICES, pricesFor, typicalMonthUsd, unknownRegionWarning } from '../src/glacier/cost.js';
import { PRICE_TABLE } from '../src/glacier/prices.js';
import { decodeConfig, encodeConfig, indexClassOf, type RepoConfig } from '../src/format/config.js';
import { classSettingsMessage, decodeClassSettings, encodeClassSettings } from '../src/format/class-settings.js';
import { newEd25519, signBytes, verifyBytes } from '../src/crypto/sign.js';
import { parseClassSettings } from '../src/cli/config.js';
import { initStorageClasses } from '../src/cli/commands.js';

const GB = 1024 ** 3;

t.test('prices per region; an unknown region is priced as us-east-1 with a warning', async (t) => {
  for (const r of ['us-east-1', 'us-west-2', 'eu-west-1', 'eu-central-1']) {
    const p = pricesFor(r);
    t.ok(p.known, r);
    t.equal(p.region, r);
  }
  t.equal(pricesFor('eu-central-1').prices.storagePerGbMonth.STANDARD, 0.0245, 'Frankfurt is dearer');
  t.equal(pricesFor('us-east-1').prices.storagePerGbMonth.STANDARD, 0.023);
  t.equal(monthlyStorageUsd('STANDARD', GB, 1, 'eu-central-1'), 0.0245, 'the region reaches the computation');
  t.equal(monthlyStorageUsd('STANDARD', GB, 1), 0.023, 'default us-east-1');
  const unk = pricesFor('ap-south-1');
  t.notOk(unk.known);
  t.equal(unk.region, 'us-east-1');
  t.match(unknownRegionWarning('ap-south-1'), /no prices for region ap-south-1.*showing us-east-1/);
  t.equal(unknownRegionWarning('eu-west-1'), null);
  t.match(PRICE_TABLE.source, /aws\.amazon\.com\/s3\/pricing/);
  t.match(PRICE_TABLE.read, /^\d{4}-\d\d$/);
  t.equal(PRICES.storagePerGbMonth.DEEP_ARCHIVE, 0.00099, 'PRICES keeps us-east-1 for existing callers');
  const fra = estimateRestoreCost('DEEP_ARCHIVE', 'Standard', 1000, GB, 7, { region: 'eu-central-1' });
  const va = estimateRestoreCost('DEEP_ARCHIVE', 'Standard', 1000, GB, 7);
  t.ok(fra.requestsUsd > va.requestsUsd, 'restore requests priced per region');
  const b = estimateBackupCost({ storageClass: { data: 'DEEP_ARCHIVE', tree: 'GLACIER_IR', other: 'STANDARD', index: 'STANDARD_IA' } }, [{ kind: 'index', bytes: 1000 }]);
  t.ok(b.byClass.STANDARD_IA, 'index objects take the index class');
});

t.test('GLACIER_IR and STANDARD_IA bill each object at least 128 KiB', async (t) => {
  const s = emptySizes();
  addSize(s, 1024);
  addSize(s, 1024);
  addSize(s, 1 << 20);
  t.equal(s.bytesAtMin, 2 * 128 * 1024 + (1 << 20));
  t.equal(monthlyUsdOf('GLACIER_IR', s), (s.bytesAtMin / GB) * 0.004);
  t.equal(monthlyUsdOf('STANDARD', s), (s.bytes / GB) * 0.023, 'STANDARD: the bytes as they are');
  t.equal(monthlyUsdOf('GLACIER_IR', emptySizes()), 0);
  t.equal(earlyDeletionUsd('GLACIER_IR', s, 30), monthlyUsdOf('GLACIER_IR', s) * 2, 'GLACIER_IR: 90 days minimum, 60 left');
  t.equal(earlyDeletionUsd('GLACIER_IR', s, 90), 0);
  t.equal(earlyDeletionUsd('STANDARD', s, 0), 0);
  t.equal(earlyDeletionUsd('DEEP_ARCHIVE', s, 0), monthlyUsdOf('DEEP_ARCHIVE', s) * 6, 'Deep Archive: 180 days');
});

t.test('a typical month: index files read by every backup make a retrieval-fee class dear', async (t) => {
  const sizes = { data: emptySizes(), tree: emptySizes(), index: emptySizes(), other: emptySizes() };
  for (let i = 0; i < 100; i++) addSize(sizes.data, 64 << 20);
  for (let i = 0; i < 30; i++) addSize(sizes.tree, 4 << 20);
  for (let i = 0; i < 30; i++) addSize(sizes.index, 1 << 20);
  addSize(sizes.other, 1000);
  const reads = { indexGets: 30, indexBytes: 30 << 20, treeGets: 0, treeBytes: 0 };
  const activity = { backups: 30, putsPerBackup: { data: 1, tree: 1, index: 1, other: 1 }, backupReads: reads, browses: 1, browseReads: { ...reads, treeGets: 30, treeBytes: 120 << 20 } };
  const std = typicalMonthUsd(sizes, { data: 'DEEP_ARCHIVE', tree: 'STANDARD', index: 'STANDARD' }, activity);
  const ir = typicalMonthUsd(sizes, { data: 'DEEP_ARCHIVE', tree: 'STANDARD', index: 'GLACIER_IR' }, activity);
  t.ok(ir.metadataStorageUsd < std.metadataStorageUsd, 'GLACIER_IR stores for less');
  t.ok(ir.readsUsd > std.readsUsd, 'but 30 backups reading the index pay its retrieval fee');
  t.equal(std.totalUsd, std.storageUsd + std.putsUsd + std.readsUsd);
  t.equal(metadataReadUsd({ indexGets: 1000, indexBytes: GB, treeGets: 0, treeBytes: 0 }, { tree: 'STANDARD', index: 'GLACIER_IR' }), 0.01 + 0.03, 'GETs plus retrieval per GB');
});

function config(over: Partial<RepoConfig> = {}): RepoConfig {
  return {
    version: 3,
    id: 'a'.repeat(32),
    created: '2026-12-04T00:00:00.000Z',
    chunker: { min: 262144, avg: 1048576, max: 4194304 },
    compression: { alg: 'zstd', level: 3 },
    packSize: { data: 1 << 26, tree: 1 << 22 },
    storageClass: { data: 'DEEP_ARCHIVE', tree: 'GLACIER_IR', index: 'STANDARD_IA', other: 'STANDARD' },
    ...over,
  };
}
const sig = { signPub: randomBytes(32), keyCheck: randomBytes(32), sig: randomBytes(64) };

t.test('config version 3 carries the index class; values are range-checked', async (t) => {
  const d = decodeConfig(encodeConfig(config(), sig)).config;
  t.equal(d.version, 3);
  t.equal(d.storageClass.index, 'STANDARD_IA');
  t.equal(indexClassOf(d), 'STANDARD_IA');
  const v2 = decodeConfig(encodeConfig(config({ version: 2, storageClass: { data: 'STANDARD', tree: 'STANDARD', other: 'STANDARD' } }), sig)).config;
  t.equal(v2.storageClass.index, undefined, 'a version 2 config has no index class');
  t.equal(indexClassOf(v2), 'STANDARD', 'its index files take other');
  const hostile = (mut: (o: any) => void) => {
    const o = JSON.parse(encodeConfig(config(), sig).toString());
    mut(o);
    return () => decodeConfig(Buffer.from(JSON.stringify(o)));
  };
  t.throws(hostile((o) => (o.storageClass.index = 'DEEP_ARCHIVE')), /storageClass.index/, 'index in an archive class');
  t.throws(hostile((o) => (o.storageClass.tree = 'GLACIER')), /storageClass.tree/, 'tree in an archive class (version 3)');
  t.throws(hostile((o) => delete o.storageClass.index), /storageClass\.index/, 'version 3 without index');
  t.throws(hostile((o) => (o.storageClass.index = { $gt: 1 })), /storageClass.index/);
  t.throws(hostile((o) => (o.version = 4)), /version/);
});

t.test('storage class settings objects: signed, range-checked', async (t) => {
  const pair = newEd25519();
  const body = { repoId: 'b'.repeat(32), seq: 3, time: '2026-12-04T01:02:03.000Z', storageClass: { tree: 'GLACIER_IR' as const, index: 'STANDARD' as const } };
  const s = { v: 1 as const, kind: 'storage-classes' as const, ...body, sig: signBytes(pair, classSettingsMessage(body)) };
  const d = decodeClassSettings(encodeClassSettings(s));
  t.same(d.storageClass, body.storageClass);
  t.ok(verifyBytes(pair.publicKey, classSettingsMessage(d), d.sig), 'the signature covers the decoded values');
  t.notOk(verifyBytes(pair.publicKey, classSettingsMessage({ ...d, storageClass: { tree: 'STANDARD', index: 'STANDARD' } }), d.sig), 'another class does not verify');
  const bad = (mut: (o: any) => void) => {
    const o = JSON.parse(encodeClassSettings(s).toString());
    mut(o);
    return () => decodeClassSettings(Buffer.from(JSON.stringify(o)));
  };
  t.throws(bad((o) => (o.storageClass.tree = 'DEEP_ARCHIVE')), /storageClass\.tree/);
  t.throws(bad((o) => (o.storageClass.index = 'standard')), /storageClass\.index/);
  t.throws(bad((o) => (o.seq = -1)), /seq/);
  t.throws(bad((o) => (o.seq = 1.5)), /seq/);
  t.throws(bad((o) => (o.seq = '2')), /seq/);
  t.throws(bad((o) => (o.repoId = '../x')), /repoId/);
  t.throws(bad((o) => (o.sig = 'AAAA')), /sig/);
  t.throws(bad((o) => (o.kind = 'config')), /kind/);
  t.throws(bad((o) => (o.pad = 'x'.repeat(5000))), /more than/);
  t.throws(() => decodeClassSettings(Buffer.from('[1]')), /object/);
});

t.test('config set arguments and init defaults', async (t) => {
  t.same(parseClassSettings(['tree-class=glacier_ir', 'INDEX-CLASS=STANDARD_IA']), { tree: 'GLACIER_IR', index: 'STANDARD_IA' });
  t.throws(() => parseClassSettings([]), /needs a setting/);
  t.throws(() => parseClassSettings(['tree-class=DEEP_ARCHIVE']), /not one of STANDARD, STANDARD_IA, GLACIER_IR/);
  t.throws(() => parseClassSettings(['data-class=STANDARD']), /fixed at init/);
  t.throws(() => parseClassSettings(['colour=blue']), /unknown setting/);
  t.throws(() => parseClassSettings(['tree-class']), /NAME=VALUE/);
  t.same(initStorageClasses({}), { data: 'STANDARD', tree: 'STANDARD', other: 'STANDARD' }, 'hot repositories stay version 2');
  t.same(initStorageClasses({ dataClass: 'DEEP_ARCHIVE', indexClass: 'GLACIER_IR' }).index, 'GLACIER_IR');
});

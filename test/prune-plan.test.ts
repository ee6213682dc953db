// Prune's decisions and money (src/glacier/prune-plan.ts) on made-up pack usage: unused
// packs (early deletion inside the minimum), partly used ones per class (max-unused,
// minimum durations, pay-back, --repack-cold), packs kept whole, the totals and break-even.
import t from 'tap';
import type { StorageClass } from '../src/backend/backend.js';
import { GB, monthlyStorageUsd } from '../src/glacier/cost.js';
import { parseMaxUnused, planPrune, type PruneOptions } from '../src/glacier/prune-plan.js';
import type { PackUsage, PruneUsage } from '../src/repo/prune.js';

const DAY = 86_400_000;
const NOW = new Date('2026-12-04T00:00:00Z');
const MiB = 1 << 20;
let n = 0;
function pack(o: Partial<PackUsage> & { storageClass: StorageClass }): PackUsage {
  n++;
  const size = o.size ?? 16 * MiB;
  return { name: `packs/data/00/${String(n).padStart(64, '0')}`, kind: 'data', size, lastModified: new Date(NOW.getTime() - 365 * DAY), indexed: true, blobs: 10, usedBlobs: 10, blobBytes: size - 4096, usedBytes: size - 4096, keptWhole: false, restored: false, ...o };
}
function usage(packs: PackUsage[]): PruneUsage {
  return { snapshots: 1, trees: 1, usedBlobs: 1, packs, indexFiles: [], unfinished: [], now: NOW, chosen: new Map() };
}
const opts = (o: Partial<PruneOptions> = {}): PruneOptions => ({ maxUnused: 0.05, repackCold: false, newClass: { data: 'STANDARD', tree: 'STANDARD' }, transferOut: true, ...o });
const fate = (p: ReturnType<typeof planPrune>, pk: PackUsage) => p.decisions.find((d) => d.pack === pk)!;

t.test('--max-unused', async (t) => {
  t.equal(parseMaxUnused(undefined), 0.05);
  t.equal(parseMaxUnused('10%'), 0.1);
  t.equal(parseMaxUnused('0%'), 0);
  t.equal(parseMaxUnused('unlimited'), Infinity);
  t.throws(() => parseMaxUnused('5'), /--max-unused/);
  t.throws(() => parseMaxUnused('101%'), /--max-unused/);
});

t.test('unused packs are deleted; inside the minimum with the early-deletion charge', async (t) => {
  const old = pack({ storageClass: 'DEEP_ARCHIVE', usedBlobs: 0, usedBytes: 0 });
  const young = pack({ storageClass: 'DEEP_ARCHIVE', usedBlobs: 0, usedBytes: 0, lastModified: new Date(NOW.getTime() - 60 * DAY) });
  const orphan = pack({ storageClass: 'STANDARD', indexed: false, blobs: 0, usedBlobs: 0, usedBytes: 0, blobBytes: 0 });
  const p = planPrune(usage([old, young, orphan]), opts());
  t.same(p.actions.delete.sort(), [old.name, young.name, orphan.name].sort());
  t.equal(fate(p, old).earlyDeletionUsd, 0, 'past 180 days: free');
  const month = monthlyStorageUsd('DEEP_ARCHIVE', young.size, 1);
  t.ok(Math.abs(fate(p, young).earlyDeletionUsd - month * 4) < 1e-12, '120 days left: 4 months of its storage');
  t.match(fate(p, orphan).why, /in no index/);
  t.equal(p.totals.unindexedPacks, 1);
  t.ok(Math.abs(p.money.monthlySavingsUsd - (2 * month + monthlyStorageUsd('STANDARD', orphan.size, 1))) < 1e-12);
  t.ok(Math.abs(p.money.breakEvenMonths! - (month * 4) / p.money.monthlySavingsUsd) < 1e-9);
  t.same(p.waiting, [], 'unused packs do not wait');
});

t.test('STANDARD: repacked by --max-unused, most unused first', async (t) => {
  const a = pack({ storageClass: 'STANDARD', usedBlobs: 5, usedBytes: 8 * MiB }); // ~8 MiB unused
  const b = pack({ storageClass: 'STANDARD', usedBlobs: 9, usedBytes: 15 * MiB }); // ~1 MiB unused
  const full = pack({ storageClass: 'STANDARD' });
  const p = planPrune(usage([a, b, full]), opts());
  t.same(p.actions.repack, [a.name], 'a alone brings unused under 5%');
  t.match(fate(p, b).why, /within --max-unused/);
  t.equal(fate(p, full).why, 'fully used');
  t.ok(fate(p, a).transferUsd > 0, 'the download is counted');
  t.same(planPrune(usage([a, b, full]), opts({ maxUnused: 0 })).actions.repack.sort(), [a.name, b.name].sort(), '0%: every partly used pack');
  t.same(planPrune(usage([a, b, full]), opts({ maxUnused: Infinity })).actions.repack, [], 'unlimited: none');
  t.equal(planPrune(usage([a]), opts({ transferOut: false })).decisions[0]!.transferUsd, 0, 'local: no download');
});

t.test('IA and IR: only past the minimum, and only when it pays back in 12 months', async (t) => {
  const young = pack({ storageClass: 'GLACIER_IR', usedBlobs: 1, usedBytes: 1 * MiB, lastModified: new Date(NOW.getTime() - 10 * DAY) });
  const old = pack({ storageClass: 'GLACIER_IR', usedBlobs: 1, usedBytes: 1 * MiB });
  const p = planPrune(usage([young, old]), opts({ transferOut: false, newClass: { data: 'GLACIER_IR', tree: 'STANDARD' } }));
  t.equal(fate(p, young).fate, 'keep');
  t.match(fate(p, young).why, /inside its 90-day minimum/);
  t.equal(fate(p, young).freeFrom!.toISOString(), new Date(NOW.getTime() + 80 * DAY).toISOString());
  t.same(p.waiting.map((d) => d.pack), [young]);
  // 15 MiB unused at $0.004/GB-month, read for $0.03/GB: pays back in ~8 months.
  t.equal(fate(p, old).fate, 'repack');
  const slow = pack({ storageClass: 'GLACIER_IR', usedBlobs: 9, usedBytes: 15 * MiB });
  t.match(fate(planPrune(usage([slow]), opts({ maxUnused: 0, newClass: { data: 'GLACIER_IR', tree: 'STANDARD' } })), slow).why, /would not pay back/, 'little unused: the read costs more than a year of it');
});

t.test('GLACIER/DEEP_ARCHIVE: never repacked without --repack-cold', async (t) => {
  const part = pack({ storageClass: 'DEEP_ARCHIVE', size: 1024 * MiB, blobBytes: 1024 * MiB, usedBlobs: 1, usedBytes: 10 * MiB });
  const p = planPrune(usage([part]), opts({ maxUnused: 0 }));
  t.equal(fate(p, part).fate, 'keep');
  t.match(fate(p, part).why, /--repack-cold/);
  const da = { maxUnused: 0, repackCold: true, transferOut: false, newClass: { data: 'DEEP_ARCHIVE', tree: 'STANDARD' } } as const;
  t.equal(fate(planPrune(usage([part]), opts(da)), part).fate, 'repack', '99% unused: a Bulk restore pays back within a year');
  const mostlyUsed = pack({ storageClass: 'DEEP_ARCHIVE', size: 1024 * MiB, blobBytes: 1024 * MiB, usedBlobs: 9, usedBytes: 900 * MiB });
  t.match(fate(planPrune(usage([mostlyUsed]), opts(da)), mostlyUsed).why, /would not pay back/, '12% unused: its Deep Archive storage is too cheap to pay a restore back in a year');
  t.match(fate(planPrune(usage([part]), opts({ ...da, transferOut: true })), part).why, /would not pay back/, 'downloaded out of AWS ($0.09/GB): never');
  const g = pack({ storageClass: 'GLACIER', size: 1024 * MiB, blobBytes: 1024 * MiB, usedBlobs: 1, usedBytes: 10 * MiB });
  const pg = planPrune(usage([g]), opts({ maxUnused: 0, repackCold: true, transferOut: false, newClass: { data: 'GLACIER', tree: 'STANDARD' } }));
  t.equal(fate(pg, g).fate, 'repack', 'GLACIER, 99% unused, in-region: the Bulk restore (free retrieval) pays back');
  t.ok(fate(pg, g).restoreUsd >= 0 && pg.money.breakEvenMonths! < 12);
  const young = pack({ storageClass: 'DEEP_ARCHIVE', usedBlobs: 1, usedBytes: MiB, lastModified: new Date(NOW.getTime() - DAY) });
  const py = planPrune(usage([young]), opts({ maxUnused: 0 }));
  t.same(py.waiting.map((d) => d.pack), [young], 'inside its minimum: listed with its free date even without --repack-cold');
  t.equal(py.waiting[0]!.freeFrom!.toISOString(), new Date(NOW.getTime() + 179 * DAY).toISOString());
});

t.test('packs kept whole, unknown age', async (t) => {
  const whole = pack({ storageClass: 'STANDARD', usedBlobs: 0, usedBytes: 0, keptWhole: true });
  const unknown = pack({ storageClass: 'DEEP_ARCHIVE', usedBlobs: 0, usedBytes: 0, lastModified: null });
  const p = planPrune(usage([whole, unknown]), opts());
  t.equal(fate(p, whole).fate, 'keep', "another key's index file keeps it");
  t.same(p.actions.delete, [unknown.name]);
  t.ok(Math.abs(fate(p, unknown).earlyDeletionUsd - monthlyStorageUsd('DEEP_ARCHIVE', unknown.size, 1) * 6) < 1e-12, 'unknown age: the whole minimum is charged');
  t.equal(planPrune(usage([]), opts()).money.breakEvenMonths, 0, 'nothing: nothing');
  t.ok(GB > 0);
});

// `tsbak parity set <repo> K+M|off`, `tsbak parity show <repo>` and `tsbak repair packs
// <repo>`: parity across packs (docs/FORMAT.md "Parity"). Settings need the full key;
// repair rebuilds lost or damaged packs from their group's parity, each checked by its id;
// where the shards it needs are archived, it says what restoring them costs, requests them in
// one batch and exits 15 (run again later), like a restore of cold data.
import type { StorageClass } from '../backend/backend.js';
import { TsbakError } from '../errors.js';
import { estimateRestoreCost } from '../glacier/cost.js';
import type { ColdShard, PackRepairReport } from '../repo/parity-repair.js';
import type { Repository } from '../repo/repository.js';
import { askedRegion } from './cost-breakdown.js';
import { EXIT } from './exit-codes.js';
import { openRepo, type RepoArgs } from './open-repo.js';
import { count } from './output.js';
import { takeExclusiveLock } from './repair-lock.js';
import { describePlan, expectedBy, fmtTime, tierAndDays, type ColdArgs, type ColdPlan } from './warm.js';

const out = (s: string) => process.stdout.write(s + '\n');
const fmt = (p: { k: number; m: number } | null) => (p ? `${p.k}+${p.m}` : 'off');

export async function cmdParitySet(a: RepoArgs & { spec?: string; json?: boolean }): Promise<number> {
  if (!a.spec) throw new TsbakError('USAGE', 'parity set needs K+M (e.g. 10+2) or none');
  const repo = await openRepo(a);
  const before = repo.parity;
  const s = await repo.setParity(a.spec);
  if (a.json) out(JSON.stringify({ parity: fmt(s.parity), previous: fmt(before), seq: s.seq, settings_object: s.name }));
  else out(`parity of new packs: ${fmt(before)} -> ${fmt(s.parity)} (wrote ${s.name}, seq ${s.seq}); packs already stored keep their groups`);
  return EXIT.OK;
}

export async function cmdParityShow(a: RepoArgs & { json?: boolean }): Promise<number> {
  const repo = await openRepo(a);
  if (a.json) out(JSON.stringify({ parity: fmt(repo.parity) }));
  else out(`parity of new packs: ${fmt(repo.parity)}`);
  return EXIT.OK;
}

export async function cmdRepairPacks(a: ColdArgs & { dryRun?: boolean }): Promise<number> {
  const repo = await openRepo(a);
  const lock = await takeExclusiveLock(repo, 'repair packs');
  let r: PackRepairReport;
  try {
    await repo.loadIndex();
    r = await repo.repairPacks({ fix: !a.dryRun, onProgress: a.json ? undefined : out });
  } finally {
    await lock.release();
  }
  // Archived shards the rebuilds need: the cost first, then (not in a dry run) one batch of restores.
  const cold = await restoreShards(repo, r.cold, a);
  await repo.coldStorage?.close();
  const unrepairable = r.packs.filter((p) => p.state === 'unrepairable');
  const waiting = r.packs.filter((p) => p.state === 'waiting');
  if (a.json) {
    out(
      JSON.stringify({
        groups: r.groups,
        packs: r.packs,
        bad_parity: r.badParity,
        dry_run: !!a.dryRun,
        cold: r.cold.map((c) => ({ object: c.name, kind: c.kind, bytes: c.bytes, storage_class: c.storageClass, state: c.state })),
        cold_restore: cold.byClass,
        restores_requested: cold.requested,
        expected_by: cold.expectedBy,
        cold_parity_unplanned: r.coldParityUnplanned,
        cold_not_checked: r.coldNotChecked,
      }),
    );
  } else {
    out(`${r.groups} parity groups read`);
    for (const p of r.packs) if (p.state !== 'rebuilt') out(`${p.problem}: ${p.name}: ${STATE_TEXT[p.state]}`);
    for (const b of r.badParity) out(`damaged: parity ${b} (not used)`);
    for (const c of cold.lines) out(c);
    if (r.coldParityUnplanned.length) out(`${count(r.coldParityUnplanned.length, 'archived parity object')} without a group record: their groups are known only once they are restored (tsbak repair index --warm does not restore parity)`);
    if (r.coldNotChecked) out(`${count(r.coldNotChecked, 'archived pack')} of intact groups not read (damage inside them shows once they are restored: tsbak check --read-data)`);
    const rebuilt = r.packs.filter((p) => p.state === 'rebuilt').length;
    out(`${rebuilt} pack(s) rebuilt and checked against their ids, ${unrepairable.length} cannot be rebuilt${waiting.length ? `, ${waiting.length} wait for restores` : ''}`);
    if (unrepairable.length) out("what they held is lost: 'tsbak repair index' then 'tsbak repair snapshots' drop it from the snapshots");
  }
  if (waiting.length && !a.dryRun) {
    process.stderr.write(`tsbak: restores requested, run again later${cold.expectedBy ? ` (expected by ${fmtTime(cold.expectedBy)})` : ''}\n`);
    return EXIT.COLD_PENDING;
  }
  return unrepairable.length || r.badParity.length || r.packs.some((p) => p.state !== 'rebuilt') ? EXIT.CORRUPT : EXIT.OK;
}

const STATE_TEXT: Record<string, string> = {
  repairable: 'repairable: run tsbak repair packs',
  unrepairable: 'cannot be rebuilt (more members of its group lost than it has parity)',
  waiting: 'rebuilt once the archived shards below are restored',
};

/** The plan and cost of restoring archived shards, per storage class, and (unless a dry run) the restores requested in one batch. */
async function restoreShards(repo: Repository, shards: ColdShard[], a: ColdArgs & { dryRun?: boolean }) {
  const res = { lines: [] as string[], byClass: [] as Array<{ storage_class: string; objects: number; bytes: number; tier: string; days: number; restore_usd: number }>, requested: 0, expectedBy: null as string | null };
  if (!shards.length) return res;
  const byClass = new Map<StorageClass, ColdShard[]>();
  for (const s of shards) byClass.set(s.storageClass, [...(byClass.get(s.storageClass) ?? []), s]);
  const region = askedRegion(repo, a);
  const toRequest: ColdShard[] = [];
  for (const [sc, list] of byClass) {
    // The same tier and days for every class; Deep Archive has no Expedited (refused here, before anything is requested).
    const { tier, days } = tierAndDays(a, 'Standard', sc);
    const plan = planOf(sc, list);
    res.lines.push(...describePlan(plan, tier, days, region));
    const c = plan.byState.cold;
    res.byClass.push({ storage_class: sc, objects: c.packs, bytes: c.bytes, tier, days, restore_usd: c.packs ? estimateRestoreCost(sc, tier, c.packs, c.bytes, days, { region }).totalUsd : 0 });
    toRequest.push(...list.filter((s) => s.state === 'cold'));
  }
  if (a.dryRun) {
    if (toRequest.length) res.lines.push(`dry run: no restore requested; 'tsbak repair packs' requests ${count(toRequest.length, 'restore')} in one batch`);
    return res;
  }
  if (!repo.coldStorage) throw new TsbakError('USAGE', `${repo.backend.location} says some objects are archived, but has no cold storage to restore them with`);
  const { tier, days } = tierAndDays(a, 'Standard', null);
  if (toRequest.length) {
    res.requested = (await repo.coldStorage.warm(toRequest, { tier, days })).requested;
    res.lines.push(`requested ${count(res.requested, 'restore')} (tier ${tier}, kept ${count(days, 'day')}); run 'tsbak repair packs' again once they are done`);
  }
  res.expectedBy = expectedBy(repo, shards);
  return res;
}

function planOf(sc: StorageClass, list: ColdShard[]): ColdPlan {
  const z = () => ({ packs: 0, bytes: 0 });
  const byState: ColdPlan['byState'] = { hot: z(), cached: z(), available: z(), restoring: z(), cold: z() };
  for (const s of list) {
    byState[s.state].packs++;
    byState[s.state].bytes += s.bytes;
  }
  return { packs: list.length, bytes: list.reduce((n, s) => n + s.bytes, 0), byState, storageClass: sc, notReady: list };
}

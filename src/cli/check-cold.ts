// check --read-data(-subset) on a repository whose data packs are archived (Glacier, Deep
// Archive): before reading, the packs chosen that are not restored get their restores
// requested in one batch, after a line with the cost; they are not read this time.
import type { Repository } from '../repo/repository.js';
import { isColdClass } from '../glacier/policy.js';
import { coldPlan, describePlan, expectedBy, fmtTime, tierAndDays, type ColdArgs } from './warm.js';

/** The coldPacks option of checkRepository, or undefined when the data is not archived. */
export function coldPacksForCheck(repo: Repository, a: ColdArgs, say: (line: string) => void, done: (expected: string | null) => void): ((packs: Array<{ name: string; blob: Buffer }>) => Promise<Set<string>>) | undefined {
  if (!isColdClass(repo.config.storageClass.data) || !repo.coldStorage) return undefined;
  return async (packs) => {
    const ids = packs.map((p) => p.blob);
    const plan = await coldPlan(repo, ids);
    if (!plan.notReady.length) return new Set();
    // Bulk: a check is never urgent.
    const { tier, days } = tierAndDays(a, 'Bulk', plan.storageClass);
    for (const l of describePlan(plan, tier, days)) say(l);
    const r = await repo.warmBlobs(ids, { tier, days });
    if (r.requested) say(`requested ${r.requested} restores (tier ${tier}, kept ${days} day${days === 1 ? '' : 's'})`);
    const by = expectedBy(repo, plan.notReady);
    done(by ? fmtTime(by) : null);
    return new Set(plan.notReady.map((p) => p.name));
  };
}

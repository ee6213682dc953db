// `tsbak warm <repo> <snapshot> [path...]`: request, in one batch, every restore from cold
// storage (Glacier, Deep Archive) that a subtree of a snapshot needs, after printing how
// many objects, bytes, dollars and hours that is. Idempotent: what is already requested,
// restored or in the local cache is not asked for again (the requests are journaled in
// the cache directory). --wait polls S3 (HEAD) until everything is restored.
//
// `tsbak restore` calls prepareColdData() first: the same batch request, then either exit
// 15 (EXIT.COLD_PENDING, "restores requested, run again later") with --no-wait, or a wait.
import * as path from 'node:path';
import type { RestoreTier, StorageClass } from '../backend/backend.js';
import type { TreeNode } from '../format/tree.js';
import type { BlobState, ColdPack, Repository, Snapshot } from '../repo/repository.js';
import { TsbakError } from '../errors.js';
import { estimateRestoreCost, fmtUsd } from '../glacier/cost.js';
import { askedRegion } from './cost-breakdown.js';
import { checkRestoreRequest, expectedRestoreMs, isColdClass, parseTier } from '../glacier/policy.js';
import { EXIT } from './exit-codes.js';
import { openRepo, type RepoArgs } from './open-repo.js';
import { findSnapshot, type SelectArgs } from './select.js';
import { count, fmtBytes, ProgressLine } from './output.js';

/** Options of every command that may need cold data: warm, restore. */
export interface ColdArgs extends RepoArgs {
  tier?: string;
  days?: number;
  pollInterval?: number;
  json?: boolean;
}

const err = (s: string) => process.stderr.write(`tsbak: ${s}\n`);

export function fmtTime(t: string | number | Date): string {
  return new Date(t).toISOString().replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC');
}

function fmtHours(h: number): string {
  return h < 1 ? `${Math.round(h * 60)} min` : `${Math.round(h)} h`;
}

/** The content blob ids of every file under `paths` (absolute paths in the snapshot; default: all), each once. */
export async function collectContent(repo: Repository, snap: Snapshot, paths?: string[]): Promise<{ ids: Buffer[]; files: number; bytes: number }> {
  const seen = new Set<string>();
  const ids: Buffer[] = [];
  let files = 0;
  let bytes = 0;
  const doneTrees = new Set<string>();
  const addFile = (n: TreeNode) => {
    files++;
    bytes += n.size;
    for (const c of n.content ?? []) {
      const h = c.toString('hex');
      if (!seen.has(h)) {
        seen.add(h);
        ids.push(c);
      }
    }
  };
  const walk = async (tree: Buffer): Promise<void> => {
    const h = tree.toString('hex');
    if (doneTrees.has(h)) return; // an identical directory elsewhere: same content
    doneTrees.add(h);
    for (const n of (await repo.loadTree(tree)).nodes) {
      if (n.type === 'file') addFile(n);
      else if (n.type === 'dir' && n.subtree) await walk(n.subtree);
    }
  };
  const root = Buffer.from(snap.info.tree, 'hex');
  for (const p of paths?.length ? paths : ['/']) {
    const comps = path.posix.resolve('/', p).split('/').filter(Boolean);
    let tree: Buffer = root;
    let node: TreeNode | null = null;
    for (const c of comps) {
      if (node && node.type !== 'dir') throw new TsbakError('NOT_FOUND', `${p} is not in snapshot ${snap.id.slice(0, 8)}`);
      node = (await repo.loadTree(tree)).nodes.find((n) => n.name.equals(Buffer.from(c))) ?? null;
      if (!node) throw new TsbakError('NOT_FOUND', `${p} is not in snapshot ${snap.id.slice(0, 8)}`);
      if (node.type === 'dir') tree = node.subtree ?? Buffer.alloc(0);
    }
    if (node && node.type === 'file') addFile(node);
    else if (!node || (node.type === 'dir' && node.subtree)) await walk(tree);
  }
  return { ids, files, bytes };
}

export interface ColdPlan {
  packs: number;
  bytes: number;
  byState: Record<BlobState, { packs: number; bytes: number }>;
  storageClass: StorageClass | null;
  notReady: ColdPack[];
}

/** Where the packs a set of blobs needs stand, after asking S3 about those being restored. */
export async function coldPlan(repo: Repository, ids: Buffer[], refresh = true): Promise<ColdPlan> {
  const states = await repo.packStates(ids, { refresh });
  const byState = Object.fromEntries((['hot', 'cached', 'available', 'restoring', 'cold'] as BlobState[]).map((s) => [s, { packs: 0, bytes: 0 }])) as ColdPlan['byState'];
  let storageClass: StorageClass | null = null;
  const notReady: ColdPack[] = [];
  for (const { pack, state } of states) {
    byState[state].packs++;
    byState[state].bytes += pack.bytes;
    if (state !== 'hot') storageClass ??= pack.storageClass;
    if (state === 'cold' || state === 'restoring') notReady.push(pack);
  }
  const cold = states.filter((s) => s.state !== 'hot');
  return { packs: cold.length, bytes: cold.reduce((n, s) => n + s.pack.bytes, 0), byState, storageClass, notReady };
}

function emptyPlan(): ColdPlan {
  const z = () => ({ packs: 0, bytes: 0 });
  return { packs: 0, bytes: 0, byState: { hot: z(), cached: z(), available: z(), restoring: z(), cold: z() }, storageClass: null, notReady: [] };
}

export function tierAndDays(a: ColdArgs, defaultTier: RestoreTier, sc: StorageClass | null): { tier: RestoreTier; days: number } {
  const tier = parseTier(a.tier, defaultTier);
  const days = a.days ?? 7;
  if (sc) checkRestoreRequest(sc, tier, days);
  return { tier, days };
}

/** The latest "expected by" among the packs still restoring. */
export function expectedBy(repo: Repository, packs: ColdPack[]): string | null {
  const names = new Set(packs.map((p) => p.name));
  let last: string | null = null;
  for (const s of repo.coldStatus()) if (names.has(s.pack) && s.state === 'restoring' && s.expectedBy && (!last || s.expectedBy > last)) last = s.expectedBy;
  return last;
}

export function describePlan(plan: ColdPlan, tier: RestoreTier, days: number, region: string): string[] {
  const sc = plan.storageClass ?? 'DEEP_ARCHIVE';
  const c = plan.byState.cold;
  const lines = [`${count(plan.packs, 'pack')} (${fmtBytes(plan.bytes)}) in ${sc}: ${c.packs} cold, ${plan.byState.restoring.packs} being restored, ${plan.byState.available.packs} restored in S3, ${plan.byState.cached.packs} in the local cache`];
  if (c.packs) {
    const e = estimateRestoreCost(sc, tier, c.packs, c.bytes, days, { region });
    const by = new Date(Date.now() + expectedRestoreMs(sc, tier));
    lines.push(
      `to restore: ${c.packs} objects, ${fmtBytes(c.bytes)}, tier ${tier}, kept ${days} day${days === 1 ? "" : "s"}: ${fmtUsd(e.requestsUsd + e.retrievalUsd + e.copyUsd)} ` +
        `(requests ${fmtUsd(e.requestsUsd)}, retrieval ${fmtUsd(e.retrievalUsd)}, restored copies ${fmtUsd(e.copyUsd)}) + ${fmtUsd(e.transferUsd + e.getUsd)} to download; ` +
        `typically ${fmtHours(e.hoursLow)}-${fmtHours(e.hoursHigh)}, expected by ${fmtTime(by)}`,
    );
  }
  return lines;
}

/** Waits for the packs with a progress line; true when all are restored. */
async function waitFor(repo: Repository, ids: Buffer[], a: ColdArgs, tier: RestoreTier, days: number): Promise<boolean> {
  const progress = new ProgressLine();
  let lastReady = -1;
  const ok = await repo.waitForBlobs(ids, {
    tier,
    days,
    pollMaxMs: a.pollInterval !== undefined ? Math.max(50, a.pollInterval * 1000) : undefined,
    onProgress: (p) => {
      const text = `restored ${p.ready}/${p.total} packs (${fmtBytes(p.readyBytes)} of ${fmtBytes(p.bytes)}), ${p.restoring} in progress`;
      if (progress.enabled) progress.update(text, true);
      else if (p.ready !== lastReady && !a.json) err(text);
      lastReady = p.ready;
    },
  });
  progress.clear();
  return ok;
}

export type ColdOutcome = { ready: boolean; requested: number; plan: ColdPlan; expectedBy: string | null };

/**
 * Makes sure the cold data of `paths` in `snap` is readable: requests the restores it
 * needs (one batch), then waits for them (`wait`) or returns ready=false.
 */
export async function prepareColdData(repo: Repository, snap: Snapshot, paths: string[] | undefined, a: ColdArgs, opts: { wait: boolean; defaultTier: RestoreTier; quiet?: boolean }): Promise<ColdOutcome> {
  // Only repositories whose data class is archived are walked up front. Packs archived
  // behind our back (an S3 lifecycle rule) are still handled, one at a time, by loadBlob.
  if (!isColdClass(repo.config.storageClass.data) || !repo.coldStorage) return { ready: true, requested: 0, plan: emptyPlan(), expectedBy: null };
  const { ids } = await collectContent(repo, snap, paths);
  return prepareColdBlobs(repo, ids, a, opts);
}

/**
 * The same for a set of blobs (check --read-data-subset: one blob of each chosen pack): the
 * plan and its cost printed, every restore requested in one batch, then a wait or not.
 */
export async function prepareColdBlobs(repo: Repository, ids: Buffer[], a: ColdArgs, opts: { wait: boolean; defaultTier: RestoreTier; quiet?: boolean }): Promise<ColdOutcome> {
  if (!repo.coldStorage) return { ready: true, requested: 0, plan: emptyPlan(), expectedBy: null };
  const plan = await coldPlan(repo, ids);
  if (!plan.notReady.length) return { ready: true, requested: 0, plan, expectedBy: null };
  const { tier, days } = tierAndDays(a, opts.defaultTier, plan.storageClass);
  if (!opts.quiet) for (const l of describePlan(plan, tier, days, askedRegion(repo, a))) err(l);
  const r = await repo.warmBlobs(ids, { tier, days });
  if (!opts.quiet && r.requested) err(`requested ${count(r.requested, 'restore')} (tier ${tier}, kept ${count(days, 'day')})`);
  if (!opts.wait) return { ready: false, requested: r.requested, plan, expectedBy: expectedBy(repo, plan.notReady) };
  const ok = await waitFor(repo, ids, a, tier, days);
  return { ready: ok, requested: r.requested, plan, expectedBy: expectedBy(repo, plan.notReady) };
}

export interface WarmArgs extends ColdArgs, SelectArgs {
  snapshot: string;
  paths?: string[];
  wait?: boolean;
  dryRun?: boolean;
}

export async function cmdWarm(a: WarmArgs): Promise<number> {
  const repo = await openRepo(a);
  const snap = await findSnapshot(repo, a.snapshot, a);
  await repo.loadIndex();
  const { ids, files, bytes } = await collectContent(repo, snap, a.paths);
  const plan = await coldPlan(repo, ids);
  const { tier, days } = tierAndDays(a, 'Bulk', plan.storageClass);
  const say = (s: string) => {
    if (!a.json) process.stdout.write(s + '\n');
  };
  const where = a.paths?.length ? a.paths.join(' ') : '/';
  say(`snapshot ${snap.id.slice(0, 8)} ${where}: ${count(files, 'file')}, ${fmtBytes(bytes)}`);
  if (!plan.packs) say('no cold data: nothing to restore');
  else for (const l of describePlan(plan, tier, days, askedRegion(repo, a))) say(l);

  let requested = 0;
  if (plan.byState.cold.packs && !a.dryRun) {
    requested = (await repo.warmBlobs(ids, { tier, days })).requested;
    say(`requested ${count(requested, 'restore')} (tier ${tier}, kept ${count(days, 'day')})`);
  }
  let ready = plan.notReady.length === 0;
  if (a.wait && !ready && !a.dryRun) {
    ready = await waitFor(repo, ids, a, tier, days);
    if (ready) say(`all ${count(plan.packs, 'pack')} ${plan.packs === 1 ? 'is' : 'are'} restored; they stay readable in S3 for ${count(days, 'day')}`);
  }
  const after = a.dryRun ? plan : await coldPlan(repo, ids, false);
  const by = expectedBy(repo, after.notReady);
  if (!ready && by && !a.wait) say(`expected by ${fmtTime(by)}`);
  if (a.json) {
    const st = Object.fromEntries(Object.entries(after.byState).map(([k, v]) => [k, v.packs]));
    process.stdout.write(
      JSON.stringify({ snapshot: snap.id, files, bytes, packs: after.packs, pack_bytes: after.bytes, states: st, requested, tier, days, ready: after.notReady.length === 0, expected_by: by, storage_class: after.storageClass }) + '\n',
    );
  }
  await repo.coldStorage?.close();
  return EXIT.OK;
}

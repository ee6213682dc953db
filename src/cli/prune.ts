// `tsbak prune <repo>`: deletes what no snapshot uses, repacks partly used hot packs,
// writes a compact index, removes what killed writers left; prints what that saves per
// month, what it costs once (early deletion, restores, requests, download) and when it
// pays back. The parts: repo/prune.ts (usage, apply), glacier/prune-plan.ts (decisions).
import { fmtUsd } from '../glacier/cost.js';
import { parseMaxUnused, planPrune, type PackDecision, type PrunePlan } from '../glacier/prune-plan.js';
import type { LockHandle, Repository } from '../repo/repository.js';
import { applyPrune, pruneUsage, type PruneResult, type PruneStep, type PruneUsage } from '../repo/prune.js';
import { holdLocked } from '../repo/object-lock.js';
import type { Retention } from '../backend/backend.js';
import { TsbakError } from '../errors.js';
import { EXIT } from './exit-codes.js';
import { openRepo, type RepoArgs } from './open-repo.js';
import { fmtBytes, table } from './output.js';

const out = (s: string) => process.stdout.write(s + '\n');

export interface PruneArgs {
  dryRun?: boolean;
  maxUnused?: string;
  repackCold?: boolean;
  /** Prune runs in the bucket's AWS region: reading packs costs no download out of AWS. */
  inRegion?: boolean;
  json?: boolean;
}

/** The exclusive lock forget and prune hold (src/repo/locks.ts): no backup runs meanwhile. */
export function exclusiveLock(repo: Repository, operation: string): Promise<LockHandle> {
  return repo.lock({ exclusive: true, operation });
}

export function requireFullKey(repo: Repository, what: string): void {
  if (!repo.canRead || repo.secrets.keyId !== 'master') throw new TsbakError('WRITE_ONLY_KEY', `${what} needs the full key (the repository passphrase), not a write-only key`);
}

/** TSBAK_PRUNE_EXIT_AT=<step>[:<n>]: SIGKILL itself the n-th time (default 1st) a step is done, as kill -9 there would (tests). */
function exitAtStep(): ((s: PruneStep) => void) | undefined {
  const v = process.env.TSBAK_PRUNE_EXIT_AT;
  if (!v) return undefined;
  const [step, n] = v.split(':');
  let left = Number(n ?? 1);
  return (s) => {
    if (s === step && --left === 0) process.kill(process.pid, 'SIGKILL');
  };
}

export async function cmdPrune(a: RepoArgs & PruneArgs): Promise<number> {
  const repo = await openRepo(a);
  requireFullKey(repo, 'prune');
  const maxUnused = parseMaxUnused(a.maxUnused);
  const lock = a.dryRun ? null : await exclusiveLock(repo, 'prune');
  try {
    const r = await runPrune(repo, { ...a, lock }, maxUnused);
    if (a.json) out(JSON.stringify(r));
    return EXIT.OK;
  } finally {
    await lock?.release();
  }
}

/**
 * Plans, prints (unless json) and, without dryRun, applies. Returns the JSON document. The
 * caller holds the exclusive lock.
 */
export async function runPrune(repo: Repository, a: PruneArgs & { keep?: Set<string>; lock?: LockHandle | null }, maxUnused = parseMaxUnused(a.maxUnused)): Promise<Record<string, unknown>> {
  const progress = (m: string) => {
    if (!a.json && process.stderr.isTTY) process.stderr.write(`\r\x1b[K${m}`);
  };
  const usage = await pruneUsage(repo, { onProgress: progress, keep: a.keep });
  const locked = await holdLocked(repo, usage);
  if (!a.json && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  const plan = planFor(repo, usage, { maxUnused, repackCold: !!a.repackCold, inRegion: !!a.inRegion });
  if (!a.json) printPlan(usage, plan, !!a.dryRun);
  if (!a.json && locked.size) printLocked(usage, locked);
  let result: PruneResult | null = null;
  if (!a.dryRun) {
    result = await applyPrune(repo, usage, plan.actions, { onProgress: progress, onStep: exitAtStep(), beforeDelete: () => a.lock?.assertHeld() });
    if (!a.json && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    if (!a.json) printResult(result);
  }
  return { dry_run: !!a.dryRun, ...planJson(usage, plan), locked: [...locked].map(([name, r]) => ({ name, mode: r.mode.toLowerCase(), until: r.until.toISOString() })), result: result && snake(result) };
}

/** What S3 Object Lock keeps, and what it costs: a locked pack is kept whole, cold or not. */
function printLocked(usage: PruneUsage, locked: Map<string, Retention>): void {
  const packs = usage.packs.filter((p) => p.lockedUntil);
  const files = usage.indexFiles.filter((f) => locked.has(f.name)).length;
  const unused = packs.reduce((s, p) => s + (p.usedBlobs === 0 ? p.size : Math.max(0, p.blobBytes - p.usedBytes)), 0);
  const cold = packs.filter((p) => p.storageClass === 'GLACIER' || p.storageClass === 'DEEP_ARCHIVE' || p.storageClass === 'GLACIER_IR').length;
  const last = [...locked.values()].reduce((m, r) => (r.until > m ? r.until : m), new Date(0));
  out(`locked by S3 Object Lock: ${packs.length} packs (${fmtBytes(unused)} unused in them${cold ? `, ${cold} cold: they cannot be repacked either` : ''}) and ${files} index files kept until their dates (the last ${day(last)}); they are still billed until then`);
}

export function planFor(repo: Repository, usage: PruneUsage, o: { maxUnused: number; repackCold: boolean; inRegion?: boolean }): PrunePlan {
  return planPrune(usage, {
    maxUnused: o.maxUnused,
    repackCold: o.repackCold,
    newClass: { data: repo.config.storageClass.data, tree: repo.config.storageClass.tree },
    // A local repository is read where it is; from S3 the bytes come out of AWS, unless
    // prune runs in the bucket's region (--in-region).
    transferOut: !repo.backend.createObjectFile && !o.inRegion,
  });
}

function snake(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]));
}

const day = (d: Date) => d.toISOString().slice(0, 10);
const months = (m: number | null) => (m === null ? 'never (nothing saved)' : m === 0 ? 'at once (no one-time costs)' : m < 1 ? `${(m * 30).toFixed(1)} days` : `${m.toFixed(1)} months`);

/** The lines every prune and forget --prune prints, dry run or not, and `cost --keep-*`. */
export function moneyLines(plan: PrunePlan): string[] {
  const m = plan.money;
  return [
    `monthly savings: ${fmtUsd(m.monthlySavingsUsd)} per month`,
    `one-time costs: ${fmtUsd(m.oneTimeUsd)} (early deletion ${fmtUsd(m.earlyDeletionUsd)}, restores ${fmtUsd(m.restoreUsd)}, requests ${fmtUsd(m.requestsUsd)}, download ${fmtUsd(m.transferUsd)})`,
    `break-even: ${months(m.breakEvenMonths)}`,
  ];
}

export function printPlan(usage: PruneUsage, plan: PrunePlan, dryRun: boolean): void {
  const t = plan.totals;
  const w = dryRun ? 'would ' : '';
  out(`${usage.snapshots} snapshots, ${usage.trees} trees, ${usage.usedBlobs} blobs in use`);
  out(`packs: ${t.packs} (${fmtBytes(t.bytes)}), ${fmtBytes(t.usedBytes)} used, ${fmtBytes(t.unusedBytes)} unused`);
  out(`  ${w}delete ${t.deletePacks} packs (${fmtBytes(t.deleteBytes)})${t.unindexedPacks ? `, ${t.unindexedPacks} of them in no index (${fmtBytes(t.unindexedBytes)})` : ''}`);
  out(`  ${w}repack ${t.repackPacks} packs (${fmtBytes(t.repackBytes)}, ${fmtBytes(t.repackUsedBytes)} of it used)`);
  out(`  ${w}keep ${t.packs - t.deletePacks - t.repackPacks} packs, ${fmtBytes(t.keptUnusedBytes)} unused in them`);
  const replaced = usage.indexFiles.filter((f) => f.replaced).length;
  const kept = usage.indexFiles.filter((f) => f.kept).length;
  const dropped = usage.indexFiles.length - replaced - kept;
  const others = (kept ? `; ${kept} signed by other keys kept as they are` : '') + (dropped ? `; ${w}delete ${dropped} of other keys no snapshot uses` : '');
  if (!t.deletePacks && !t.repackPacks && replaced <= 1 && !dropped) out(`index: compact already${others}`);
  else out(`index: ${w}replace ${replaced} index files with a compact index${others}`);
  if (usage.unfinished.length) out(`unfinished writes: ${w}remove ${usage.unfinished.length} (${usage.unfinished.map((u) => (u.uploadId ? `upload of ${u.name}` : u.name)).join(', ')})`);
  const early = plan.decisions.filter((d) => d.fate === 'delete' && d.earlyDeletionUsd > 0);
  if (early.length) out(`deleted before their minimum storage duration: ${early.length} packs, ${fmtUsd(early.reduce((s, d) => s + d.earlyDeletionUsd, 0))} early-deletion charge (what keeping them until then would cost)`);
  if (plan.waiting.length) {
    out('kept for now (repacking before their minimum storage duration costs more than waiting):');
    out(table([['Pack', 'Class', 'Size', 'Unused', 'Free to delete from'], ...plan.waiting.map((d: PackDecision) => [d.pack.name, d.pack.storageClass, fmtBytes(d.pack.size), fmtBytes(d.unusedBytes), day(d.freeFrom!)])]).replace(/^/gm, '  '));
  }
  // Other partly used packs kept, by why.
  const why = new Map<string, PackDecision[]>();
  for (const d of plan.decisions) if (d.fate === 'keep' && d.unusedBytes > 0 && d.pack.usedBlobs > 0 && !plan.waiting.includes(d)) why.set(d.why, [...(why.get(d.why) ?? []), d]);
  for (const [w, ds] of why) out(`kept partly used: ${ds.length} packs, ${fmtBytes(ds.reduce((s, d) => s + d.unusedBytes, 0))} unused in them (${w})`);
  for (const l of moneyLines(plan)) out(l);
}

function printResult(r: PruneResult): void {
  out(`deleted ${r.packsDeleted} packs (${fmtBytes(r.bytesDeleted)}), repacked ${r.blobsRepacked} blobs of ${r.packsRepacked} packs into ${r.packsWritten} new (${fmtBytes(r.bytesWritten)}), wrote ${r.indexFilesWritten} index files, deleted ${r.indexFilesDeleted}, removed ${r.unfinishedRemoved} unfinished writes`);
}

export function planJson(usage: PruneUsage, plan: PrunePlan): Record<string, unknown> {
  const m = plan.money;
  const t = plan.totals;
  return {
    snapshots: usage.snapshots,
    trees: usage.trees,
    used_blobs: usage.usedBlobs,
    now: usage.now.toISOString(),
    packs: snake(t),
    index_files: { replaced: usage.indexFiles.filter((f) => f.replaced).length, kept: usage.indexFiles.filter((f) => f.kept).map((f) => ({ name: f.name, signer: f.signer, verified: f.verified })), deleted: usage.indexFiles.filter((f) => !f.replaced && !f.kept).map((f) => f.name) },
    unfinished: usage.unfinished.map((u) => ({ name: u.name, upload_id: u.uploadId ?? null, size: u.size ?? null })),
    monthly_savings_usd: m.monthlySavingsUsd,
    one_time_usd: m.oneTimeUsd,
    early_deletion_usd: m.earlyDeletionUsd,
    restore_usd: m.restoreUsd,
    requests_usd: m.requestsUsd,
    download_usd: m.transferUsd,
    break_even_months: m.breakEvenMonths,
    decisions: plan.decisions.map((d) => ({
      pack: d.pack.name,
      storage_class: d.pack.storageClass,
      size: d.pack.size,
      used_bytes: d.pack.usedBytes,
      unused_bytes: d.unusedBytes,
      age_days: d.ageDays,
      fate: d.fate,
      why: d.why,
      free_from: d.freeFrom?.toISOString() ?? null,
      monthly_savings_usd: d.monthlySavingsUsd,
      early_deletion_usd: d.earlyDeletionUsd,
    })),
    waiting: plan.waiting.map((d) => ({ pack: d.pack.name, storage_class: d.pack.storageClass, unused_bytes: d.unusedBytes, free_from: d.freeFrom!.toISOString() })),
  };
}


// `tsbak forget <repo> --keep-...`: applies a retention policy (repo/retention.ts) to the
// snapshots --host/--path/--tag select, per group, says which it keeps and by which rule and
// which it removes, and removes them (deletes their snapshot objects); --prune then prunes.
import * as path from 'node:path';
import type { LockHandle, Repository, Snapshot } from '../repo/repository.js';
import { applyPolicy, isEmptyPolicy, parseGroupBy, type GroupResult, type RetentionPolicy } from '../repo/retention.js';
import { matchesFilter } from '../repo/snapshot-select.js';
import { parseNameRef } from '../repo/snapshot-names.js';
import { TsbakError } from '../errors.js';
import { EXIT } from './exit-codes.js';
import { openRepo, type RepoArgs } from './open-repo.js';
import { table } from './output.js';
import { lockClaim, lockedSnapshots } from '../repo/object-lock.js';
import type { Retention } from '../backend/backend.js';

/**
 * Of the snapshots to remove, those S3 holds locked now (Object Lock): taken out of `removed`,
 * shown, and returned for --json. A lock a snapshot claims but S3 does not hold is a warning.
 */
async function keepLocked(repo: Repository, removed: string[], claims: Map<string, { lock?: unknown }>, a: { json?: boolean; dryRun?: boolean }): Promise<Array<{ id: string; mode: string; until: string }>> {
  const now = repo.backend.now ? await repo.backend.now() : new Date();
  const locked: Map<string, Retention> = await lockedSnapshots(repo, removed, now);
  for (const id of removed) {
    const c = claims.get(id);
    const claim = c ? lockClaim(c) : null;
    if (claim && claim.until > now && !locked.has(id)) process.stderr.write(`tsbak: warning: snapshot ${id.slice(0, 8)} claims an Object Lock until ${claim.until.toISOString()} that S3 does not hold; it is removed as any other\n`);
  }
  const out = [...locked].map(([id, r]) => ({ id, mode: r.mode.toLowerCase(), until: r.until.toISOString() }));
  removed.splice(0, removed.length, ...removed.filter((id) => !locked.has(id)));
  if (out.length && !a.json) {
    process.stdout.write(`kept ${out.length} snapshots locked by S3 Object Lock (they cannot be removed before their date):\n`);
    process.stdout.write(table([['ID', 'Mode', 'Locked until'], ...out.map((l) => [l.id.slice(0, 8), l.mode, l.until])]) + '\n');
  }
  return out;
}
import { exclusiveLock, requireFullKey, runPrune, type PruneArgs } from './prune.js';

const out = (s: string) => process.stdout.write(s + '\n');

export interface KeepArgs {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  keepWithin?: string;
  keepTag?: string[];
}

export interface ForgetArgs extends RepoArgs, KeepArgs, PruneArgs {
  /** Snapshots named on the command line: removed without a policy. */
  snapshots?: string[];
  host?: string;
  path?: string[];
  tag?: string[];
  groupBy?: string;
  prune?: boolean;
}

export function policyOf(a: KeepArgs): RetentionPolicy {
  return { last: a.keepLast, hourly: a.keepHourly, daily: a.keepDaily, weekly: a.keepWeekly, monthly: a.keepMonthly, yearly: a.keepYearly, within: a.keepWithin, tags: a.keepTag };
}

/** The snapshots --host, --path and --tag select (each --tag a comma-separated list, all of its tags; any --tag). */
export function selected(snaps: Snapshot[], a: { host?: string; path?: string[]; tag?: string[] }): Snapshot[] {
  const paths = a.path?.map((p) => path.resolve(p));
  const tagLists = (a.tag ?? []).map((t) => t.split(',').filter(Boolean));
  return snaps.filter((s) => matchesFilter(s, { host: a.host, paths }) && (!tagLists.length || tagLists.some((l) => l.every((t) => s.info.tags.includes(t)))));
}

/** Applies the policy to the listed snapshots (any snapshot that cannot be read is never removed: it is not listed). */
export function decide(snaps: Snapshot[], a: ForgetArgs | (KeepArgs & { host?: string; path?: string[]; tag?: string[]; groupBy?: string })): Array<GroupResult<{ id: string; time: string; host: string; paths: string[]; tags: string[] }>> {
  const policy = policyOf(a);
  if (isEmptyPolicy(policy)) throw new TsbakError('USAGE', 'no policy given: say what to keep with --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-within or --keep-tag (nothing was removed)');
  const rs = selected(snaps, a).map((s) => ({ id: s.id, time: s.info.time, host: s.info.host, paths: s.info.paths, tags: s.info.tags }));
  return applyPolicy(rs, policy, { groupBy: parseGroupBy(a.groupBy) });
}

/**
 * `forget <repo> <id>...`: removes the named snapshots, even ones that cannot be read
 * (damaged, or signed by a revoked key: prune cannot run while they are there).
 */
async function forgetNamed(a: ForgetArgs, repo: Repository, lock: LockHandle | null): Promise<number> {
  if (!isEmptyPolicy(policyOf(a))) throw new TsbakError('USAGE', 'give snapshot ids or a --keep-* policy, not both');
  const all = await repo.listSnapshotIds();
  const removed: string[] = [];
  for (const given of a.snapshots!) {
    // A name the mount shows (snapshot-names.ts): the readable snapshot it names.
    const named = parseNameRef(given);
    const ref = named?.kind === 'id' ? named.prefix : named?.kind === 'name' ? (await repo.findSnapshot(given, { onWarning: (m) => process.stderr.write(`tsbak: warning: ${m}\n`) })).id : given;
    const m = all.filter((id) => id.startsWith(ref));
    if (!/^[0-9a-f]+$/.test(ref) || m.length === 0) throw new TsbakError('NOT_FOUND', `no snapshot with id ${ref} in ${repo.backend.location}; see 'tsbak snapshots' (nothing was removed)`);
    if (m.length > 1) throw new TsbakError('USAGE', `snapshot id prefix ${ref} is ambiguous (${m.length} matches); give more characters (nothing was removed)`);
    if (!removed.includes(m[0]!)) removed.push(m[0]!);
  }
  const locked = await keepLocked(repo, removed, new Map(), a);
  if (!a.dryRun) {
    lock!.assertHeld();
    for (const id of removed) await repo.forgetSnapshot(id);
  }
  if (!a.json) out(`${a.dryRun ? 'would remove' : 'removed'} ${removed.length} snapshots: ${removed.map((id) => id.slice(0, 8)).join(' ')}`);
  let prune: Record<string, unknown> | null = null;
  if (a.prune) {
    if (!a.json) out('');
    const keep = a.dryRun ? new Set(all.filter((id) => !removed.includes(id))) : undefined;
    prune = await runPrune(repo, { ...a, keep, lock });
  }
  if (a.json) out(JSON.stringify({ dry_run: !!a.dryRun, groups: [], removed, locked, prune }));
  return EXIT.OK;
}

export async function cmdForget(a: ForgetArgs): Promise<number> {
  const repo = await openRepo(a);
  requireFullKey(repo, 'forget');
  const lock = a.dryRun ? null : await exclusiveLock(repo, 'forget');
  try {
    if (a.snapshots?.length) return await forgetNamed(a, repo, lock);
    const bad: string[] = [];
    const snaps = await repo.listSnapshots((id, e) => bad.push(`snapshot ${id.slice(0, 8)} is left alone: it cannot be read (${(e as Error).message})`));
    const groups = decide(snaps, a);
    const removed = groups.flatMap((g) => g.decisions.filter((d) => !d.keep).map((d) => d.snapshot.id));
    if (!a.json) {
      for (const g of groups) {
        const what = [g.key.host !== undefined ? `host ${g.key.host}` : '', g.key.paths ? `paths ${g.key.paths.join(' ')}` : '', g.key.tags ? `tags ${g.key.tags.join(',') || '(none)'}` : ''].filter(Boolean).join(', ');
        out(`snapshots of ${what || 'every host and path'}:`);
        const keep = g.decisions.filter((d) => d.keep);
        const drop = g.decisions.filter((d) => !d.keep);
        out(`keep ${keep.length} snapshots:`);
        if (keep.length) out(table([['ID', 'Time', 'Host', 'Tags', 'Reasons'], ...keep.map((d) => [d.snapshot.id.slice(0, 8), d.snapshot.time.replace('T', ' ').slice(0, 19), d.snapshot.host, d.snapshot.tags.join(','), d.reasons.join(', ')])]));
        out(`${a.dryRun ? 'would remove' : 'remove'} ${drop.length} snapshots:`);
        if (drop.length) out(table([['ID', 'Time', 'Host', 'Tags'], ...drop.map((d) => [d.snapshot.id.slice(0, 8), d.snapshot.time.replace('T', ' ').slice(0, 19), d.snapshot.host, d.snapshot.tags.join(',')])]));
        out('');
      }
    }
    const locked = await keepLocked(repo, removed, new Map(snaps.map((s) => [s.id, s.info])), a);
    if (!a.dryRun) {
      lock!.assertHeld();
      for (const id of removed) await repo.forgetSnapshot(id);
    }
    if (!a.json) out(`${a.dryRun ? 'would remove' : 'removed'} ${removed.length} snapshots`);
    for (const b of bad) process.stderr.write(`tsbak: warning: ${b}\n`);
    let prune: Record<string, unknown> | null = null;
    if (a.prune) {
      if (!a.json) out('');
      // A dry run removed nothing: prune's dry run counts only the snapshots kept.
      const keep = a.dryRun ? new Set((await repo.listSnapshotIds()).filter((id) => !removed.includes(id))) : undefined;
      prune = await runPrune(repo, { ...a, keep, lock });
    }
    if (a.json) {
      out(
        JSON.stringify({
          dry_run: !!a.dryRun,
          groups: groups.map((g) => ({
            host: g.key.host ?? null,
            paths: g.key.paths ?? null,
            tags: g.key.tags ?? null,
            keep: g.decisions.filter((d) => d.keep).map((d) => ({ id: d.snapshot.id, time: d.snapshot.time, reasons: d.reasons })),
            remove: g.decisions.filter((d) => !d.keep).map((d) => ({ id: d.snapshot.id, time: d.snapshot.time })),
          })),
          removed,
          locked,
          prune,
        }),
      );
    }
    return EXIT.OK;
  } finally {
    await lock?.release();
  }
}

// S3 Object Lock (WORM) for a repository (docs/FORMAT.md, "Object Lock"): puts with a
// retention on every object a backup writes (lock files excepted), the retention of the
// objects a snapshot needs extended (never shortened), and, for forget and prune, which
// objects S3 really holds locked now. A snapshot's `lock` field is what its writer claimed:
// shown, never trusted; whatever is kept or deleted is decided by S3's own answer.
import type { Backend, PutOptions, Retention } from '../backend/backend.js';
import { forwardingRest } from '../backend/warm-start.js';
import { TsbakError } from '../errors.js';
import type { PackUsage, PruneUsage } from './prune.js';
import { LOCKS, packName, SNAPSHOTS } from './layout.js';
import { mapLimit } from './map-limit.js';
import type { Repository } from './repository.js';

export type LockMode = 'governance' | 'compliance';

/** What a snapshot records of the lock its writer put (FORMAT.md "Snapshots": `lock`). */
export interface SnapshotLock {
  mode: LockMode;
  /** RFC 3339, UTC. */
  until: string;
}

/** Requests in flight when retentions are read or extended. */
const AT_ONCE = 8;

export const toRetention = (l: { mode: LockMode; until: Date }): Retention => ({ mode: l.mode === 'compliance' ? 'COMPLIANCE' : 'GOVERNANCE', until: l.until });

/**
 * Fails (USAGE) unless the backend is S3 on a bucket with Object Lock enabled: said before
 * anything is written, so a backup meant to be locked is never stored unlocked.
 */
export async function requireObjectLock(backend: Backend): Promise<void> {
  if (!backend.objectLockEnabled || !backend.putRetention || !backend.getRetention) {
    throw new TsbakError('USAGE', `--lock-until/--lock-days need S3 Object Lock, and ${backend.location} is not on S3; back up without them (nothing was written)`);
  }
  if (!(await backend.objectLockEnabled())) {
    throw new TsbakError('USAGE', `bucket of ${backend.location} does not have Object Lock enabled: create a bucket with it (aws s3api create-bucket --object-lock-enabled-for-bucket) or back up without --lock-until/--lock-days (nothing was written)`);
  }
}

/**
 * The backend, with `retention` on every object put except lock files (a run deletes its
 * own lock when it ends; a locked lock file would block every later prune until its date).
 */
export function withRetention(backend: Backend, retention: Retention): Backend {
  const front = {
    put(name: string, data: Uint8Array, opts: PutOptions = {}): Promise<void> {
      return backend.put(name, data, name.startsWith(LOCKS) ? opts : { ...opts, retention });
    },
  };
  return forwardingRest(front, backend) as Backend;
}

/**
 * The objects a snapshot written now may need, to lock with it: every pack a trusted index
 * file lists (dedup only reuses blobs in those) and the index files that list them. A superset
 * of what its trees name: a writer with a write-only key cannot read trees, and a walk would
 * not see inside the subtrees the directory cache reuses.
 */
export function objectsToLock(repo: Repository): string[] {
  const packs = new Set<string>();
  const files = new Set<string>();
  for (const p of repo.index.packs) {
    if (!p.verified) continue;
    packs.add(packName(p.kind, p.id.toString('hex')));
    files.add(p.indexFile);
  }
  return [...packs, ...files];
}

export interface ExtendResult {
  checked: number;
  extended: number;
  /** Listed but absent (pruned meanwhile, or a hostile listing): nothing to lock. */
  missing: number;
}

/**
 * Each object's retention made to last at least until `r.until`: read, and put only where it
 * ends sooner (or there is none). A COMPLIANCE retention stays COMPLIANCE (S3 refuses to weaken
 * it); a later date already there is kept. Never asks S3 to shorten anything.
 */
export async function extendRetention(backend: Backend, names: string[], r: Retention): Promise<ExtendResult> {
  const res: ExtendResult = { checked: 0, extended: 0, missing: 0 };
  await mapLimit(names, AT_ONCE, async (n) => {
    let cur: Retention | null;
    try {
      cur = await backend.getRetention!(n);
    } catch (e) {
      if (e instanceof TsbakError && e.code === 'NOT_FOUND') {
        res.missing++;
        return;
      }
      throw e;
    }
    res.checked++;
    if (cur && cur.until.getTime() >= r.until.getTime()) return;
    await backend.putRetention!(n, { mode: cur?.mode === 'COMPLIANCE' ? 'COMPLIANCE' : r.mode, until: r.until });
    res.extended++;
  });
  return res;
}

/** A snapshot's `lock` claim, checked as hostile input: null when absent or malformed. */
export function lockClaim(info: { lock?: unknown }): { mode: LockMode; until: Date } | null {
  const l = info.lock as { mode?: unknown; until?: unknown } | undefined;
  if (!l || typeof l !== 'object' || (l.mode !== 'governance' && l.mode !== 'compliance') || typeof l.until !== 'string' || l.until.length > 40) return null;
  const until = new Date(l.until);
  return Number.isNaN(until.getTime()) ? null : { mode: l.mode, until };
}

/**
 * Of `names`, those S3 holds locked after `now` (its GetObjectRetention), with their retention.
 * Empty, with no request, when the backend has no Object Lock or the bucket has it off.
 */
export async function lockedNow(backend: Backend, names: string[], now: Date): Promise<Map<string, Retention>> {
  const out = new Map<string, Retention>();
  if (!names.length || !backend.getRetention || !backend.objectLockEnabled || !(await backend.objectLockEnabled())) return out;
  await mapLimit(names, AT_ONCE, async (n) => {
    let r: Retention | null;
    try {
      r = await backend.getRetention!(n);
    } catch (e) {
      if (e instanceof TsbakError && e.code === 'NOT_FOUND') return;
      throw e;
    }
    if (r && r.until.getTime() > now.getTime()) out.set(n, r);
  });
  return out;
}

/** Snapshot ids S3 holds locked now (see lockedNow). */
export async function lockedSnapshots(repo: Repository, ids: string[], now: Date): Promise<Map<string, Retention>> {
  const m = await lockedNow(repo.backend, ids.map((id) => `${SNAPSHOTS}${id}`), now);
  return new Map([...m].map(([n, r]) => [n.slice(SNAPSHOTS.length), r]));
}

/**
 * Marks what prune must not delete because S3 holds it locked: packs it could delete or
 * repack (some blob unused, or in no index) and index files (the compact index replaces
 * them). A locked index file is kept as it is, and so is every pack it lists (its listings
 * must stay true); a locked pack is kept whole until its date. Returns the locked objects.
 * Packs every blob of which is used are kept anyway: no request is spent on them.
 */
export async function holdLocked(repo: Repository, usage: PruneUsage): Promise<Map<string, Retention>> {
  const candidates = usage.packs.filter((p) => !p.indexed || p.usedBlobs < p.blobs).map((p) => p.name);
  const locked = await lockedNow(repo.backend, [...candidates, ...usage.indexFiles.map((f) => f.name)], usage.now);
  if (!locked.size) return locked;
  const byName = new Map(usage.packs.map((p) => [p.name, p]));
  const hold = (p: PackUsage | undefined, until: Date) => {
    if (!p) return;
    p.keptWhole = true;
    if (!p.lockedUntil || p.lockedUntil < until) p.lockedUntil = until;
  };
  for (const f of usage.indexFiles) {
    const r = locked.get(f.name);
    if (!r) continue;
    f.kept = true;
    f.replaced = false;
    for (const p of repo.index.packs) if (p.indexFile === f.name) hold(byName.get(packName(p.kind, p.id.toString('hex'))), r.until);
  }
  for (const [n, r] of locked) hold(byName.get(n), r.until);
  return locked;
}

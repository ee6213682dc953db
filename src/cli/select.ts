// Choosing a snapshot on the command line: `latest` limited by --host, --path, --signer and --tag,
// and how a snapshot's signer is shown.
import * as path from 'node:path';
import type { Repository, Snapshot } from '../repo/repository.js';
import { pickLatest, type SnapshotFilter, type SnapshotSigner } from '../repo/snapshot-select.js';

export interface SelectArgs {
  host?: string;
  /** --path (repeatable): snapshots that backed up each of these paths. */
  path?: string[];
  signer?: string;
  /** --tag (repeatable): `a,b` needs both, repeated options are alternatives (restic). */
  tag?: string[];
}

/** `--tag a,b --tag c` as groups [[a, b], [c]]; empty names are dropped. */
export function tagGroups(tags: string[] | undefined): string[][] | undefined {
  const groups = (tags ?? []).map((t) => t.split(',').filter(Boolean)).filter((g) => g.length);
  return groups.length ? groups : undefined;
}

/** Tags to give a new snapshot: `--tag a,b --tag c` is a, b and c (restic). */
export function tagList(tags: string[] | undefined): string[] | undefined {
  return tags && [...new Set(tags.flatMap((t) => t.split(',')).filter(Boolean))];
}

export function snapshotFilter(a: SelectArgs): SnapshotFilter {
  return { host: a.host, paths: a.path?.map((p) => path.resolve(p)), signer: a.signer, tags: tagGroups(a.tag) };
}

function warn(message: string): void {
  process.stderr.write(`tsbak: warning: ${message}\n`);
}

/** Resolves `ref` (id, prefix, or latest within the filter), warning about future-dated snapshots passed over. */
export function findSnapshot(repo: Repository, ref: string, a: SelectArgs): Promise<Snapshot> {
  return repo.findSnapshot(ref, { filter: snapshotFilter(a), onWarning: warn });
}

/** The latest of snapshots already listed (oldest first), as findSnapshot would choose it; null when none. */
export function latestOf(snaps: Snapshot[], a: SelectArgs): Snapshot | null {
  const { latest, skippedFuture } = pickLatest(snaps, snapshotFilter(a));
  for (const s of skippedFuture) warn(`snapshot ${s.id.slice(0, 8)} is dated ${s.info.time}, more than a day in the future: not taken as latest (name its id to use it)`);
  return latest;
}

/** "master", or a writer's registered name and short id. */
export function signerLabel(s: SnapshotSigner): string {
  return s.id === 'master' ? 'master' : `${s.name} (${s.id.slice(0, 8)})`;
}

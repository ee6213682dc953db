// Which snapshots find, stats, tag and dump work on: ids (or `latest`) given, else every
// snapshot --host, --path and --tag select. --tag as restic's: `a,b` needs both tags,
// repeated options are alternatives.
import type { Repository, Snapshot } from '../repo/repository.js';
import type { Tree } from '../format/tree.js';
import { TreeBatchLoader } from '../repo/tree-batch.js';
import { openRepo, type RepoArgs } from './open-repo.js';
import { matchesFilter } from '../repo/snapshot-select.js';
import { parseNameRef } from '../repo/snapshot-names.js';
import { TsbakError } from '../errors.js';
import { findSnapshot, latestOf, snapshotFilter, type SelectArgs } from './select.js';

export interface TaggedSelectArgs extends SelectArgs {
  tag?: string[];
}

/** `--tag a,b --tag c` as groups [[a, b], [c]]. */
export function tagGroups(tags: string[] | undefined): string[][] {
  return (tags ?? []).map((t) => t.split(',').filter(Boolean)).filter((g) => g.length);
}

function hasTags(s: Snapshot, groups: string[][]): boolean {
  return !groups.length || groups.some((g) => g.every((t) => s.info.tags.includes(t)));
}

/** One snapshot: an id, a prefix, or `latest` among those --host, --path and --tag select. */
export async function findTaggedSnapshot(repo: Repository, ref: string, a: TaggedSelectArgs): Promise<Snapshot> {
  const groups = tagGroups(a.tag);
  if ((ref !== 'latest' && parseNameRef(ref)?.kind !== 'latest') || !groups.length) return findSnapshot(repo, ref, a);
  const all = (await repo.listSnapshots((id, e) => process.stderr.write(`tsbak: warning: snapshot ${id.slice(0, 8)} is not considered: ${(e as Error).message}\n`))).filter((s) => hasTags(s, groups));
  const latest = latestOf(all, a);
  if (!latest) throw new TsbakError('NOT_FOUND', `${repo.backend.location} has no snapshots with tags ${a.tag!.join(' or ')}${a.host !== undefined ? ` of host ${a.host}` : ''}; see 'tsbak snapshots'`);
  return latest;
}

/** The snapshots named (each once, in the order given), or every one the filters select (oldest first). */
export async function selectSnapshots(repo: Repository, refs: string[] | undefined, a: TaggedSelectArgs, onError: (id: string, e: unknown) => void): Promise<Snapshot[]> {
  if (refs?.length) {
    const out: Snapshot[] = [];
    for (const r of refs) {
      const s = await findTaggedSnapshot(repo, r, a);
      if (!out.some((x) => x.id === s.id)) out.push(s);
    }
    return out;
  }
  const filter = snapshotFilter(a);
  const groups = tagGroups(a.tag);
  return (await repo.listSnapshots(onError)).filter((s) => matchesFilter(s, filter) && hasTags(s, groups));
}

/**
 * What a walk of snapshots (find, stats) starts with: the repository, the snapshots
 * selected, the index loaded, and a source that reads trees in batches (repo/tree-batch.ts).
 * An unreadable snapshot is reported and counted in `damage`.
 */
export async function openSnapshotsForWalk(
  a: RepoArgs & TaggedSelectArgs & { snapshot?: string[] },
): Promise<{ repo: Repository; snaps: Snapshot[]; source: { loadTrees(ids: Buffer[]): Promise<Array<Tree | Error>> }; damage: number }> {
  const repo = await openRepo(a);
  let damage = 0;
  const snaps = await selectSnapshots(repo, a.snapshot, a, (id, e) => {
    damage++;
    process.stderr.write(`tsbak: snapshot ${id.slice(0, 8)}: ${(e as Error).message}\n`);
  });
  await repo.loadIndex();
  const loader = new TreeBatchLoader(repo);
  return { repo, snaps, source: { loadTrees: (ids) => repo.loadTrees(ids, loader) }, damage };
}

// The lock repair commands hold while they rewrite the index or snapshots.
import type { Repository } from '../repo/repository.js';

/** Takes the repository's lock for a repair; returns its release. */
export async function takeExclusiveLock(repo: Repository): Promise<() => Promise<void>> {
  return repo.lock();
}

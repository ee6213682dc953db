// What repair commands hold while they rewrite the index or snapshots: the repository's
// exclusive lock (no backup, prune or other repair at work meanwhile), given up on
// SIGINT/SIGTERM with the writes in flight.
import type { LockHandle, Repository } from '../repo/repository.js';
import { cleanUpOnSignals } from './interrupt.js';

export async function takeExclusiveLock(repo: Repository, operation: string): Promise<LockHandle> {
  const lock = await repo.lock({ exclusive: true, operation });
  const interrupt = cleanUpOnSignals(repo, (sig) => `${operation} interrupted by ${sig}: its lock was removed; what it wrote so far leaves the repository valid, run it again to finish`);
  return {
    assertHeld: () => lock.assertHeld(),
    release: async () => {
      interrupt.dispose();
      await lock.release();
    },
  };
}

// tsbak unlock: removes the locks that processes which are gone left behind (stale ones),
// or every lock with --remove-all. Says what it removed and what it kept.
import { describeLock, type LockInfo } from '../repo/repository.js';
import { EXIT } from './exit-codes.js';
import { openRepo, type RepoArgs } from './open-repo.js';

const out = (s: string) => process.stdout.write(s + '\n');

function lockJson(l: LockInfo): Record<string, unknown> {
  return {
    name: l.name,
    host: l.host,
    pid: l.pid,
    time: l.time?.toISOString() ?? null,
    exclusive: l.exclusive,
    operation: l.operation,
    age_seconds: l.ageMs === null ? null : Math.round(l.ageMs / 1000),
    stale: l.stale,
    unreadable: l.unreadable,
  };
}

export async function cmdUnlock(a: RepoArgs & { removeAll?: boolean; json?: boolean }): Promise<number> {
  const repo = await openRepo(a);
  const { removed, kept } = await repo.removeLocks({ all: !!a.removeAll });
  if (a.json) {
    out(JSON.stringify({ removed: removed.map(lockJson), kept: kept.map(lockJson) }));
    return EXIT.OK;
  }
  for (const l of removed) out(`removed ${describeLock(l)}${l.stale ? `: stale, ${l.stale}` : ''}`);
  for (const l of kept) out(`kept ${describeLock(l)}: held${l.ours ? ' by this process' : ''} (--remove-all removes it too)`);
  out(`${removed.length} lock${removed.length === 1 ? '' : 's'} removed, ${kept.length} kept`);
  return EXIT.OK;
}

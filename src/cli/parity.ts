// `tsbak parity set <repo> K+M|off`, `tsbak parity show <repo>` and `tsbak repair packs
// <repo>`: parity across packs (docs/FORMAT.md "Parity"). Settings need the full key;
// repair rebuilds lost or damaged packs from their group's parity, each checked by its id.
import { TsbakError } from '../errors.js';
import { EXIT } from './exit-codes.js';
import { openRepo, type RepoArgs } from './open-repo.js';
import { takeExclusiveLock } from './repair-lock.js';

const out = (s: string) => process.stdout.write(s + '\n');
const fmt = (p: { k: number; m: number } | null) => (p ? `${p.k}+${p.m}` : 'off');

export async function cmdParitySet(a: RepoArgs & { spec?: string; json?: boolean }): Promise<number> {
  if (!a.spec) throw new TsbakError('USAGE', 'parity set needs K+M (e.g. 10+2) or off');
  const repo = await openRepo(a);
  const before = repo.parity;
  const s = await repo.setParity(a.spec);
  if (a.json) out(JSON.stringify({ parity: fmt(s.parity), previous: fmt(before), seq: s.seq, settings_object: s.name }));
  else out(`parity of new packs: ${fmt(before)} -> ${fmt(s.parity)} (wrote ${s.name}, seq ${s.seq}); packs already stored keep their groups`);
  return EXIT.OK;
}

export async function cmdParityShow(a: RepoArgs & { json?: boolean }): Promise<number> {
  const repo = await openRepo(a);
  if (a.json) out(JSON.stringify({ parity: fmt(repo.parity) }));
  else out(`parity of new packs: ${fmt(repo.parity)}`);
  return EXIT.OK;
}

export async function cmdRepairPacks(a: RepoArgs & { dryRun?: boolean; json?: boolean }): Promise<number> {
  const repo = await openRepo(a);
  const lock = await takeExclusiveLock(repo, 'repair packs');
  try {
    await repo.loadIndex();
    const r = await repo.repairPacks({ fix: !a.dryRun, onProgress: a.json ? undefined : out });
    const unrepairable = r.packs.filter((p) => p.state === 'unrepairable');
    if (a.json) {
      out(JSON.stringify({ groups: r.groups, packs: r.packs, bad_parity: r.badParity, dry_run: !!a.dryRun }));
    } else {
      out(`${r.groups} parity groups read`);
      for (const p of r.packs) if (p.state !== 'rebuilt') out(`${p.problem}: ${p.name}: ${p.state === 'repairable' ? 'repairable: run tsbak repair packs' : 'cannot be rebuilt (more members of its group lost than it has parity)'}`);
      for (const b of r.badParity) out(`damaged: parity object ${b} (not used)`);
      const rebuilt = r.packs.filter((p) => p.state === 'rebuilt').length;
      out(`${rebuilt} pack(s) rebuilt and checked against their ids, ${unrepairable.length} cannot be rebuilt`);
      if (unrepairable.length) out("what they held is lost: 'tsbak repair index' then 'tsbak repair snapshots' drop it from the snapshots");
    }
    return unrepairable.length || r.badParity.length || r.packs.some((p) => p.state === 'repairable') ? EXIT.CORRUPT : EXIT.OK;
  } finally {
    await lock.release();
  }
}

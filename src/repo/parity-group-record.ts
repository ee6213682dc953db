// The parity group record of a group just written (docs/FORMAT.md "Parity"): on backends
// whose objects can be archived (S3: Glacier, Deep Archive, by class or by lifecycle rule),
// the group's parity headers and object names go to one small object in the index class,
// which is always readable. Repair plans its restores from it; on other backends every parity
// object is readable, and the headers are read from the objects themselves.
import { sha256 } from '../crypto/hash.js';
import { encodeParityGroup, type ParityGroupRow } from '../format/parity-group.js';
import type { RepoContext } from './context.js';
import { parityGroupName } from './layout.js';

export async function writeParityGroupRecord(ctx: RepoContext, rows: ParityGroupRow[]): Promise<number> {
  if (!ctx.backend.restore || !rows.length) return 0;
  const rec = encodeParityGroup(ctx.secrets.indexKey, rows);
  await ctx.backend.put(parityGroupName(sha256(rec).toString('hex')), rec, { storageClass: ctx.classes.index });
  return rec.length;
}

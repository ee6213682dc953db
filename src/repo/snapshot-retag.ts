// Changing a snapshot's tags. Snapshot objects are immutable and signed, so the change is a
// new snapshot, signed by the master, with everything of the old one (tree, time, host,
// paths, stats, any other field) but the tags, and `original` naming the snapshot it
// replaces (kept from the old one when it has one, as restic does); then the old object is
// deleted. Interrupted between the two, both are there: the new one names the old one.
import type { SnapshotInfo } from '../format/snapshot.js';
import { TsbakError } from '../errors.js';
import type { RepoContext } from './context.js';
import { SNAPSHOTS } from './layout.js';
import type { Snapshot, SnapshotStore } from './snapshot-store.js';

export async function retagSnapshot(ctx: RepoContext, store: SnapshotStore, snap: Snapshot, tags: string[]): Promise<string> {
  if (!ctx.canRead || ctx.secrets.keyId !== 'master') throw new TsbakError('WRITE_ONLY_KEY', 'changing tags needs the full key (the repository passphrase): the new snapshot is signed by the master');
  const info: SnapshotInfo = { ...snap.info, tags, original: snap.info.original ?? snap.id };
  const id = await store.saveSnapshot(info);
  await ctx.backend.delete(`${SNAPSHOTS}${snap.id}`);
  return id;
}

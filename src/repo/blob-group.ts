// Several blobs of one pack read at once: one ranged read of the span they lie in
// (Repository.readSealedBatch coalesces neighbours), opened and checked against their ids
// together on libuv's pool, and kept in the repository's in-memory cache. The mount reads a
// small file's neighbours this way (fuse/pack-group.ts): files of a directory are backed up
// together, so their blobs lie side by side in a pack.
import { openBlobsAsync } from '../platform/native.js';
import type { BlobLocation } from './blob-index.js';
import type { Repository } from './repository.js';

/**
 * Reads the blobs whose packs are hot and returns the plaintexts of those that opened and
 * matched their ids, by hex id. Anything else (a cold pack, damage, no native addon) is left
 * out: the caller reads those one by one, which says what is wrong.
 */
export async function loadBlobGroup(repo: Repository, ids: Buffer[], signal?: AbortSignal): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const want: Buffer[] = [];
  const locs: BlobLocation[] = [];
  for (const id of ids) {
    const loc = repo.locateHot(id);
    if (!loc) continue;
    want.push(id);
    locs.push(loc);
  }
  if (!want.length) return out;
  const batch = await repo.readSealedBatch(locs, { signal });
  const rawLengths = Uint32Array.from(locs, (l) => l.rawLength);
  const outOffsets = new Uint32Array(locs.length);
  let total = 0;
  for (let i = 0; i < locs.length; i++) {
    outOffsets[i] = total;
    total += rawLengths[i]!;
  }
  const plain = Buffer.allocUnsafe(total);
  let ok: Uint8Array;
  try {
    ok = await openBlobsAsync({ ...batch, ids: Buffer.concat(want), rawLengths }, plain, outOffsets);
  } catch {
    return out;
  }
  for (let i = 0; i < want.length; i++) {
    if (!ok[i]) continue;
    // A buffer of its own: a cached view would keep the whole group alive.
    const b = Buffer.from(plain.subarray(outOffsets[i]!, outOffsets[i]! + rawLengths[i]!));
    repo.cacheBlob(want[i]!, b);
    out.set(want[i]!.toString('hex'), b);
  }
  return out;
}

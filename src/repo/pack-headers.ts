// Pack headers read back: a pack is self-describing (docs/FORMAT.md "Packs"), its last
// member lists its blobs under its own key. Read with ranged GETs of the pack's tail, many
// at once, and checked as hostile input: `repair index` and `recover` build listings from
// them when the index files are gone or damaged.
import { openSealed, type X25519Pair } from '../crypto/box.js';
import { blobId, sha256 } from '../crypto/hash.js';
import { openBlob } from '../format/blob.js';
import { checkPackEntries, findPackHeader, openPackHeader, type PackEntry } from '../format/pack.js';
import type { IndexPack } from '../format/index-file.js';
import type { Backend } from '../backend/backend.js';
import { ColdError, NotFoundError } from '../errors.js';
import { packName, packPrefix, parsePackName } from './layout.js';
import { mapLimit } from './map-limit.js';

/** A pack as listed by the backend. */
export interface StoredPack {
  name: string;
  kind: 'data' | 'tree';
  id: string;
  size: number;
  storageClass?: string;
}

/** What reading one pack's header gave. */
export type HeaderOutcome =
  | { pack: StoredPack; state: 'ok'; listing: IndexPack; packKey: Buffer }
  | { pack: StoredPack; state: 'damaged'; reason: string }
  | { pack: StoredPack; state: 'cold' }
  | { pack: StoredPack; state: 'missing' };

/** The first tail read; a pack whose header is longer (many blobs) is read again with a longer one. */
const FIRST_TAIL = 64 << 10;
const TAIL_GROWTH = 16;

/** Every pack the backend holds, data and tree, with its size (names that are not pack names are left out). */
export async function listStoredPacks(backend: Backend, signal?: AbortSignal): Promise<StoredPack[]> {
  const out: StoredPack[] = [];
  for (const kind of ['data', 'tree'] as const) {
    for await (const o of backend.list(packPrefix(kind), signal)) {
      const p = parsePackName(o.name);
      if (p && p.kind === kind) out.push({ name: o.name, kind, id: p.id, size: o.size, storageClass: o.storageClass });
    }
  }
  return out;
}

/**
 * Reads and opens one pack's header: the tail of the pack (a longer one when the header
 * member starts before it), the sealed pack key opened with the repository's private key,
 * the entries decrypted and checked. Damage is a 'damaged' outcome with the reason; an
 * archived pack 'cold'; a pack gone since the listing 'missing'; other errors throw.
 */
export async function readPackHeader(backend: Backend, pack: StoredPack, repoKeys: X25519Pair, signal?: AbortSignal): Promise<HeaderOutcome> {
  let want = Math.min(pack.size, FIRST_TAIL);
  try {
    for (;;) {
      const tail = await backend.get(pack.name, { offset: pack.size - want, length: want }, signal);
      if (tail.length !== want) return { pack, state: 'damaged', reason: `a read of ${want} bytes gave ${tail.length}` };
      let found: ReturnType<typeof findPackHeader>;
      try {
        found = findPackHeader(tail, pack.size);
      } catch (e) {
        return { pack, state: 'damaged', reason: (e as Error).message };
      }
      if (!found) {
        want = Math.min(pack.size, want * TAIL_GROWTH);
        continue;
      }
      let key: Buffer;
      let entries: PackEntry[];
      try {
        key = openSealed(repoKeys, found.sealedKey);
      } catch {
        return { pack, state: 'damaged', reason: 'its sealed pack key does not open with the repository key' };
      }
      try {
        entries = openPackHeader(key, found.encrypted);
      } catch (e) {
        return { pack, state: 'damaged', reason: /version|entries|type/.test((e as Error).message) ? (e as Error).message : 'its header fails authentication' };
      }
      try {
        checkPackEntries(entries, pack.kind, found.at);
      } catch (e) {
        return { pack, state: 'damaged', reason: (e as Error).message };
      }
      const blobs = entries.map((e) => ({ id: e.id, offset: e.offset, length: e.length, rawLength: e.rawLength }));
      return { pack, state: 'ok', listing: { id: Buffer.from(pack.id, 'hex'), kind: pack.kind, sealedKey: found.sealedKey, blobs }, packKey: key };
    }
  } catch (e) {
    if (e instanceof ColdError) return { pack, state: 'cold' };
    if (e instanceof NotFoundError) return { pack, state: 'missing' };
    throw e;
  }
}

/** readPackHeader for many packs, `concurrency` reads in flight; outcomes in the order of `packs`. */
export async function readPackHeaders(
  backend: Backend,
  packs: StoredPack[],
  repoKeys: X25519Pair,
  opts: { concurrency: number; signal?: AbortSignal; onProgress?: (done: number, total: number) => void },
): Promise<HeaderOutcome[]> {
  const out: HeaderOutcome[] = new Array(packs.length);
  let done = 0;
  await mapLimit([...packs.keys()], opts.concurrency, async (i) => {
    out[i] = await readPackHeader(backend, packs[i]!, repoKeys, opts.signal);
    opts.onProgress?.(++done, packs.length);
  });
  return out;
}

/** A pack's object name from its listing. */
export function listingName(p: Pick<IndexPack, 'kind' | 'id'>): string {
  return packName(p.kind, p.id.toString('hex'));
}

/**
 * Reads a whole pack and opens every blob its listing names (AEAD, then the id): the
 * listing's blobs that are sound, and the others with why. A pack whose bytes are not
 * its name (SHA-256) is still opened blob by blob: each blob stands on its own.
 */
export async function verifyPackBlobs(
  backend: Backend,
  listing: IndexPack,
  packKey: Buffer,
  macKey: Buffer,
  signal?: AbortSignal,
): Promise<{ sound: IndexPack['blobs']; bad: Array<{ id: Buffer; reason: string }>; hashMismatch: boolean }> {
  const bytes = await backend.get(listingName(listing), undefined, signal);
  const sound: IndexPack['blobs'] = [];
  const bad: Array<{ id: Buffer; reason: string }> = [];
  for (const b of listing.blobs) {
    if (b.offset + b.length > bytes.length) {
      bad.push({ id: b.id, reason: 'beyond the end of the pack' });
      continue;
    }
    let plain: Buffer;
    try {
      plain = openBlob(packKey, b.id, bytes.subarray(b.offset, b.offset + b.length), b.rawLength);
    } catch {
      bad.push({ id: b.id, reason: 'failed authentication' });
      continue;
    }
    if (plain.length !== b.rawLength || !blobId(macKey, plain).equals(b.id)) bad.push({ id: b.id, reason: 'content does not match its id' });
    else sound.push(b);
  }
  return { sound, bad, hashMismatch: !sha256(bytes).equals(listing.id) };
}

// Which snapshot `latest` is, and which snapshots --host, --path, --signer and --tag select.
// A snapshot dated more than a day ahead of this machine's clock is never `latest` (nor a
// backup's parent): a writer key could otherwise date one 9999 and be every later
// restore's default. It can still be named by its id.
import type { SnapshotInfo } from '../format/snapshot.js';

/** Who signed a snapshot: "master", or a writer key's id and the name it was registered with. */
export interface SnapshotSigner {
  id: string;
  name: string;
}

export interface SelectableSnapshot {
  id: string;
  info: SnapshotInfo;
  signer: SnapshotSigner;
}

export interface SnapshotFilter {
  host?: string;
  /** Absolute paths the snapshot must have backed up (each of them). */
  paths?: string[];
  /** A key id ("master", a writer's id or a prefix of it of 4 or more digits) or a writer's name. */
  signer?: string;
  /** Tag groups: a snapshot matches when it has every tag of at least one group (restic: `--tag a,b --tag c`). */
  tags?: string[][];
}

/** How far ahead of now a snapshot may be dated and still be `latest`. */
export const FUTURE_MS = 24 * 3600 * 1000;

export function isFuture(info: SnapshotInfo, now = Date.now()): boolean {
  const t = Date.parse(info.time);
  return !Number.isFinite(t) || t > now + FUTURE_MS;
}

export function signerMatches(signer: SnapshotSigner, want: string): boolean {
  return signer.id === want || signer.name === want || (want.length >= 4 && signer.id.startsWith(want));
}

export function matchesFilter(s: SelectableSnapshot, f: SnapshotFilter): boolean {
  if (f.host !== undefined && s.info.host !== f.host) return false;
  if (f.paths?.length && !f.paths.every((p) => s.info.paths.includes(p))) return false;
  if (f.signer !== undefined && !signerMatches(s.signer, f.signer)) return false;
  if (f.tags?.length && !f.tags.some((group) => group.every((t) => s.info.tags.includes(t)))) return false;
  return true;
}

/**
 * The newest snapshot of `snaps` (sorted oldest first) that the filter selects and that is
 * not dated in the future; and the future-dated ones passed over (for a warning).
 */
export function pickLatest<T extends SelectableSnapshot>(snaps: T[], f: SnapshotFilter = {}, now = Date.now()): { latest: T | null; skippedFuture: T[] } {
  const skippedFuture: T[] = [];
  for (let i = snaps.length - 1; i >= 0; i--) {
    const s = snaps[i]!;
    if (!matchesFilter(s, f)) continue;
    if (isFuture(s.info, now)) skippedFuture.push(s);
    else return { latest: s, skippedFuture };
  }
  return { latest: null, skippedFuture };
}

// What --json prints: snake_case keys, one document per command (docs/JSON.md is the
// schema; a field renamed here is renamed there). Objects are built field by field, never
// by spreading what the repository holds: a snapshot's JSON carries no key we did not name.
import type { Snapshot } from '../repo/repository.js';
import type { TreeNode } from '../format/tree.js';
import { isFuture } from '../repo/snapshot-select.js';
import { isUtf8 } from './names.js';

/** Version of the JSON documents' format (docs/JSON.md): raised when a field changes meaning or goes away. */
export const JSON_FORMAT_VERSION = 1;

export function snapshotJson(s: Snapshot, now = Date.now()): Record<string, unknown> {
  const i = s.info;
  const st = i.stats;
  return {
    id: s.id,
    short_id: s.id.slice(0, 8),
    time: i.time,
    host: i.host,
    user: i.user,
    paths: i.paths,
    tags: i.tags,
    tree: i.tree,
    parent: i.parent ?? null,
    original: i.original ?? null,
    program: i.program,
    stats: { files: st.files, dirs: st.dirs, bytes_read: st.bytesRead, bytes_added: st.bytesAdded, blobs_added: st.blobsAdded, duration_ms: st.durationMs, errors: st.errors },
    cost_usd_per_month: typeof i.costUsd === 'number' ? i.costUsd : null,
    signer: { id: s.signer.id, name: s.signer.name },
    future: isFuture(i, now),
  };
}

/** One entry of `ls --json`: names as UTF-8 (U+FFFD for bytes that are not), plus base64 of the raw bytes where they are not UTF-8. */
export function lsEntryJson(pathBytes: Buffer, n: TreeNode): Record<string, unknown> {
  const e: Record<string, unknown> = { path: pathBytes.toString(), name: n.name.toString() };
  if (!isUtf8(pathBytes)) e.path_b64 = pathBytes.toString('base64');
  if (!isUtf8(n.name)) e.name_b64 = n.name.toString('base64');
  Object.assign(e, { type: n.type, mode: n.mode, uid: n.uid, gid: n.gid, user: n.user || null, group: n.group || null, size: n.size, mtime: n.mtimeNs.toString(), mtime_iso: isoOfNs(n.mtimeNs) });
  if (n.type === 'symlink' && n.target) {
    e.target = n.target.toString();
    if (!isUtf8(n.target)) e.target_b64 = n.target.toString('base64');
  }
  return e;
}

/** RFC 3339 UTC with nanoseconds, for times before 1970 too. */
export function isoOfNs(ns: bigint): string {
  const ms = ns / 1_000_000n - (ns % 1_000_000n < 0n ? 1n : 0n);
  const frac = ((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return '';
  return d.toISOString().replace(/\.\d{3}Z$/, `.${String(frac).padStart(9, '0')}Z`);
}

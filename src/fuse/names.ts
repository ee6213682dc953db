// Names shown in the mount: entry names (raw bytes, as byte strings in SnapshotFs's paths)
// and the names of the virtual directories (snapshot times, hosts, tags, short ids).

/** A name the mount makes up (UTF-8 text) as a byte string, the form of SnapshotFs's paths. */
export function byteName(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

/** A SnapshotFs path (byte string) as text for log lines (invalid UTF-8 as U+FFFD). */
export function textOfPath(p: string): string {
  return Buffer.from(p, 'latin1').toString('utf8');
}

// The names of snapshots and of host and tag directories: the CLI accepts them too.
export { componentName, timeName } from '../repo/snapshot-names.js';

/** Milliseconds since the epoch of an RFC 3339 time (0 if unparseable). */
export function timeMs(time: string): number {
  const ms = Date.parse(time);
  return Number.isNaN(ms) ? 0 : ms;
}

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

/** A snapshot's time as a directory name: UTC to the second, e.g. 2026-11-25T16:10:01Z. */
export function timeName(time: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(time);
  if (m) return `${m[1]}Z`;
  const ms = Date.parse(time);
  if (Number.isNaN(ms)) return 'unknown-time';
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/** Milliseconds since the epoch of an RFC 3339 time (0 if unparseable). */
export function timeMs(time: string): number {
  const ms = Date.parse(time);
  return Number.isNaN(ms) ? 0 : ms;
}

/** A host or tag as one path component: no '/', not empty, not '.' or '..'. */
export function componentName(s: string): string {
  const c = s.replace(/\//g, '_').replace(/\0/g, '');
  return c === '' || c === '.' || c === '..' ? `_${c}` : c;
}

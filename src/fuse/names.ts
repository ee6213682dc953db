// Names shown in the mount: entry names (raw bytes, as byte strings in SnapshotFs's paths)
// and the names of the virtual directories (snapshot times, hosts, tags, short ids).

/**
 * The name FUSE shows for raw name bytes. fuse-native passes names as JavaScript strings
 * and converts them to UTF-8, so bytes that are not valid UTF-8 cannot be shown as they
 * are: each such byte appears as `\xNN` (like `ls -b`), the rest unchanged.
 */
export function displayName(raw: Buffer): string {
  const s = raw.toString('utf8');
  if (!s.includes('\uFFFD') || Buffer.from(s, 'utf8').equals(raw)) return s;
  let out = '';
  let i = 0;
  while (i < raw.length) {
    const n = utf8SeqLen(raw, i);
    if (n > 0) {
      out += raw.toString('utf8', i, i + n);
      i += n;
    } else {
      out += `\\x${raw[i]!.toString(16).padStart(2, '0')}`;
      i++;
    }
  }
  return out;
}

/** Length of the valid UTF-8 sequence starting at i, or 0 if none starts there. */
function utf8SeqLen(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  let n: number;
  let min: number;
  if (c >= 0xc2 && c <= 0xdf) [n, min] = [2, 0x80];
  else if (c >= 0xe0 && c <= 0xef) [n, min] = [3, 0x800];
  else if (c >= 0xf0 && c <= 0xf4) [n, min] = [4, 0x10000];
  else return 0;
  if (i + n > b.length) return 0;
  let cp = c & (0xff >> (n + 1));
  for (let k = 1; k < n; k++) {
    const d = b[i + k]!;
    if ((d & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (d & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

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

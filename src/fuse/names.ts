// Names shown in the mount: entry names (raw bytes in the tree, strings in FUSE) and the
// names of the virtual directories (snapshot times, hosts, tags, short ids).

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

// The names of snapshots and of host and tag directories: the CLI accepts them too.
export { componentName, timeName } from '../repo/snapshot-names.js';

/** Milliseconds since the epoch of an RFC 3339 time (0 if unparseable). */
export function timeMs(time: string): number {
  const ms = Date.parse(time);
  return Number.isNaN(ms) ? 0 : ms;
}

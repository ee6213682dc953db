// Names as a terminal shows them. Trees hold names as raw bytes (any byte but '/' and NUL);
// printed as they are, a newline would split one entry into two and bytes that are not
// UTF-8 would all look alike. Like `ls -b` and restic, `quoteName` escapes them: `\n`,
// `\t`, `\r`, `\\`, and `\xHH` for other control characters and for each byte that is not
// part of valid UTF-8. The escaping is one-to-one: two names never print the same.
export { isUtf8 } from 'node:buffer';

const SHORT: Record<number, string> = { 0x09: '\\t', 0x0a: '\\n', 0x0d: '\\r', 0x5c: '\\\\' };
const hex = (b: number) => `\\x${b.toString(16).padStart(2, '0')}`;

/** Length of the valid UTF-8 sequence starting at b[i] (1-4), or 0 when the byte there starts none. */
function utf8Length(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number) => i + k < b.length && (b[i + k]! & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 1 + 1 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const c1 = b[i + 1]!;
    if ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 > 0x9f)) return 0; // overlong, surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const c1 = b[i + 1]!;
    if ((c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 > 0x8f)) return 0; // overlong, beyond U+10FFFF
    return 4;
  }
  return 0;
}

/** `name` for a terminal line: escaped as the header says. */
export function quoteName(name: Buffer | string): string {
  const b = typeof name === 'string' ? Buffer.from(name) : name;
  let out = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const n = utf8Length(b, i);
    if (n === 0) out += hex(c);
    else if (n === 1) out += SHORT[c] ?? (c < 0x20 || c === 0x7f ? hex(c) : String.fromCharCode(c));
    else {
      const ch = b.toString('utf8', i, i + n);
      const cp = ch.codePointAt(0)!;
      // C1 controls and the line/paragraph separators move a terminal's cursor too: their bytes.
      out += (cp >= 0x80 && cp <= 0x9f) || cp === 0x2028 || cp === 0x2029 ? [...b.subarray(i, i + n)].map(hex).join('') : ch;
    }
    i += n || 1;
  }
  return out;
}

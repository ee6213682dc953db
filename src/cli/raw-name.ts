// Names and paths from a snapshot are raw bytes: shown escaped (as `ls -b` does), so that
// control characters never reach the terminal and two different names never print the
// same; given in JSON losslessly (the bytes in base64 beside the display form).
import { isUtf8 } from 'node:buffer';

const ESC: Record<number, string> = { 0x5c: '\\\\', 0x0a: '\\n', 0x09: '\\t', 0x0d: '\\r' };
const hex = (b: number) => `\\x${b.toString(16).padStart(2, '0')}`;

/**
 * The bytes as text: UTF-8 as is, except backslash (\\), newline (\n), tab (\t), return (\r),
 * other control characters and every byte that is not part of valid UTF-8 (\xNN).
 */
export function escapeName(b: Uint8Array): string {
  let out = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      out += ESC[c] ?? (c < 0x20 || c === 0x7f ? hex(c) : String.fromCharCode(c));
      i++;
      continue;
    }
    const k = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    const seq = k && i + k <= b.length ? b.subarray(i, i + k) : null;
    if (seq && isUtf8(seq)) {
      const s = Buffer.from(seq).toString('utf8');
      const cp = s.codePointAt(0)!;
      // C1 controls and the line/paragraph separators are escaped as their bytes too.
      out += (cp >= 0x80 && cp <= 0x9f) || cp === 0x2028 || cp === 0x2029 ? [...seq].map(hex).join('') : s;
      i += k;
    } else {
      out += hex(c);
      i++;
    }
  }
  return out;
}

/** JSON fields for raw bytes: `{key: text}`, plus `{key_b64: base64}` when the bytes are not UTF-8 (then the text is escapeName's). */
export function jsonName(key: string, b: Uint8Array): Record<string, string> {
  if (isUtf8(b)) return { [key]: Buffer.from(b.buffer, b.byteOffset, b.length).toString('utf8') };
  return { [key]: escapeName(b), [`${key}_b64`]: Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64') };
}

/** `dir/name` of raw bytes (dir is '/' for the root). */
export function joinRaw(dir: Buffer, name: Buffer): Buffer {
  return dir.length === 1 && dir[0] === 0x2f ? Buffer.concat([dir, name]) : Buffer.concat([dir, Buffer.from('/'), name]);
}

/** A time in ns since the epoch as RFC 3339 UTC with nanoseconds; null beyond what a Date holds. */
export function isoNs(ns: bigint): string | null {
  const sec = ns / 1_000_000_000n - (ns % 1_000_000_000n < 0n ? 1n : 0n);
  const frac = ns - sec * 1_000_000_000n;
  const ms = Number(sec) * 1000;
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return null;
  const d = new Date(ms).toISOString();
  return `${d.slice(0, 19)}.${frac.toString().padStart(9, '0')}Z`;
}

/** A time for tables: "2026-12-04 08:30:00 UTC" ("?" beyond what a Date holds). */
export function tableTime(ns: bigint): string {
  const s = isoNs(ns);
  return s ? `${s.slice(0, 10)} ${s.slice(11, 19)} UTC` : '?';
}

// Names and paths from a snapshot are raw bytes: shown escaped (as `ls -b` does), so that
// control characters never reach the terminal and two different names never print the
// same; given in JSON losslessly (the bytes in base64 beside the display form).
import { isUtf8 } from 'node:buffer';
import { quoteName } from './names.js';

/** The bytes as text, escaped as `ls` prints names (names.ts: one escaping for every command). */
export function escapeName(b: Uint8Array): string {
  return quoteName(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** JSON fields for raw bytes (docs/JSON.md): `{key: UTF-8 text}`, plus `{key_b64: base64}` when the bytes are not UTF-8 (then the text has U+FFFD for them). */
export function jsonName(key: string, b: Uint8Array): Record<string, string> {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  if (isUtf8(buf)) return { [key]: buf.toString('utf8') };
  return { [key]: buf.toString('utf8'), [`${key}_b64`]: buf.toString('base64') };
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

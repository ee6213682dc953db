// scrypt with its p lanes on up to two threads of libuv's pool (native/scrypt.c): the same
// bytes as node:crypto's scrypt, which runs the lanes one after the other, in about half the
// wall time when p >= 2, at twice the working memory (two lanes' 128·r·N bytes at once).
import { pbkdf2Sync } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { addon } from './addon.js';

interface Scrypt {
  scryptRomixAsync(lanes: Uint8Array, params: Uint32Array): Promise<void>;
}

/** Lanes run at once at most: the memory is this many times one lane's (TSBAK_KDF_THREADS=1: one at a time, node's memory). */
const MAX_THREADS = process.env.TSBAK_KDF_THREADS === '1' ? 1 : 2;

/** scrypt(passphrase, salt, N, r, p, dkLen) per RFC 7914; PBKDF2 in node:crypto, the SMix of each lane in C. */
export async function scryptLanes(passphrase: Buffer | string, salt: Buffer, N: number, r: number, p: number, dkLen: number): Promise<Buffer> {
  const laneBytes = 128 * r;
  const b = pbkdf2Sync(passphrase, salt, 1, p * laneBytes, 'sha256');
  const threads = Math.max(1, Math.min(p, MAX_THREADS, availableParallelism()));
  const per = Math.ceil(p / threads);
  const params = Uint32Array.of(N, r);
  const jobs: Promise<void>[] = [];
  for (let i = 0; i < p; i += per) jobs.push(addon<Scrypt>().scryptRomixAsync(b.subarray(i * laneBytes, Math.min(p, i + per) * laneBytes), params));
  try {
    await Promise.all(jobs);
    return pbkdf2Sync(passphrase, b, 1, dkLen, 'sha256');
  } finally {
    b.fill(0);
  }
}

/** Whether the addon has scryptRomixAsync (an addon built before it has not). */
export function haveScryptLanes(): boolean {
  try {
    return typeof addon<Partial<Scrypt>>().scryptRomixAsync === 'function';
  } catch {
    return false;
  }
}

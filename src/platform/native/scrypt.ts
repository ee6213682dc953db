// scrypt with its p lanes in native/scrypt.c on libuv's pool: the same bytes as node:crypto's
// scrypt, which runs the lanes one after the other in scalar code. In SIMD (x86-64) the addon
// runs two lanes at once on one thread, so all lanes go to one job: about half the CPU, the
// memory of two lanes (2 · 128·r·N bytes), and a core left for the main thread. Without
// SIMD, the lanes run on up to two threads, about half the wall time at the same memory.
import { pbkdf2Sync } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { addon } from './addon.js';

interface Scrypt {
  scryptRomixAsync(lanes: Uint8Array, params: Uint32Array): Promise<void>;
  scryptSimd?(): 'scalar' | 'sse2' | 'avx2' | 'avx512';
}

/** Lanes' memory at once at most, in lanes (TSBAK_KDF_THREADS=1: one, node's memory, lanes one at a time in scalar code). */
const MAX_AT_ONCE = process.env.TSBAK_KDF_THREADS === '1' ? 1 : 2;

/** scrypt(passphrase, salt, N, r, p, dkLen) per RFC 7914; PBKDF2 in node:crypto, the SMix of each lane in C. */
export async function scryptLanes(passphrase: Buffer | string, salt: Buffer, N: number, r: number, p: number, dkLen: number): Promise<Buffer> {
  const laneBytes = 128 * r;
  const b = pbkdf2Sync(passphrase, salt, 1, p * laneBytes, 'sha256');
  const params = Uint32Array.of(N, r);
  const romix = (from: number, to: number) => addon<Scrypt>().scryptRomixAsync(b.subarray(from * laneBytes, to * laneBytes), params);
  try {
    if (MAX_AT_ONCE === 1) {
      for (let i = 0; i < p; i++) await romix(i, i + 1);
    } else if (scryptSimd() !== 'scalar') {
      await romix(0, p);
    } else {
      const threads = Math.max(1, Math.min(p, MAX_AT_ONCE, availableParallelism()));
      const per = Math.ceil(p / threads);
      const jobs: Promise<void>[] = [];
      for (let i = 0; i < p; i += per) jobs.push(romix(i, Math.min(p, i + per)));
      await Promise.all(jobs);
    }
    return pbkdf2Sync(passphrase, b, 1, dkLen, 'sha256');
  } finally {
    b.fill(0);
  }
}

/** What the addon's SMix runs as: the best SIMD this CPU has, or a lesser one named by TSBAK_SCRYPT_SIMD ('scalar' from an addon built before SIMD). */
export function scryptSimd(): 'scalar' | 'sse2' | 'avx2' | 'avx512' {
  return addon<Scrypt>().scryptSimd?.() ?? 'scalar';
}

/** Whether the addon has scryptRomixAsync (an addon built before it has not). */
export function haveScryptLanes(): boolean {
  try {
    return typeof addon<Partial<Scrypt>>().scryptRomixAsync === 'function';
  } catch {
    return false;
  }
}

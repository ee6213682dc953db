// Passphrase -> key-encryption key, scrypt from node:crypto (OpenSSL; far faster than a
// pure-JS argon2id, so stronger parameters fit the same time budget). The parameters are
// stored next to the wrapped key so they can be raised later without breaking old keys.
import { scryptSync, randomBytes } from 'node:crypto';

export interface KdfParams {
  alg: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string; // base64
}

export function newKdfParams(fast = false): KdfParams {
  // N=2^15, r=8, p=4: 32 MiB (what restic's calibration settles on) and the CPU time of
  // N=2^17 with p=1 (~0.3-0.4 s here): 2^17 with p=1 needed 128 MiB, most of the peak
  // memory of a small backup. TSBAK_FAST_KDF (tests only) uses 2^12.
  if (fast) return { alg: 'scrypt', N: 1 << 12, r: 8, p: 1, salt: randomBytes(16).toString('base64') };
  return { alg: 'scrypt', N: 1 << 15, r: 8, p: 4, salt: randomBytes(16).toString('base64') };
}

export function deriveKey(passphrase: string, params: KdfParams): Buffer {
  if (params.alg !== 'scrypt') throw new Error(`unknown KDF ${params.alg}`);
  return scryptSync(passphrase.normalize('NFC'), Buffer.from(params.salt, 'base64'), 32, {
    N: params.N,
    r: params.r,
    p: params.p,
    maxmem: 256 * params.N * params.r + (32 << 20),
  });
}

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
  // N=2^17, r=8: 128 MiB and ~0.3 s here. TSBAK_FAST_KDF (tests only) uses 2^12.
  const N = fast ? 1 << 12 : 1 << 17;
  return { alg: 'scrypt', N, r: 8, p: 1, salt: randomBytes(16).toString('base64') };
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

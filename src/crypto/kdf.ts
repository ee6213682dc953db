// Passphrase -> key-encryption key, scrypt from node:crypto (OpenSSL; far faster than a
// pure-JS argon2id, so stronger parameters fit the same time budget). The parameters are
// stored next to the wrapped key so they can be raised later without breaking old keys.
// They are read from the bucket (or a key file): bounded before use, so that altered
// parameters cannot make opening take hours or all the memory (docs/FORMAT.md "Primitives").
import { scrypt, scryptSync, randomBytes } from 'node:crypto';

export interface KdfParams {
  alg: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string; // base64
}

/**
 * What deriveKey accepts. tsbak has written N=2^17 r=8 p=1 (before 2026-11-25), N=2^15
 * r=8 p=4 (since), and N=2^12 r=8 p=1 (TSBAK_FAST_KDF, tests): each costs N·r·p = 2^20 or
 * less. Allowed: up to 4 times that work (N·r·p <= 2^22, ~1.5 s) and 256 MiB (128·N·r).
 */
export const KDF_BOUNDS = { minLogN: 10, maxLogN: 20, maxR: 32, maxP: 16, maxWork: 1 << 22, maxMem: 256 << 20, saltBytes: [16, 64] } as const;

/** KDF parameters that are not what tsbak could have written (malformed, or out of KDF_BOUNDS): damage. */
export class KdfParamsError extends Error {}

export function newKdfParams(fast = false): KdfParams {
  // N=2^15, r=8, p=4: 32 MiB (what restic's calibration settles on) and the CPU time of
  // N=2^17 with p=1 (~0.3-0.4 s here): 2^17 with p=1 needed 128 MiB, most of the peak
  // memory of a small backup. TSBAK_FAST_KDF (tests only) uses 2^12.
  if (fast) return { alg: 'scrypt', N: 1 << 12, r: 8, p: 1, salt: randomBytes(16).toString('base64') };
  return { alg: 'scrypt', N: 1 << 15, r: 8, p: 4, salt: randomBytes(16).toString('base64') };
}

const int = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/** Throws KdfParamsError unless the parameters are within KDF_BOUNDS; returns the salt. */
export function checkKdfParams(params: unknown): Buffer {
  const p = params as KdfParams;
  const B = KDF_BOUNDS;
  if (typeof p !== 'object' || p === null) throw new KdfParamsError('no kdf parameters');
  if (p.alg !== 'scrypt') throw new KdfParamsError(`unknown KDF ${JSON.stringify(p.alg)}`);
  if (!int(p.N) || p.N < 2 ** B.minLogN || p.N > 2 ** B.maxLogN || (p.N & (p.N - 1)) !== 0) throw new KdfParamsError(`scrypt N=${p.N} is not a power of two from 2^${B.minLogN} to 2^${B.maxLogN}`);
  if (!int(p.r) || p.r < 1 || p.r > B.maxR) throw new KdfParamsError(`scrypt r=${p.r} is not from 1 to ${B.maxR}`);
  if (!int(p.p) || p.p < 1 || p.p > B.maxP) throw new KdfParamsError(`scrypt p=${p.p} is not from 1 to ${B.maxP}`);
  if (p.N * p.r * p.p > B.maxWork || 128 * p.N * p.r > B.maxMem) throw new KdfParamsError(`scrypt N=${p.N} r=${p.r} p=${p.p} is more work or memory than tsbak allows`);
  if (typeof p.salt !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(p.salt) || p.salt.length % 4 !== 0) throw new KdfParamsError('salt is not base64');
  const salt = Buffer.from(p.salt, 'base64');
  if (salt.length < B.saltBytes[0] || salt.length > B.saltBytes[1]) throw new KdfParamsError(`salt of ${salt.length} bytes`);
  return salt;
}

export function deriveKey(passphrase: string, params: KdfParams): Buffer {
  const salt = checkKdfParams(params);
  return scryptSync(passphrase.normalize('NFC'), salt, 32, {
    N: params.N,
    r: params.r,
    p: params.p,
    maxmem: 256 * params.N * params.r + (32 << 20),
  });
}

/**
 * deriveKey on libuv's pool: the same key, while the main thread goes on (opening a
 * repository reads the index and snapshots meanwhile).
 */
export function deriveKeyAsync(passphrase: string, params: KdfParams): Promise<Buffer> {
  const salt = checkKdfParams(params);
  const key = prefetchKey(passphrase, params, salt);
  const started = prefetched.get(key);
  if (started) {
    prefetched.delete(key);
    return started;
  }
  return scryptAsync(passphrase, salt, params);
}

/** Derivations started before they were asked for, by passphrase and parameters (taken once). */
const prefetched = new Map<string, Promise<Buffer>>();

function prefetchKey(passphrase: string, params: KdfParams, salt: Buffer): string {
  return JSON.stringify([passphrase.normalize('NFC'), params.N, params.r, params.p, salt.toString('base64')]);
}

/**
 * Starts deriveKeyAsync(passphrase, params) now, on libuv's pool, for a later call with the
 * same arguments to take: a command can start the KDF before it has loaded its modules.
 * Parameters out of KDF_BOUNDS start nothing (the later call reports them).
 */
export function startDeriveKey(passphrase: string, params: KdfParams): void {
  let salt: Buffer;
  try {
    salt = checkKdfParams(params);
  } catch {
    return;
  }
  const key = prefetchKey(passphrase, params, salt);
  if (prefetched.has(key)) return;
  const p = scryptAsync(passphrase, salt, params);
  p.catch(() => {}); // reported to whoever takes it; unhandled if nobody does
  prefetched.set(key, p);
}

/** An scrypt that computes what node:crypto's does, faster (platform/native/scrypt.ts runs the lanes in parallel). */
export type ScryptImpl = (passphrase: string, salt: Buffer, N: number, r: number, p: number, dkLen: number) => Promise<Buffer>;
let scryptImpl: ScryptImpl | null = null;

/** deriveKeyAsync uses impl from now on (the cli sets it; crypto cannot import the addon). */
export function useScrypt(impl: ScryptImpl | null): void {
  scryptImpl = impl;
}

function scryptAsync(passphrase: string, salt: Buffer, params: KdfParams): Promise<Buffer> {
  if (scryptImpl && params.p > 1) return scryptImpl(passphrase.normalize('NFC'), salt, params.N, params.r, params.p, 32);
  return new Promise((resolve, reject) =>
    scrypt(passphrase.normalize('NFC'), salt, 32, { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + (32 << 20) }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

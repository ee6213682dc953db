// Ed25519 signatures (node:crypto). Every snapshot is signed by the key that wrote it.
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { newRawPair } from './raw-keys.js';

export interface Ed25519Pair {
  publicKey: Buffer;
  privateKey: Buffer;
}

export function newEd25519(): Ed25519Pair {
  const { publicKey, privateKey } = newRawPair('ed25519');
  return { publicKey, privateKey };
}

export function signBytes(pair: Ed25519Pair, msg: Uint8Array): Buffer {
  const key = createPrivateKey({
    key: { kty: 'OKP', crv: 'Ed25519', d: pair.privateKey.toString('base64url'), x: pair.publicKey.toString('base64url') },
    format: 'jwk',
  });
  return sign(null, msg, key);
}

export function verifyBytes(publicKey: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' });
  try {
    return verify(null, msg, key, sig);
  } catch {
    return false;
  }
}

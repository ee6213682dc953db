// Sealing to a public key (anonymous, like libsodium's crypto_box_seal): an ephemeral
// X25519 key pair, ECDH with the recipient, HKDF-SHA256 to an AES-256-GCM key.
// Sealed form: ephemeral public key (32) || nonce (12) || ciphertext || tag (16).
// Only the holder of the repository's private key (the full key) can open it, which is
// what makes write-only keys write-only.
import { createPrivateKey, createPublicKey, diffieHellman, hkdfSync, type KeyObject } from 'node:crypto';
import { newRawPair } from './raw-keys.js';
import { aeadOpen, aeadSeal, AuthError } from './aead.js';

const INFO = Buffer.from('tsbak seal v1');

export interface X25519Pair {
  publicKey: Buffer; // 32 raw bytes
  privateKey: Buffer; // 32 raw bytes
}

export function newX25519(): X25519Pair {
  const { publicKey, privateKey } = newRawPair('x25519');
  return { publicKey, privateKey };
}

function pubObj(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}
const privCache = new Map<string, KeyObject>();
function privObj(raw: Uint8Array, pub: Uint8Array): KeyObject {
  const k = Buffer.from(raw).toString('base64url');
  let o = privCache.get(k);
  if (!o) {
    o = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: k, x: Buffer.from(pub).toString('base64url') }, format: 'jwk' });
    privCache.set(k, o);
  }
  return o;
}

function wrapKey(shared: Buffer, eph: Uint8Array, recipient: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([eph, recipient]), INFO, 32));
}

export function sealTo(recipientPub: Uint8Array, plaintext: Uint8Array): Buffer {
  const eph = newRawPair('x25519');
  const ephPub = eph.publicKey;
  const shared = diffieHellman({ privateKey: eph.key, publicKey: pubObj(recipientPub) });
  return Buffer.concat([ephPub, aeadSeal(wrapKey(shared, ephPub, recipientPub), plaintext, ephPub)]);
}

export function openSealed(pair: X25519Pair, sealed: Uint8Array): Buffer {
  if (sealed.length < 32 + 28) throw new AuthError();
  const ephPub = sealed.subarray(0, 32);
  const shared = diffieHellman({ privateKey: privObj(pair.privateKey, pair.publicKey), publicKey: pubObj(ephPub) });
  return aeadOpen(wrapKey(shared, ephPub, pair.publicKey), sealed.subarray(32), ephPub);
}

export const SEAL_OVERHEAD = 32 + 12 + 16;

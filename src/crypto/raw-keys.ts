// New X25519 and Ed25519 key pairs as raw 32-byte values, made from random bytes imported as
// PKCS#8, not with generateKeyPairSync. Node 20 can deadlock when a key made by
// generateKeyPairSync is exported as JWK: the export holds the key's mutex while it
// allocates, a GC then runs the finished key-generation job's destructor, and that takes
// the same mutex (seen as a backup hung forever, its main thread waiting in
// ~KeyGenJob under KeyObjectHandle::ExportJWK). Sealing a pack key makes a pair per pack.
import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';

/** DER of a PKCS#8 private key of each type, up to its 32 raw bytes (RFC 8410). */
const PKCS8_PREFIX = {
  x25519: Buffer.from('302e020100300506032b656e04220420', 'hex'),
  ed25519: Buffer.from('302e020100300506032b657004220420', 'hex'),
};

/** A new pair: its raw bytes, and the private key as a KeyObject (for diffieHellman, sign). */
export function newRawPair(type: 'x25519' | 'ed25519'): { publicKey: Buffer; privateKey: Buffer; key: KeyObject } {
  return rawPairOf(type, randomBytes(32));
}

/** The pair of a raw private key: checks that a stored private key matches its stored public key. */
export function rawPairOf(type: 'x25519' | 'ed25519', privateKey: Buffer): { publicKey: Buffer; privateKey: Buffer; key: KeyObject } {
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX[type], privateKey]), format: 'der', type: 'pkcs8' });
  // SPKI DER of these types ends with the 32 raw bytes of the public key.
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return { publicKey: Buffer.from(spki.subarray(spki.length - 32)), privateKey, key };
}

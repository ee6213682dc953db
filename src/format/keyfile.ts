// Key objects (keys/<id>) and local key files. See docs/FORMAT.md ("Keys").
import type { KdfParams } from '../crypto/kdf.js';

/** What a write-only key holds: enough to chunk, dedup, encrypt and sign, not to decrypt. */
export interface WriterSecrets {
  repoId: string;
  keyId: string; // 'master' for the full key
  macKey: Buffer; // blob ids
  chunkerSeed: Buffer; // gear table
  indexKey: Buffer; // index files (writers read them to dedup)
  repoPub: Buffer; // X25519 public key everything is sealed to
  signPub: Buffer; // Ed25519, this key's own
  signPriv: Buffer;
  /** Writers: the master's Ed25519 public key, to verify the config and registrations (absent in key files made before it). */
  masterSignPub?: Buffer;
}

export interface FullSecrets extends WriterSecrets {
  repoPriv: Buffer; // X25519 private key: opens packs, trees, snapshots
}

const B64 = ['macKey', 'chunkerSeed', 'indexKey', 'repoPub', 'signPub', 'signPriv', 'repoPriv', 'masterSignPub'] as const;
/** Fields every key has. */
const REQUIRED = B64.slice(0, 6);

/** Malformed secrets (a field missing, not base64, of the wrong length): the key is damaged. */
export class KeyFormatError extends Error {}

const STRICT_B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function secretsToJson(s: WriterSecrets | FullSecrets): Record<string, string> {
  const o: Record<string, string> = { repoId: s.repoId, keyId: s.keyId };
  for (const k of B64) {
    const v = (s as any)[k] as Buffer | undefined;
    if (v) o[k] = v.toString('base64');
  }
  return o;
}

/** Parses secrets, strictly: every value of the right form and length (each is 32 bytes), else KeyFormatError naming it. */
export function secretsFromJson(o: Record<string, string>): WriterSecrets | FullSecrets {
  if (typeof o !== 'object' || o === null) throw new KeyFormatError('secrets are not an object');
  if (typeof o.repoId !== 'string' || !/^[0-9a-f]{32}$/.test(o.repoId)) throw new KeyFormatError('repoId is not 32 hex digits');
  if (o.keyId !== 'master' && (typeof o.keyId !== 'string' || !/^[0-9a-f]{32}$/.test(o.keyId))) throw new KeyFormatError('keyId is not "master" nor 32 hex digits');
  const s: any = { repoId: o.repoId, keyId: o.keyId };
  for (const k of B64) {
    const v = o[k];
    if (v === undefined) {
      if ((REQUIRED as readonly string[]).includes(k)) throw new KeyFormatError(`${k} is missing`);
      continue;
    }
    if (typeof v !== 'string' || !STRICT_B64.test(v)) throw new KeyFormatError(`${k} is not base64`);
    s[k] = Buffer.from(v, 'base64');
    if (s[k].length !== 32) throw new KeyFormatError(`${k} has ${s[k].length} bytes, not 32`);
  }
  return s;
}

/** The key check value: binds a key's macKey, chunkerSeed, indexKey and repoPub to what the master signed (config.keyCheck). */
export function keyCheckMessage(s: WriterSecrets): Buffer {
  return Buffer.concat([Buffer.from('tsbak key check v1'), s.chunkerSeed, s.indexKey, s.repoPub]);
}

/** keys/<id> for a passphrase-protected full key. */
export interface FullKeyObject {
  v: 1;
  kind: 'full';
  created: string;
  host: string;
  kdf: KdfParams;
  wrapped: string; // b64 AEAD(kdf(passphrase), JSON secrets, aad "tsbak key v1")
}

/** keys/<id> registering a writer's signing key, signed by the full key. */
export interface WriterKeyObject {
  v: 1;
  kind: 'writer';
  keyId: string;
  name: string;
  created: string;
  signPub: string;
  sig: string; // Ed25519 by the master signing key over writerRegistrationMessage()
}

export function writerRegistrationMessage(keyId: string, name: string, signPub: string): Buffer {
  return Buffer.from(`tsbak writer key v1\n${keyId}\n${name}\n${signPub}\n`);
}

/**
 * keys/revoked-<keyId>: the master's revocation of a writer key. Snapshots signed by that key
 * are accepted only when listed in `snapshots` (made before the revocation, still trusted).
 */
export interface RevocationObject {
  v: 1;
  kind: 'revocation';
  keyId: string;
  name: string;
  revoked: string; // ISO 8601 UTC
  snapshots: string[]; // snapshot ids (64 hex), sorted
  sig: string; // Ed25519 by the master signing key over revocationMessage()
}

export function revocationMessage(r: Pick<RevocationObject, 'keyId' | 'name' | 'revoked' | 'snapshots'>): Buffer {
  return Buffer.from(`tsbak key revocation v1\n${r.keyId}\n${r.name}\n${r.revoked}\n${r.snapshots.join(',')}\n`);
}

/** A local write-only key file (--out laptop.key). Plain by default, or passphrase-wrapped. */
export interface WriterKeyFile {
  v: 1;
  kind: 'tsbak-writer-key';
  repoId: string;
  keyId: string;
  name: string;
  secrets?: Record<string, string>;
  kdf?: KdfParams;
  wrapped?: string;
}

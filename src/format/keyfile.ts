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
}

export interface FullSecrets extends WriterSecrets {
  repoPriv: Buffer; // X25519 private key: opens packs, trees, snapshots
}

const B64 = ['macKey', 'chunkerSeed', 'indexKey', 'repoPub', 'signPub', 'signPriv', 'repoPriv'] as const;

export function secretsToJson(s: WriterSecrets | FullSecrets): Record<string, string> {
  const o: Record<string, string> = { repoId: s.repoId, keyId: s.keyId };
  for (const k of B64) {
    const v = (s as any)[k] as Buffer | undefined;
    if (v) o[k] = v.toString('base64');
  }
  return o;
}

export function secretsFromJson(o: Record<string, string>): WriterSecrets | FullSecrets {
  const s: any = { repoId: o.repoId, keyId: o.keyId };
  for (const k of B64) if (o[k] !== undefined) s[k] = Buffer.from(o[k], 'base64');
  for (const k of B64.slice(0, 6)) if (!s[k]) throw new Error(`key lacks ${k}`);
  return s;
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

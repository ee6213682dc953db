// Creating, wrapping and unwrapping keys. The full key's secrets are stored in keys/<id>,
// wrapped by a passphrase; write-only keys live in local files and are registered in
// keys/<id> with their public signing key, signed by the full key.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { aeadOpen, aeadSeal, AuthError } from '../crypto/aead.js';
import { newX25519 } from '../crypto/box.js';
import { hmac } from '../crypto/hash.js';
import { deriveKey, deriveKeyAsync, KdfParamsError, newKdfParams } from '../crypto/kdf.js';
import { rawPairOf } from '../crypto/raw-keys.js';
import { newEd25519, signBytes, verifyBytes } from '../crypto/sign.js';
import { configSignedMessage, type ConfigSignature, type RepoConfig } from '../format/config.js';
import {
  keyCheckMessage,
  KeyFormatError,
  revocationMessage,
  secretsFromJson,
  secretsToJson,
  writerRegistrationMessage,
  type FullKeyObject,
  type FullSecrets,
  type RevocationObject,
  type WriterKeyFile,
  type WriterKeyObject,
  type WriterSecrets,
} from '../format/keyfile.js';
import { TsbakError } from '../errors.js';

const KEY_AAD = Buffer.from('tsbak key v1');

export function newRepoSecrets(repoId: string): FullSecrets {
  const box = newX25519();
  const sign = newEd25519();
  return {
    repoId,
    keyId: 'master',
    macKey: randomBytes(32),
    chunkerSeed: randomBytes(32),
    indexKey: randomBytes(32),
    repoPub: box.publicKey,
    repoPriv: box.privateKey,
    signPub: sign.publicKey,
    signPriv: sign.privateKey,
  };
}

function fastKdf(): boolean {
  return process.env.TSBAK_FAST_KDF === '1';
}

export function wrapFullKey(secrets: FullSecrets, passphrase: string): FullKeyObject {
  const kdf = newKdfParams(fastKdf());
  const kek = deriveKey(passphrase, kdf);
  const wrapped = aeadSeal(kek, Buffer.from(JSON.stringify(secretsToJson(secrets))), KEY_AAD);
  return { v: 1, kind: 'full', created: new Date().toISOString(), host: hostname(), kdf, wrapped: wrapped.toString('base64') };
}

/**
 * Opens a full key object (parsed JSON from keys/<id>) with the passphrase: its secrets,
 * 'wrong' when the passphrase does not open it (authentication fails: it may also be
 * damaged inside, which nothing can tell apart), or why it is damaged (malformed, KDF
 * parameters out of bounds, secrets malformed once opened).
 */
export async function unwrapFullKey(obj: FullKeyObject, passphrase: string): Promise<FullSecrets | 'wrong' | { damaged: string }> {
  if (typeof obj.wrapped !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(obj.wrapped) || obj.wrapped.length % 4 !== 0) return { damaged: 'wrapped is not base64' };
  const wrapped = Buffer.from(obj.wrapped, 'base64');
  if (wrapped.length < 12 + 16 + 2) return { damaged: 'wrapped is too short' };
  let kek: Buffer;
  try {
    kek = await deriveKeyAsync(passphrase, obj.kdf);
  } catch (e) {
    if (e instanceof KdfParamsError) return { damaged: e.message };
    throw e;
  }
  let plain: Buffer;
  try {
    plain = aeadOpen(kek, wrapped, KEY_AAD);
  } catch (e) {
    if (e instanceof AuthError) return 'wrong';
    throw e;
  }
  try {
    const s = secretsFromJson(JSON.parse(plain.toString())) as FullSecrets;
    if (s.keyId !== 'master' || !s.repoPriv) return { damaged: 'the secrets are not a full key' };
    return s;
  } catch (e) {
    return { damaged: `secrets: ${(e as Error).message}` };
  }
}

/** HMAC-SHA256(macKey, "tsbak key check v1" || chunkerSeed || indexKey || repoPub): see docs/FORMAT.md ("config"). */
export function keyCheck(s: WriterSecrets): Buffer {
  return hmac(s.macKey, keyCheckMessage(s));
}

/** Why a key's private halves do not match its public ones (a flipped bit), or null. */
export function inconsistentSecrets(s: WriterSecrets | FullSecrets): string | null {
  if (!rawPairOf('ed25519', s.signPriv).publicKey.equals(s.signPub)) return 'signPriv does not match signPub';
  const priv = (s as FullSecrets).repoPriv;
  if (priv && !rawPairOf('x25519', priv).publicKey.equals(s.repoPub)) return 'repoPriv does not match repoPub';
  return null;
}

/** The master's signature of a config (written by init as part of config, or as config.sig). */
export function signConfig(config: RepoConfig, full: FullSecrets): ConfigSignature {
  const check = keyCheck(full);
  const sig = signBytes({ publicKey: full.signPub, privateKey: full.signPriv }, configSignedMessage(config, full.signPub, check));
  return { signPub: full.signPub, keyCheck: check, sig };
}

/** Whether `sig` is the master's (masterSignPub) signature of this config. */
export function verifyConfig(config: RepoConfig, sig: ConfigSignature, masterSignPub: Buffer): boolean {
  return sig.signPub.equals(masterSignPub) && verifyBytes(masterSignPub, configSignedMessage(config, sig.signPub, sig.keyCheck), sig.sig);
}

export function newWriterKey(full: FullSecrets, name: string, passphrase?: string): { file: WriterKeyFile; registration: WriterKeyObject; keyId: string } {
  const keyId = randomBytes(16).toString('hex');
  const sign = newEd25519();
  const secrets: WriterSecrets = {
    repoId: full.repoId,
    keyId,
    macKey: full.macKey,
    chunkerSeed: full.chunkerSeed,
    indexKey: full.indexKey,
    repoPub: full.repoPub,
    signPub: sign.publicKey,
    signPriv: sign.privateKey,
    masterSignPub: full.signPub,
  };
  const signPub = sign.publicKey.toString('base64');
  const registration: WriterKeyObject = {
    v: 1,
    kind: 'writer',
    keyId,
    name,
    created: new Date().toISOString(),
    signPub,
    sig: signBytes({ publicKey: full.signPub, privateKey: full.signPriv }, writerRegistrationMessage(keyId, name, signPub)).toString('base64'),
  };
  const file: WriterKeyFile = { v: 1, kind: 'tsbak-writer-key', repoId: full.repoId, keyId, name };
  const json = Buffer.from(JSON.stringify(secretsToJson(secrets)));
  if (passphrase) {
    file.kdf = newKdfParams(fastKdf());
    file.wrapped = aeadSeal(deriveKey(passphrase, file.kdf), json, KEY_AAD).toString('base64');
  } else {
    file.secrets = secretsToJson(secrets);
  }
  return { file, registration, keyId };
}

export function isWriterKeyFile(o: unknown): o is WriterKeyFile {
  return typeof o === 'object' && o !== null && (o as any).kind === 'tsbak-writer-key';
}

export function openWriterKeyFile(file: WriterKeyFile, passphrase: string | undefined, where: string): WriterSecrets {
  const damaged = (why: string) => new TsbakError('CORRUPT', `key file ${where} is damaged (${why}); use a backup copy of it, or make a new one with 'tsbak key add-writer'`);
  const parse = (o: Record<string, string>): WriterSecrets => {
    try {
      const s = secretsFromJson(o);
      if (s.keyId === 'master' || (s as FullSecrets).repoPriv) throw new KeyFormatError('not a write-only key');
      if (s.repoId !== file.repoId || s.keyId !== file.keyId) throw new KeyFormatError('its secrets name another key');
      return s;
    } catch (e) {
      if (e instanceof KeyFormatError || e instanceof SyntaxError) throw damaged(e.message);
      throw e;
    }
  };
  if (file.secrets) return parse(file.secrets);
  if (!file.kdf || !file.wrapped) throw new TsbakError('USAGE', `${where} is not a valid tsbak key file`);
  if (!passphrase) throw new TsbakError('WRONG_PASSWORD', `${where} is protected by a passphrase: give it with --password-file or TSBAK_PASSWORD`);
  let plain: Buffer;
  try {
    plain = aeadOpen(deriveKey(passphrase, file.kdf), Buffer.from(file.wrapped, 'base64'), KEY_AAD);
  } catch (e) {
    if (e instanceof AuthError) throw new TsbakError('WRONG_PASSWORD', `wrong passphrase for key file ${where}`);
    if (e instanceof KdfParamsError) throw damaged(e.message);
    throw e;
  }
  try {
    return parse(JSON.parse(plain.toString()));
  } catch (e) {
    if (e instanceof SyntaxError) throw damaged('its secrets are not JSON');
    throw e;
  }
}

/** Checks that a writer registration was signed by the repository's full key. */
export function verifyRegistration(reg: WriterKeyObject, masterSignPub: Buffer): boolean {
  return verifyBytes(masterSignPub, writerRegistrationMessage(reg.keyId, reg.name, reg.signPub), Buffer.from(reg.sig, 'base64'));
}

/** Checks a writer registration's form and the master's signature; its public signing key, or null. */
export function registeredSignPub(reg: WriterKeyObject, masterSignPub: Buffer): Buffer | null {
  if (typeof reg !== 'object' || reg === null || reg.kind !== 'writer' || typeof reg.keyId !== 'string' || typeof reg.name !== 'string' || typeof reg.signPub !== 'string' || typeof reg.sig !== 'string') return null;
  if (!verifyRegistration(reg, masterSignPub)) return null;
  const pub = Buffer.from(reg.signPub, 'base64');
  return pub.length === 32 ? pub : null;
}

/** The master's revocation of a writer key; `snapshots` are that key's snapshots still trusted. */
export function newRevocation(full: FullSecrets, keyId: string, name: string, snapshots: string[]): RevocationObject {
  const r = { keyId, name, revoked: new Date().toISOString(), snapshots: [...snapshots].sort() };
  return { v: 1, kind: 'revocation', ...r, sig: signBytes({ publicKey: full.signPub, privateKey: full.signPriv }, revocationMessage(r)).toString('base64') };
}

/** A revocation object, when well formed and signed by the master key; null otherwise. */
export function verifiedRevocation(o: unknown, masterSignPub: Buffer): RevocationObject | null {
  const r = o as RevocationObject;
  if (typeof r !== 'object' || r === null || r.v !== 1 || r.kind !== 'revocation') return null;
  if (typeof r.keyId !== 'string' || typeof r.name !== 'string' || typeof r.revoked !== 'string' || typeof r.sig !== 'string') return null;
  if (!Array.isArray(r.snapshots) || !r.snapshots.every((id) => typeof id === 'string' && /^[0-9a-f]{64}$/.test(id))) return null;
  return verifyBytes(masterSignPub, revocationMessage(r), Buffer.from(r.sig, 'base64')) ? r : null;
}

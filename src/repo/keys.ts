// Creating, wrapping and unwrapping keys. The full key's secrets are stored in keys/<id>,
// wrapped by a passphrase; write-only keys live in local files and are registered in
// keys/<id> with their public signing key, signed by the full key.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { aeadOpen, aeadSeal, AuthError } from '../crypto/aead.js';
import { newX25519 } from '../crypto/box.js';
import { deriveKey, newKdfParams } from '../crypto/kdf.js';
import { newEd25519, signBytes, verifyBytes } from '../crypto/sign.js';
import {
  secretsFromJson,
  secretsToJson,
  writerRegistrationMessage,
  type FullKeyObject,
  type FullSecrets,
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

/** Returns null if the passphrase does not open this key object. */
export function unwrapFullKey(obj: FullKeyObject, passphrase: string): FullSecrets | null {
  const kek = deriveKey(passphrase, obj.kdf);
  try {
    const s = secretsFromJson(JSON.parse(aeadOpen(kek, Buffer.from(obj.wrapped, 'base64'), KEY_AAD).toString()));
    return s as FullSecrets;
  } catch (e) {
    if (e instanceof AuthError) return null;
    throw e;
  }
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
  if (file.secrets) return secretsFromJson(file.secrets);
  if (!file.kdf || !file.wrapped) throw new TsbakError('USAGE', `${where} is not a valid tsbak key file`);
  if (!passphrase) throw new TsbakError('WRONG_PASSWORD', `${where} is protected by a passphrase: give it with --password-file or TSBAK_PASSWORD`);
  try {
    return secretsFromJson(JSON.parse(aeadOpen(deriveKey(passphrase, file.kdf), Buffer.from(file.wrapped, 'base64'), KEY_AAD).toString()));
  } catch (e) {
    if (e instanceof AuthError) throw new TsbakError('WRONG_PASSWORD', `wrong passphrase for key file ${where}`);
    throw e;
  }
}

/** Checks that a writer registration was signed by the repository's full key. */
export function verifyRegistration(reg: WriterKeyObject, masterSignPub: Buffer): boolean {
  return verifyBytes(masterSignPub, writerRegistrationMessage(reg.keyId, reg.name, reg.signPub), Buffer.from(reg.sig, 'base64'));
}

// The repository's keys: passphrases, writer keys and their revocation, and the signing
// keys snapshots and index files are checked against.
import { randomBytes } from 'node:crypto';
import { encodeConfigSig } from '../format/config.js';
import type { FullSecrets, RevocationObject, WriterKeyFile, WriterKeyObject } from '../format/keyfile.js';
import { TsbakError } from '../errors.js';
import { newRevocation, newWriterKey, registeredSignPub, signConfig, verifiedRevocation, wrapFullKey } from './keys.js';
import { readConfigSig } from './opening.js';
import { CONFIG_SIG, KEYS, REVOKED } from './layout.js';
import type { RepoContext } from './context.js';

/** A signing key trusted for snapshots, and its revocation if the master revoked it. */
export interface SignerKey {
  pub: Buffer;
  name: string;
  revoked: RevocationObject | null;
}

export class KeyStore {
  private signers: Promise<Map<string, SignerKey>> | null = null;

  constructor(private readonly ctx: RepoContext) {}

  /** Whether the config carries the master's signature (in itself, or in config.sig). */
  async configSigned(): Promise<boolean> {
    return this.ctx.config.version >= 2 || (await readConfigSig(this.ctx.backend).catch(() => null)) !== null;
  }

  /** Signs a version 1 config: writes config.sig (once; objects are immutable). False when it is signed already. */
  async signConfig(): Promise<boolean> {
    this.ctx.requireRead('sign the config');
    if (await this.configSigned()) return false;
    await this.ctx.backend.put(CONFIG_SIG, encodeConfigSig(signConfig(this.ctx.config, this.ctx.secrets as FullSecrets)), { storageClass: this.ctx.config.storageClass.other });
    return true;
  }

  /**
   * Makes a writer key and registers it. `save` stores the key file first: a key whose file
   * cannot be written is never registered (its secret would be lost with it).
   */
  async addWriterKey(name: string, passphrase: string | undefined, save: (file: WriterKeyFile) => Promise<void>): Promise<WriterKeyFile> {
    this.ctx.requireRead('add a writer key');
    // The key file carries masterSignPub, and so expects a signed config: sign it now if it is not.
    await this.signConfig();
    const { file, registration, keyId } = newWriterKey(this.ctx.secrets as FullSecrets, name, passphrase);
    await save(file);
    await this.ctx.backend.put(`${KEYS}${keyId}`, Buffer.from(JSON.stringify(registration, null, 2)));
    return file;
  }

  /** Adds a key object that opens the full key with `passphrase`; returns its name. */
  async addPassword(passphrase: string): Promise<string> {
    this.ctx.requireRead('add a passphrase');
    const name = `${KEYS}${randomBytes(16).toString('hex')}`;
    await this.ctx.backend.put(name, Buffer.from(JSON.stringify(wrapFullKey(this.ctx.secrets as FullSecrets, passphrase), null, 2)));
    return name;
  }

  /**
   * Changes the passphrase that opened the repository: the new key object is written first,
   * then the old one removed, so an interruption leaves both passphrases working, never none.
   */
  async changePassword(passphrase: string): Promise<{ added: string; removed: string }> {
    this.ctx.requireRead('change a passphrase');
    const old = this.ctx.keyObject;
    if (!old) throw new TsbakError('USAGE', 'key passwd needs the repository opened with a passphrase');
    const added = await this.addPassword(passphrase);
    await this.ctx.backend.delete(old);
    this.ctx.keyObject = added;
    return { added, removed: old };
  }

  async listKeys(): Promise<Array<{ id: string; kind: string; name?: string; created: string; host?: string; revoked?: string }>> {
    const out = [];
    const signers = this.ctx.canRead ? await this.signerKeys() : null;
    for await (const o of this.ctx.backend.list(KEYS)) {
      if (o.name.startsWith(REVOKED)) continue; // shown as the key's "revoked"
      let k: any;
      try {
        k = JSON.parse((await this.ctx.backend.get(o.name)).toString());
      } catch (e) {
        if (!(e instanceof SyntaxError)) throw e;
        k = { kind: 'damaged', created: '' };
      }
      const id = o.name.slice(KEYS.length);
      const revoked = signers?.get(id)?.revoked?.revoked;
      out.push({ id, kind: k.kind, name: k.name, created: k.created, host: k.host, ...(revoked ? { revoked } : {}) });
    }
    return out;
  }

  /**
   * Revokes a writer key (full key only): writes keys/revoked-<keyId>, listing the
   * snapshots that key signed so far, which stay trusted; any other snapshot it signs is
   * refused from then on. `ref` is the key's id, a unique prefix of it, or its name.
   */
  async revokeWriterKey(ref: string, signedBy: (keyId: string) => Promise<string[]>): Promise<{ keyId: string; name: string; kept: number }> {
    this.ctx.requireRead('revoke a key');
    const signers = await this.signerKeys();
    const matches = [...signers].filter(([id, k]) => id !== 'master' && (id === ref || k.name === ref || (ref.length >= 4 && id.startsWith(ref))));
    if (!matches.length) throw new TsbakError('NOT_FOUND', `no writer key ${ref} in ${this.ctx.backend.location}; see 'tsbak key list'`);
    if (matches.length > 1) throw new TsbakError('USAGE', `${ref} names ${matches.length} writer keys; give its full id (see 'tsbak key list')`);
    const [keyId, key] = matches[0]!;
    if (key.revoked) throw new TsbakError('USAGE', `writer key ${key.name} (${keyId}) was revoked already, on ${key.revoked.revoked}`);
    const kept = await signedBy(keyId);
    const rev = newRevocation(this.ctx.secrets as FullSecrets, keyId, key.name, kept);
    await this.ctx.backend.put(`${REVOKED}${keyId}`, Buffer.from(JSON.stringify(rev, null, 2)), { storageClass: this.ctx.config.storageClass.other });
    this.signers = null;
    return { keyId, name: key.name, kept: kept.length };
  }

  /** Signing keys trusted for snapshots: the master key and every writer it registered. */
  signerKeys(): Promise<Map<string, SignerKey>> {
    // One listing shared by concurrent snapshot reads (each used to list keys/ and GET
    // every key until the first finished); a failed one is tried again by the next caller.
    this.signers ??= this.readSignerKeys().catch((e) => {
      this.signers = null;
      throw e;
    });
    return this.signers;
  }

  private async readSignerKeys(): Promise<Map<string, SignerKey>> {
    const master = this.ctx.masterSignPub;
    const m = new Map<string, SignerKey>();
    // Our own key is known without its registration (a writer may not be able to verify it).
    if (this.ctx.secrets.keyId !== 'master') m.set(this.ctx.secrets.keyId, { pub: this.ctx.secrets.signPub, name: 'this key', revoked: null });
    if (!master) return m;
    m.set('master', { pub: master, name: 'master', revoked: null });
    const revocations: RevocationObject[] = [];
    // The first listing after opening is the one opening made, with the objects it got.
    const read = this.ctx.keysRead;
    this.ctx.keysRead = null;
    for await (const o of read?.listed ? read.listed.map((name) => ({ name })) : this.ctx.backend.list(KEYS)) {
      let obj: any;
      try {
        obj = JSON.parse((read?.bytes.get(o.name) ?? (await this.ctx.backend.get(o.name))).toString());
      } catch {
        continue;
      }
      if (obj?.kind === 'revocation') {
        const r = verifiedRevocation(obj, master);
        if (r && o.name === `${REVOKED}${r.keyId}`) revocations.push(r);
        continue;
      }
      if (obj?.kind !== 'writer' || o.name !== `${KEYS}${obj.keyId}`) continue;
      const pub = registeredSignPub(obj as WriterKeyObject, master);
      if (pub) m.set(obj.keyId, { pub, name: obj.name, revoked: null });
    }
    for (const r of revocations) {
      const k = m.get(r.keyId);
      if (k) k.revoked = r;
    }
    return m;
  }
}

// Snapshots: written last by a backup, signed by the key that made it; read, checked
// against their signer (and its revocation), and cached on disk by id.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { sha256 } from '../crypto/hash.js';
import { openSnapshot, parseEnvelope, sealSnapshot, type SnapshotInfo } from '../format/snapshot.js';
import { CorruptError, TsbakError } from '../errors.js';
import type { RepoContext } from './context.js';
import type { KeyStore } from './key-store.js';
import { SNAPSHOTS } from './layout.js';
import { mapLimit } from './map-limit.js';
import { pickLatest, type SnapshotFilter, type SnapshotSigner } from './snapshot-select.js';
import { parseNameRef, resolveName } from './snapshot-names.js';
import { makeDirs } from '../platform/make-dirs.js';
import { snapshotCacheDir } from './cache-root.js';

export interface Snapshot {
  id: string;
  info: SnapshotInfo;
  /** The key that signed it: "master", or a writer's id and registered name. */
  signer: SnapshotSigner;
}

export class SnapshotStore {
  private snapshotCache: string | null = null;

  constructor(
    private readonly ctx: RepoContext,
    private readonly keys: KeyStore,
  ) {}

  /** Writes the snapshot object (the last step of a backup). Returns its id. */
  async saveSnapshot(info: SnapshotInfo): Promise<string> {
    const s = this.ctx.secrets;
    const bytes = sealSnapshot(info, s.repoPub, s.keyId, { publicKey: s.signPub, privateKey: s.signPriv });
    const id = sha256(bytes).toString('hex');
    await this.ctx.backend.put(`${SNAPSHOTS}${id}`, bytes, { storageClass: this.ctx.config.storageClass.other });
    return id;
  }

  async listSnapshotIds(): Promise<string[]> {
    const ids: string[] = [];
    for await (const o of this.ctx.backend.list(SNAPSHOTS)) ids.push(o.name.slice(SNAPSHOTS.length));
    return ids;
  }

  /**
   * Keeps the snapshot objects read in `<root>/<repo id>/snapshots/` (null: not at all).
   * A snapshot is immutable and named by its hash, so a cached copy is checked like a
   * downloaded one: listing a long history then costs one LIST, not a GET per snapshot.
   */
  useSnapshotCache(root: string | null): void {
    this.snapshotCache = root ? snapshotCacheDir(root, this.ctx.config.id) : null;
  }

  /**
   * A snapshot's bytes, checked against its id (the hash), from the cache or the backend;
   * with `cache: false` from the backend only (check verifies the repository's copy).
   */
  private async snapshotBytes(id: string, cache = true): Promise<Buffer> {
    const file = cache && this.snapshotCache && /^[0-9a-f]{64}$/.test(id) ? path.join(this.snapshotCache, id) : null;
    if (file) {
      const cached = await fsp.readFile(file).catch(() => null);
      if (cached && sha256(cached).toString('hex') === id) return cached;
    }
    const bytes = await this.ctx.backend.get(`${SNAPSHOTS}${id}`);
    if (sha256(bytes).toString('hex') !== id) throw new CorruptError(`snapshot ${id.slice(0, 8)}`, 'content does not match its id');
    if (file) {
      // Best effort: a cache that cannot be written only costs the GET next time.
      const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
      await makeDirs(this.snapshotCache!)
        .then(() => fsp.writeFile(tmp, bytes, { mode: 0o600 }))
        .then(() => fsp.rename(tmp, file))
        .catch(() => fsp.unlink(tmp).catch(() => {}));
    }
    return bytes;
  }

  /** Removes cached snapshots that the repository no longer has (forgotten). */
  private async dropForgottenSnapshots(ids: string[]): Promise<void> {
    if (!this.snapshotCache) return;
    const keep = new Set(ids);
    const names = await fsp.readdir(this.snapshotCache).catch(() => [] as string[]);
    for (const n of names) if (!keep.has(n)) await fsp.unlink(path.join(this.snapshotCache, n)).catch(() => {});
  }

  /** Deletes a snapshot object (forget) and its cached copy. */
  async forgetSnapshot(id: string): Promise<void> {
    if (!/^[0-9a-f]{64}$/.test(id)) throw new TsbakError('USAGE', `not a snapshot id: ${id}`);
    await this.ctx.backend.delete(`${SNAPSHOTS}${id}`);
    if (this.snapshotCache) await fsp.unlink(path.join(this.snapshotCache, id)).catch(() => {});
  }

  async loadSnapshot(id: string, opts: { cache?: boolean } = {}): Promise<Snapshot> {
    const pair = this.ctx.requireRead('read snapshots');
    const bytes = await this.snapshotBytes(id, opts.cache ?? true);
    try {
      const env = parseEnvelope(bytes);
      const signer = (await this.keys.signerKeys()).get(env.signer);
      if (!signer) throw new CorruptError(`snapshot ${id.slice(0, 8)}`, `signed by unknown key ${env.signer}`);
      // A revoked key's snapshots are trusted only when the revocation lists them (made before it).
      const rev = signer.revoked;
      if (rev && !rev.snapshots.includes(id)) throw new CorruptError(`snapshot ${id.slice(0, 8)}`, `signed by key ${signer.name} (${env.signer}), revoked on ${rev.revoked}, and not one of the snapshots the revocation keeps`);
      return { id, info: openSnapshot(env, signer.pub, pair), signer: { id: env.signer, name: signer.name } };
    } catch (e) {
      if (e instanceof TsbakError) throw e;
      throw new CorruptError(`snapshot ${id.slice(0, 8)}`, (e as Error).message);
    }
  }

  /** Every snapshot, oldest first. Unreadable snapshots are reported through onError and skipped. */
  async listSnapshots(onError?: (id: string, e: unknown) => void): Promise<Snapshot[]> {
    this.ctx.requireRead('list snapshots');
    const ids = await this.listSnapshotIds();
    await this.dropForgottenSnapshots(ids);
    const out: Snapshot[] = [];
    await mapLimit(ids, 8, async (id) => {
      try {
        out.push(await this.loadSnapshot(id));
      } catch (e) {
        if (!onError) throw e;
        onError(id, e);
      }
    });
    return out.sort((a, b) => (a.info.time < b.info.time ? -1 : a.info.time > b.info.time ? 1 : a.id < b.id ? -1 : 1));
  }

  /**
   * Resolves an id, a unique id prefix, or "latest": the newest snapshot the filter selects
   * (--host, --path, --signer) that is not dated more than a day in the future. Such
   * snapshots passed over are told to onWarning.
   */
  async findSnapshot(ref: string, opts: { filter?: SnapshotFilter; onWarning?: (message: string) => void } = {}): Promise<Snapshot> {
    const named = parseNameRef(ref);
    if (named?.kind === 'id') ref = named.prefix;
    else if (named?.kind === 'name') return this.findByName(ref, named, opts.onWarning);
    if (ref === 'latest' || named?.kind === 'latest') {
      // A snapshot that cannot be verified (damaged, or signed by a revoked key) is not latest: said, and passed over.
      const all = await this.listSnapshots((id, e) => opts.onWarning?.(`snapshot ${id.slice(0, 8)} is not considered: ${(e as Error).message}`));
      const { latest, skippedFuture } = pickLatest(all, opts.filter);
      for (const s of skippedFuture) opts.onWarning?.(`snapshot ${s.id.slice(0, 8)} is dated ${s.info.time}, more than a day in the future: not taken as latest (name its id to use it)`);
      if (!latest) {
        const f = opts.filter ?? {};
        const what = [f.host !== undefined ? `host ${f.host}` : '', f.paths?.length ? `paths ${f.paths.join(' ')}` : '', f.signer !== undefined ? `signer ${f.signer}` : ''].filter(Boolean).join(', ');
        throw new TsbakError('NOT_FOUND', `${this.ctx.backend.location} has no snapshots${what ? ` of ${what}` : skippedFuture.length ? ' dated up to a day from now' : ' yet'}`);
      }
      return latest;
    }
    if (!/^[0-9a-f]+$/.test(ref)) throw new TsbakError('NOT_FOUND', `no snapshot with id ${ref} in ${this.ctx.backend.location}, nor a name the mount shows (2026-12-03T18:10:47Z, snapshots/<name>, ids/<id>); see 'tsbak snapshots'`);
    const ids = (await this.listSnapshotIds()).filter((id) => id.startsWith(ref));
    if (ids.length === 0) throw new TsbakError('NOT_FOUND', `no snapshot with id ${ref} in ${this.ctx.backend.location}; see 'tsbak snapshots'`);
    if (ids.length > 1) throw new TsbakError('USAGE', `snapshot id prefix ${ref} is ambiguous (${ids.length} matches); give more characters`);
    return this.loadSnapshot(ids[0]!);
  }

  /** A snapshot by the name a mount shows it under (snapshot-names.ts). */
  private async findByName(ref: string, named: Parameters<typeof resolveName>[1], onWarning?: (message: string) => void): Promise<Snapshot> {
    // Only readable snapshots have names in a mount; the others are said and passed over, as there.
    const all = await this.listSnapshots((id, e) => onWarning?.(`snapshot ${id.slice(0, 8)} is not considered: ${(e as Error).message}`));
    const { snap, name, others } = resolveName(all, named, ref, this.ctx.backend.location);
    if (others.length) onWarning?.(`${others.length + 1} snapshots share the second of ${name}: took ${name} (${snap.id.slice(0, 8)}); the others are ${others.join(', ')}`);
    return snap;
  }
}

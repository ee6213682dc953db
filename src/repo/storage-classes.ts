// The storage classes of tree packs and index files after init: the master's signed
// settings objects (settings/<32 hex>, format/class-settings.ts) supersede config's. Read
// at open (one listing; usually empty), written by `tsbak config set` (full key only). A
// settings object that does not verify is skipped with a warning: it can only change where
// new metadata is stored, never what is read, so the worst a bucket writer can do with it is
// what deleting it does, fall back to an older choice.
import { randomBytes } from 'node:crypto';
import { signBytes, verifyBytes } from '../crypto/sign.js';
import { classSettingsMessage, decodeClassSettings, encodeClassSettings, METADATA_CLASSES, type ClassSettings } from '../format/class-settings.js';
import { ConfigError, type StorageClass } from '../format/config.js';
import type { FullSecrets } from '../format/keyfile.js';
import { NotFoundError, TsbakError } from '../errors.js';
import type { RepoContext } from './context.js';
import { SETTINGS } from './layout.js';

/** Settings objects read at most (each is small; more is junk someone put there). */
const MAX_SETTINGS = 256;

/** The valid settings object that applies (highest seq; then the later time, then the greater name), or null. */
export async function latestSettings(ctx: RepoContext, warn: (m: string) => void): Promise<{ name: string; settings: ClassSettings } | null> {
  const names: string[] = [];
  for await (const o of ctx.backend.list(SETTINGS)) {
    if (!/^settings\/[0-9a-f]{32}$/.test(o.name)) continue;
    names.push(o.name);
    if (names.length > MAX_SETTINGS) {
      warn(`${ctx.backend.location}/${SETTINGS} holds more than ${MAX_SETTINGS} objects: storage class settings ignored (keep only the latest one, or run 'tsbak config set' again after removing the rest)`);
      return null;
    }
  }
  if (!names.length) return null;
  const master = ctx.masterSignPub;
  if (!master) {
    warn(`storage class settings in ${SETTINGS} are ignored: this key does not know the master's public key to check them (sign the config with 'tsbak key sign-config')`);
    return null;
  }
  let best: { name: string; settings: ClassSettings } | null = null;
  for (const name of names) {
    let s: ClassSettings;
    try {
      s = decodeClassSettings(await ctx.backend.get(name));
    } catch (e) {
      if (e instanceof NotFoundError) continue;
      if (!(e instanceof ConfigError)) throw e;
      warn(`${ctx.backend.location}/${name} is damaged (${e.message}): ignored`);
      continue;
    }
    if (s.repoId !== ctx.config.id || !verifyBytes(master, classSettingsMessage(s), s.sig)) {
      warn(`${ctx.backend.location}/${name} is not signed by this repository's master key: ignored`);
      continue;
    }
    if (!best || s.seq > best.settings.seq || (s.seq === best.settings.seq && (s.time > best.settings.time || (s.time === best.settings.time && name > best.name)))) best = { name, settings: s };
  }
  return best;
}

/** Applies the latest settings to ctx.classes (called when the repository is opened). */
export async function loadStorageClasses(ctx: RepoContext, warn: (m: string) => void): Promise<void> {
  const best = await latestSettings(ctx, warn);
  if (!best) return;
  ctx.classes = { ...ctx.classes, tree: best.settings.storageClass.tree, index: best.settings.storageClass.index };
  ctx.settingsSeq = best.settings.seq;
}

export type ClassChange = { tree?: StorageClass; index?: StorageClass };

/** Writes a new settings object (full key only) superseding the classes of new tree packs and index files; returns it. */
export async function setStorageClasses(ctx: RepoContext, change: ClassChange): Promise<ClassSettings & { name: string }> {
  if (!ctx.canRead || ctx.secrets.keyId !== 'master') throw new TsbakError('WRITE_ONLY_KEY', 'changing storage classes needs the full key (the repository passphrase), not a write-only key');
  for (const [k, v] of Object.entries(change)) {
    if (v !== undefined && !METADATA_CLASSES.includes(v)) throw new TsbakError('USAGE', `${k}-class ${JSON.stringify(v)} is not one of ${METADATA_CLASSES.join(', ')}`);
  }
  // Against the latest settings in the bucket now, not those seen at open.
  await loadStorageClasses(ctx, () => {});
  const full = ctx.secrets as FullSecrets;
  const body = {
    repoId: ctx.config.id,
    seq: ctx.settingsSeq + 1,
    time: new Date().toISOString(),
    storageClass: { tree: change.tree ?? ctx.classes.tree, index: change.index ?? ctx.classes.index },
  };
  const settings: ClassSettings = { v: 1, kind: 'storage-classes', ...body, sig: signBytes({ publicKey: full.signPub, privateKey: full.signPriv }, classSettingsMessage(body)) };
  const name = `${SETTINGS}${randomBytes(16).toString('hex')}`;
  await ctx.backend.put(name, encodeClassSettings(settings));
  ctx.classes = { ...ctx.classes, ...settings.storageClass };
  ctx.settingsSeq = settings.seq;
  return { ...settings, name };
}

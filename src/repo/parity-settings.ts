// Whether new packs get parity, and K+M (docs/FORMAT.md "Parity settings"): the master's
// signed objects settings/parity-<32 hex>; the valid one with the highest seq applies, and
// without one the backend's default (10+2 on local and SFTP, off on S3). Only the full key signs them,
// so a writer key cannot turn parity off for others; a bucket writer can only delete them,
// which falls back to the backend's default.
import { randomBytes } from 'node:crypto';
import { signBytes, verifyBytes } from '../crypto/sign.js';
import type { FullSecrets } from '../format/keyfile.js';
import { ParityFormatError, parseParitySpec } from '../format/parity.js';
import { NotFoundError, TsbakError } from '../errors.js';
import type { RepoContext } from './context.js';
import { PARITY_SETTINGS } from './layout.js';

export type ParityShape = { k: number; m: number } | null;
export const DEFAULT_PARITY = { k: 10, m: 2 };
const MAX_OBJECTS = 256;
const MAX_BYTES = 4096;

interface ParitySettings {
  repoId: string;
  seq: number;
  time: string;
  parity: string;
  sig: Buffer;
}

function message(s: Omit<ParitySettings, 'sig'>): Buffer {
  return Buffer.from(`tsbak parity v1\n${s.repoId}\n${s.seq}\n${s.time}\n${s.parity}\n`);
}

function decode(b: Buffer): ParitySettings {
  if (b.length > MAX_BYTES) throw new ParityFormatError(`${b.length} bytes`);
  const o = JSON.parse(b.toString('utf8'));
  if (typeof o !== 'object' || o === null || o.v !== 1 || o.kind !== 'parity') throw new ParityFormatError('not a parity settings object');
  if (typeof o.repoId !== 'string' || !/^[0-9a-f]{32}$/.test(o.repoId)) throw new ParityFormatError('repoId');
  if (!Number.isInteger(o.seq) || o.seq < 1 || o.seq > 2 ** 31) throw new ParityFormatError('seq');
  if (typeof o.time !== 'string' || o.time.length > 40 || Number.isNaN(Date.parse(o.time))) throw new ParityFormatError('time');
  if (typeof o.parity !== 'string') throw new ParityFormatError('parity');
  parseParitySpec(o.parity);
  if (typeof o.sig !== 'string' || !/^[A-Za-z0-9+/]{86}==$/.test(o.sig)) throw new ParityFormatError('sig');
  return { repoId: o.repoId, seq: o.seq, time: o.time, parity: o.parity, sig: Buffer.from(o.sig, 'base64') };
}

export function formatParity(p: ParityShape): string {
  return p ? `${p.k}+${p.m}` : 'off';
}

/** The parity new packs get: the latest valid settings object's, else the backend's default. Sets ctx.parity. */
export async function loadParity(ctx: RepoContext, warn: (m: string) => void): Promise<{ parity: ParityShape; seq: number }> {
  const names: string[] = [];
  for await (const o of ctx.backend.list(PARITY_SETTINGS)) if (/^settings\/parity-[0-9a-f]{32}$/.test(o.name) && names.length <= MAX_OBJECTS) names.push(o.name);
  let best: ParitySettings | null = null;
  const master = ctx.masterSignPub;
  if (names.length > MAX_OBJECTS) warn(`more than ${MAX_OBJECTS} parity settings objects: ignored`);
  else if (names.length && !master) warn('parity settings are ignored: this key does not know the master\'s public key to check them');
  else
    for (const name of names) {
      let s: ParitySettings;
      try {
        s = decode(await ctx.backend.get(name));
      } catch (e) {
        if (e instanceof NotFoundError) continue;
        warn(`${ctx.backend.location}/${name} is damaged: ignored`);
        continue;
      }
      if (s.repoId !== ctx.config.id || !verifyBytes(master!, message(s), s.sig)) {
        warn(`${ctx.backend.location}/${name} is not signed by this repository's master key: ignored`);
        continue;
      }
      if (!best || s.seq > best.seq || (s.seq === best.seq && s.time > best.time)) best = s;
    }
  const parity = best ? parseParitySpec(best.parity) : ctx.backend.parityByDefault ? DEFAULT_PARITY : null;
  ctx.parity = parity;
  return { parity, seq: best?.seq ?? 0 };
}

/** `tsbak parity set K+M|none` and `init --parity` (full key only): a new signed settings object. */
export async function setParity(ctx: RepoContext, spec: string): Promise<{ parity: ParityShape; seq: number; name: string }> {
  if (!ctx.canRead || ctx.secrets.keyId !== 'master') throw new TsbakError('WRITE_ONLY_KEY', 'changing parity needs the full key (the repository passphrase), not a write-only key');
  let parity: ParityShape;
  try {
    // `none` is the documented way to say no parity; `off` (what the settings object stores) works too.
    parity = parseParitySpec(spec === 'none' ? 'off' : spec);
  } catch (e) {
    throw new TsbakError('USAGE', `--parity: ${(e as Error).message}`);
  }
  const { seq } = await loadParity(ctx, () => {});
  const full = ctx.secrets as FullSecrets;
  const body = { repoId: ctx.config.id, seq: seq + 1, time: new Date().toISOString(), parity: formatParity(parity) };
  const sig = signBytes({ publicKey: full.signPub, privateKey: full.signPriv }, message(body));
  const name = `${PARITY_SETTINGS}${randomBytes(16).toString('hex')}`;
  await ctx.backend.put(name, Buffer.from(JSON.stringify({ v: 1, kind: 'parity', ...body, sig: sig.toString('base64') }, null, 2) + '\n'));
  ctx.parity = parity;
  return { parity, seq: body.seq, name };
}

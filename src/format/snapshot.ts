// Snapshot objects. See docs/FORMAT.md ("Snapshots").
// Stored bytes: UTF-8 JSON {"v":1,"signer":<key id>,"sealed":<b64>,"sig":<b64>} where
// sealed = seal-to-repository-public-key(JSON of SnapshotInfo) and sig = Ed25519 over the
// sealed bytes. The object name is the hex SHA-256 of the stored bytes.
import { openSealed, sealTo, type X25519Pair } from '../crypto/box.js';
import { signBytes, verifyBytes, type Ed25519Pair } from '../crypto/sign.js';

export interface SnapshotStats {
  files: number;
  dirs: number;
  bytesRead: number;
  bytesAdded: number; // packed bytes written to the repository
  blobsAdded: number;
  durationMs: number;
  errors: number;
}

export interface SnapshotInfo {
  time: string; // RFC 3339 with ns, UTC
  host: string;
  user: string;
  paths: string[];
  tags: string[];
  tree: string; // hex id of the root tree blob
  parent?: string;
  program: string;
  stats: SnapshotStats;
  /** Estimated monthly storage cost added by this backup, USD (see src/glacier). */
  costUsd?: number;
  /** The id of the snapshot this one replaces (`tsbak tag`, `tsbak repair snapshots`). */
  original?: string;
  /** The S3 Object Lock its writer put on every object it needs (a claim: S3 is asked before it counts). */
  lock?: { mode: 'governance' | 'compliance'; until: string };
  /** Which kinds of xattr some entry holds (xattr-kinds.ts); absent: not recorded, any may. */
  xattrKinds?: XattrKind[];
}

/** "acl": system.posix_acl_access or _default; "security": a security.* name (SELinux labels, capabilities). */
export type XattrKind = 'acl' | 'security';

export interface SnapshotEnvelope {
  v: 1;
  signer: string;
  sealed: string;
  sig: string;
}

export function sealSnapshot(info: SnapshotInfo, repoPub: Uint8Array, signer: string, signKey: Ed25519Pair): Buffer {
  const sealed = sealTo(repoPub, Buffer.from(JSON.stringify(info)));
  const env: SnapshotEnvelope = { v: 1, signer, sealed: sealed.toString('base64'), sig: signBytes(signKey, sealed).toString('base64') };
  return Buffer.from(JSON.stringify(env));
}

export function parseEnvelope(bytes: Buffer): SnapshotEnvelope {
  const env = JSON.parse(bytes.toString('utf8')) as SnapshotEnvelope;
  if (env.v !== 1 || typeof env.sealed !== 'string' || typeof env.sig !== 'string') throw new Error('unknown snapshot version');
  return env;
}

/** Verifies the signature with the signer's public key, then opens the seal. Throws on failure. */
export function openSnapshot(env: SnapshotEnvelope, signerPub: Uint8Array, repoKeys: X25519Pair): SnapshotInfo {
  const sealed = Buffer.from(env.sealed, 'base64');
  if (!verifyBytes(signerPub, sealed, Buffer.from(env.sig, 'base64'))) throw new Error('bad signature');
  return JSON.parse(openSealed(repoKeys, sealed).toString('utf8')) as SnapshotInfo;
}

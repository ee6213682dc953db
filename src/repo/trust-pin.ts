// What this machine has learned to trust about a repository, kept in the local cache
// (<cache root>/<repo id>/trust.json): the master's Ed25519 public key, pinned the first
// time a key file made before key files carried it (masterSignPub) opened a signed config,
// and whether the config was signed then (so that a config.sig deleted later, or a config
// replaced by an unsigned one, is noticed). See docs/THREAT-MODEL.md ("config and keys").
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { replaceFile } from '../platform/replace-file.js';
import { makeDirs } from '../platform/make-dirs.js';

export interface TrustPin {
  masterSignPub: Buffer;
  configSigned: boolean;
}

function file(root: string, repoId: string): string {
  return path.join(root, repoId, 'trust.json');
}

/** The pin, or null when there is none (or it cannot be read: then it is made again). */
export async function readPin(root: string, repoId: string): Promise<TrustPin | null> {
  try {
    const o = JSON.parse(await fsp.readFile(file(root, repoId), 'utf8'));
    const pub = Buffer.from(String(o.masterSignPub), 'base64');
    return pub.length === 32 ? { masterSignPub: pub, configSigned: o.configSigned === true } : null;
  } catch {
    return null;
  }
}

/** Best effort: a pin that cannot be written only means trusting the config's key again next time. */
export async function writePin(root: string, repoId: string, pin: TrustPin): Promise<void> {
  try {
    await makeDirs(path.join(root, repoId), 0o700);
    await replaceFile(file(root, repoId), JSON.stringify({ masterSignPub: pin.masterSignPub.toString('base64'), configSigned: pin.configSigned }));
  } catch {
    /* see above */
  }
}

// The only place that knows object names in a repository. See docs/FORMAT.md ("Layout").
export const CONFIG = 'config';
export const KEYS = 'keys/';
export const SNAPSHOTS = 'snapshots/';
export const INDEX = 'index/';
export const LOCKS = 'locks/';

export function packName(kind: 'data' | 'tree', idHex: string): string {
  return `packs/${kind}/${idHex.slice(0, 2)}/${idHex}`;
}

export function packPrefix(kind: 'data' | 'tree'): string {
  return `packs/${kind}/`;
}

/** packs/data/ab/abcd... -> { kind, id } */
export function parsePackName(name: string): { kind: 'data' | 'tree'; id: string } | null {
  const m = /^packs\/(data|tree)\/[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(name);
  return m ? { kind: m[1] as 'data' | 'tree', id: m[2]! } : null;
}

/** The signature of a version 1 (unsigned) config, written once by `tsbak key sign-config`. */
export const CONFIG_SIG = 'config.sig';
/** keys/revoked-<keyId>: the master's revocation of a writer key. */
export const REVOKED = `${KEYS}revoked-`;
/** settings/<random 32 hex>: the master's changes of the storage classes of tree packs and index files (`tsbak config set`). */
export const SETTINGS = 'settings/';

/** packs/parity/<2 hex>/<SHA-256 of the object>: one parity member of a group of packs (FORMAT.md "Parity"). */
export const PARITY = 'packs/parity/';
export function parityName(idHex: string): string {
  return `${PARITY}${idHex.slice(0, 2)}/${idHex}`;
}
export function parseParityName(name: string): string | null {
  const m = /^packs\/parity\/[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(name);
  return m ? m[1]! : null;
}
/**
 * parity-groups/<2 hex>/<SHA-256 of the object>: a group's parity headers and object names,
 * kept in a class read at once, so that repair can plan around archived parity (FORMAT.md "Parity").
 */
export const PARITY_GROUPS = 'parity-groups/';
export function parityGroupName(idHex: string): string {
  return `${PARITY_GROUPS}${idHex.slice(0, 2)}/${idHex}`;
}
export function parseParityGroupName(name: string): string | null {
  const m = /^parity-groups\/[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(name);
  return m ? m[1]! : null;
}
/** settings/parity-<random 32 hex>: the master's parity settings (\`tsbak parity set\`). */
export const PARITY_SETTINGS = `${SETTINGS}parity-`;

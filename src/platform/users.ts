// uid/gid <-> name lookups from /etc/passwd and /etc/group, read once and cached.
//
// Backups record names next to ids so a restore on another machine can map by name
// (restore --map-by-name), as tar and rsync do. Only the local files are read: users that
// exist only in NSS sources such as LDAP/sssd are not seen (their names record as '').

import { readFileSync } from 'node:fs';

interface Db {
  byId: Map<number, string>;
  byName: Map<string, number>;
}

const paths = { passwd: '/etc/passwd', group: '/etc/group' };
let users: Db | undefined;
let groups: Db | undefined;

/** Parse "name:x:id:..." lines; the first entry wins for a duplicated id or name, like getpwuid(3). */
function parse(file: string): Db {
  const db: Db = { byId: new Map(), byName: new Map() };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return db; // no such file (minimal containers): every lookup finds nothing
  }
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    const f = line.split(':');
    if (f.length < 3 || !f[0] || !/^\d+$/.test(f[2])) continue;
    const id = Number(f[2]);
    if (!db.byId.has(id)) db.byId.set(id, f[0]);
    if (!db.byName.has(f[0])) db.byName.set(f[0], id);
  }
  return db;
}

function userDb(): Db {
  return (users ??= parse(paths.passwd));
}

function groupDb(): Db {
  return (groups ??= parse(paths.group));
}

/** User name of a uid, '' when it has none. */
export function userName(uid: number): string {
  return userDb().byId.get(uid) ?? '';
}

/** Group name of a gid, '' when it has none. */
export function groupName(gid: number): string {
  return groupDb().byId.get(gid) ?? '';
}

/** Local uid of a user name, undefined when there is no such user (or name is ''). */
export function uidOf(name: string): number | undefined {
  return name ? userDb().byName.get(name) : undefined;
}

/** Local gid of a group name, undefined when there is no such group (or name is ''). */
export function gidOf(name: string): number | undefined {
  return name ? groupDb().byName.get(name) : undefined;
}

/** Drop the cache (and optionally read other files): for tests and long-running mounts. */
export function resetUserCache(files?: { passwd?: string; group?: string }): void {
  users = undefined;
  groups = undefined;
  if (files?.passwd) paths.passwd = files.passwd;
  if (files?.group) paths.group = files.group;
}

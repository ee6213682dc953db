// OpenSSH known_hosts files, read as ssh(1) reads them, to check an SFTP server's host key.
// A line is `[marker] hostpatterns keytype base64-key [comment]`; hostpatterns is a list of
// comma-separated patterns (`*`, `?`, `!` negation; `[host]:port` for ports other than
// 22) or one hashed name `|1|base64(salt)|base64(HMAC-SHA1(salt, name))` (HashKnownHosts).
// `@revoked` lines name keys never to accept; `@cert-authority` lines (host certificates)
// are not supported and are skipped.

import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface KnownHost {
  file: string;
  line: number;
  revoked: boolean;
  patterns: string;
  keyType: string;
  key: Buffer;
}

/** The entries of a known_hosts text; lines that do not parse are skipped, as ssh does. */
export function parseKnownHosts(text: string, file: string): KnownHost[] {
  const out: KnownHost[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const fields = lines[i]!.trim().split(/\s+/);
    if (!fields[0] || fields[0].startsWith('#')) continue;
    let revoked = false;
    if (fields[0].startsWith('@')) {
      const marker = fields.shift()!;
      if (marker === '@cert-authority') continue;
      if (marker !== '@revoked') continue;
      revoked = true;
    }
    const [patterns, keyType, b64] = fields;
    if (!patterns || !keyType || !b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) continue;
    const key = Buffer.from(b64, 'base64');
    // The key blob starts with its own type name: a line whose two disagree is damaged.
    if (key.length < 4 || key.readUInt32BE(0) !== Buffer.byteLength(keyType) || key.subarray(4, 4 + key.readUInt32BE(0)).toString() !== keyType) continue;
    out.push({ file, line: i + 1, revoked, patterns, keyType, key });
  }
  return out;
}

/** The entries of these files that exist (a missing file holds none). */
export function readKnownHosts(files: string[]): KnownHost[] {
  const out: KnownHost[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (e: any) {
      if (e.code === 'ENOENT') continue;
      throw e;
    }
    out.push(...parseKnownHosts(text, f));
  }
  return out;
}

/** How ssh names a host in known_hosts: `host` on port 22, `[host]:port` otherwise. */
export function hostKeyName(host: string, port: number): string {
  return port === 22 ? host.toLowerCase() : `[${host.toLowerCase()}]:${port}`;
}

function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
  return re.test(s);
}

/** Whether a line's host patterns name `name` (from hostKeyName). */
export function patternsMatch(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (!salt || !hash) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return mac === hash;
  }
  let matched = false;
  for (const p of patterns.toLowerCase().split(',')) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) matched = true;
  }
  return matched;
}

/** OpenSSH's SHA256 fingerprint of a key blob: `SHA256:` and unpadded base64. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type a blob names ("ssh-ed25519"), or "" when it does not parse. */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return '';
  const n = key.readUInt32BE(0);
  return n <= 64 && key.length >= 4 + n ? key.subarray(4, 4 + n).toString() : '';
}

export type HostKeyVerdict =
  | { ok: true; entry: KnownHost }
  | { ok: false; why: 'unknown' }
  | { ok: false; why: 'changed'; entry: KnownHost }
  | { ok: false; why: 'revoked'; entry: KnownHost };

/** The verdict on `key` offered by `name` (hostKeyName) against `entries`. */
export function checkHostKey(entries: KnownHost[], name: string, key: Buffer): HostKeyVerdict {
  const revoked = entries.find((e) => e.revoked && e.key.equals(key));
  if (revoked) return { ok: false, why: 'revoked', entry: revoked };
  const mine = entries.filter((e) => !e.revoked && patternsMatch(e.patterns, name));
  const same = mine.find((e) => e.key.equals(key));
  if (same) return { ok: true, entry: same };
  const type = keyTypeOf(key);
  const other = mine.find((e) => e.keyType === type);
  if (other) return { ok: false, why: 'changed', entry: other };
  return { ok: false, why: 'unknown' };
}

/** Host key algorithms the SSH client should offer, those of keys on record for `name` first (as ssh does). */
export function hostKeyAlgorithms(entries: KnownHost[], name: string, all: readonly string[]): string[] {
  const types = new Set(entries.filter((e) => !e.revoked && patternsMatch(e.patterns, name)).map((e) => e.keyType));
  const algoType = (a: string) => (a.startsWith('rsa-sha2-') ? 'ssh-rsa' : a);
  return [...all.filter((a) => types.has(algoType(a))), ...all.filter((a) => !types.has(algoType(a)))];
}

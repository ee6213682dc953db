// The passphrase's KDF started first thing, before the command's modules load: scrypt runs
// on libuv's pool while the main thread compiles the program, instead of after it. Only for
// a repository in a local directory with one passphrase key and a passphrase given by file
// or environment; anything else, or anything unexpected, starts nothing and the command
// derives the key when it opens the repository, as it would anyway. Also the KDF's lanes
// in parallel (platform/native/scrypt.ts). Imports only node, crypto/kdf.ts and the
// addon's wrapper, so that it costs little to load.
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { startDeriveKey, useScrypt, type KdfParams } from '../crypto/kdf.js';
import { haveScryptLanes, scryptLanes } from '../platform/native/scrypt.js';

/** Key files larger than this are not a key tsbak wrote (they are read again, checked, when the repository opens). */
const MAX_KEY_FILE = 64 << 10;
/** Repositories with more key files than this are left to the ordinary open. */
const MAX_KEY_FILES = 64;

/** The command's first step (entry-*.ts): the KDF's lanes in parallel from now on, and the key started if it can be. */
export function prefetchKdf(argv: string[]): void {
  if (haveScryptLanes()) useScrypt(scryptLanes);
  startKdfFor(argv);
}

/** Starts the derivation the command will ask for, if argv names a local repository with one passphrase key and a passphrase is given. */
export function startKdfFor(argv: string[]): void {
  try {
    if (argv.includes('--key-file') || argv.some((a) => a.startsWith('--key-file='))) return;
    const passphrase = givenPassphrase(argv);
    if (passphrase === undefined) return;
    for (const a of argv) {
      if (a.startsWith('-') || !a.includes('/') || a.includes('://')) continue;
      let params: KdfParams | null = null;
      try {
        params = soleFullKeyKdf(a);
      } catch {
        continue; // not a directory, unreadable, a damaged key: not this one
      }
      if (params) {
        startDeriveKey(passphrase, params);
        return;
      }
    }
  } catch {
    // A guess that failed: the command opens the repository the ordinary way.
  }
}

/** The passphrase as cli/secrets.ts givenPassword reads it, from regular files only (a pipe read here would be empty there). */
function givenPassphrase(argv: string[]): string | undefined {
  const i = argv.indexOf('--password-file');
  const file = i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith('--password-file='))?.slice('--password-file='.length);
  if (file !== undefined) return readRegularFile(file);
  if (process.env.TSBAK_PASSWORD !== undefined) return process.env.TSBAK_PASSWORD;
  if (process.env.TSBAK_PASSWORD_FILE) return readRegularFile(process.env.TSBAK_PASSWORD_FILE);
  return undefined;
}

function readRegularFile(file: string): string | undefined {
  const fd = openSync(file, 'r');
  try {
    if (!fstatSync(fd).isFile()) return undefined;
    return readFileSync(fd, 'utf8').replace(/\r?\n$/, '');
  } finally {
    closeSync(fd);
  }
}

/** The KDF parameters of the one passphrase key of the local repository at dir, or null. */
function soleFullKeyKdf(dir: string): KdfParams | null {
  if (!statSync(path.join(dir, 'config'), { throwIfNoEntry: false })?.isFile()) return null;
  const keysDir = path.join(dir, 'keys');
  let found: KdfParams | null = null;
  const names = readdirSync(keysDir);
  if (names.length > MAX_KEY_FILES) return null; // many writer keys: opening reads them once, not twice
  for (const name of names) {
    const file = path.join(keysDir, name);
    const st = statSync(file, { throwIfNoEntry: false });
    if (!st?.isFile() || st.size > MAX_KEY_FILE) continue;
    const obj = JSON.parse(readFileSync(file, 'utf8')) as { kind?: unknown; kdf?: KdfParams };
    if (obj?.kind !== 'full') continue;
    if (found) return null; // several passphrases: which one opens is not known before trying
    found = obj.kdf ?? null;
  }
  return found;
}

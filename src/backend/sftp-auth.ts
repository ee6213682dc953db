// What an SFTP connection authenticates with and checks the server against, from the
// command line's options and the environment, read once when the repository is opened:
// - keys: ssh-agent (SSH_AUTH_SOCK), then --sftp-key FILE (TSBAK_SFTP_KEY), decrypted with
//   --sftp-key-passphrase-file (TSBAK_SFTP_KEY_PASSPHRASE_FILE); with neither an agent nor
//   a key given, ssh's default identities (~/.ssh/id_ed25519, id_ecdsa, id_rsa) that need
//   no passphrase;
// - host keys: ~/.ssh/known_hosts and --sftp-known-hosts FILE (TSBAK_SFTP_KNOWN_HOSTS).

import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';
import ssh2 from 'ssh2';
import { TsbakError } from '../errors.js';
import { readKnownHosts } from './known-hosts.js';
import type { SshCredentials } from './sftp-session.js';

export interface SftpOptions {
  /** Private key file (OpenSSH or PEM). */
  key?: string;
  /** File holding the key's passphrase (its first line). */
  keyPassphraseFile?: string;
  /** A known_hosts file, read beside ~/.ssh/known_hosts. */
  knownHosts?: string;
  /** Told when a connection drops and is replaced. */
  onWarning?: (message: string) => void;
}

function readText(file: string, what: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e: any) {
    throw new TsbakError('USAGE', `cannot read ${what} ${file} (${flag}): ${e.code ?? e.message}`);
  }
}

/** The credentials the options and the environment name (files read now; bad ones refused with what to do). */
export function sftpCredentials(o: SftpOptions, env: NodeJS.ProcessEnv = process.env): SshCredentials {
  const home = env.HOME || homedir();
  const keyFile = o.key ?? (env.TSBAK_SFTP_KEY || undefined);
  const passFile = o.keyPassphraseFile ?? (env.TSBAK_SFTP_KEY_PASSPHRASE_FILE || undefined);
  const knownFile = o.knownHosts ?? (env.TSBAK_SFTP_KNOWN_HOSTS || undefined);
  const agent = env.SSH_AUTH_SOCK || undefined;

  const keys: SshCredentials['keys'] = [];
  if (passFile && !keyFile) throw new TsbakError('USAGE', '--sftp-key-passphrase-file is for the key of --sftp-key; give --sftp-key FILE too');
  if (keyFile) {
    const key = Buffer.from(readText(keyFile, 'SSH key', '--sftp-key'));
    const passphrase = passFile ? readText(passFile, 'passphrase file', '--sftp-key-passphrase-file').split('\n')[0]! : undefined;
    const parsed = ssh2.utils.parseKey(key, passphrase);
    if (parsed instanceof Error) {
      if (/no passphrase given/i.test(parsed.message)) throw new TsbakError('USAGE', `SSH key ${keyFile} is encrypted: pass --sftp-key-passphrase-file FILE, or add the key to ssh-agent`);
      if (/bad passphrase|integrity check failed|decrypt/i.test(parsed.message)) throw new TsbakError('USAGE', `cannot decrypt SSH key ${keyFile} with the passphrase in ${passFile}: wrong passphrase?`);
      throw new TsbakError('USAGE', `${keyFile} is not an SSH private key ssh2 can read (${parsed.message}); give an OpenSSH or PEM private key`);
    }
    keys.push({ file: keyFile, key, ...(passphrase !== undefined ? { passphrase } : {}) });
  } else if (!agent) {
    for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
      const file = path.join(home, '.ssh', name);
      let key: Buffer;
      try {
        key = readFileSync(file);
      } catch {
        continue;
      }
      if (!(ssh2.utils.parseKey(key) instanceof Error)) keys.push({ file, key });
    }
  }

  const knownHostsFiles = [path.join(home, '.ssh', 'known_hosts')];
  if (knownFile) {
    readText(knownFile, 'known_hosts file', '--sftp-known-hosts'); // a file named must exist
    knownHostsFiles.push(knownFile);
  }
  let knownHosts;
  try {
    knownHosts = readKnownHosts(knownHostsFiles);
  } catch (e: any) {
    throw new TsbakError('USAGE', `cannot read known_hosts: ${e.code ?? e.message}`);
  }
  return { ...(agent ? { agent } : {}), keys, knownHosts, knownHostsFiles };
}

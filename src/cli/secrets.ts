// Where passphrases come from: --password-file, TSBAK_PASSWORD, or a prompt on a TTY.
// Never from argv (visible in ps).
import { readFileSync } from 'node:fs';
import { TsbakError } from '../errors.js';

export interface SecretArgs {
  passwordFile?: string;
  keyFile?: string;
  /** A passphrase already in hand (the mount daemon gets its own over IPC, never in its environment). */
  password?: string;
}

/** Environment variables that hold secrets. */
const SECRET_ENV = ['TSBAK_PASSWORD'];

/**
 * Removes the secrets from this process's environment, once they are read. A long-lived
 * process (the mount) starts children later (libfuse runs fusermount to mount and unmount,
 * we run it to unmount), and a child gets the environment as it is at its exec: it must not
 * hold the passphrase. (The environment a process was started with stays readable in its
 * own /proc/<pid>/environ, to its user and root: the mount daemon is never given one.)
 */
export function dropSecretEnv(): void {
  for (const k of SECRET_ENV) delete process.env[k];
}

export function readPasswordFile(file: string): string {
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (e: any) {
    throw new TsbakError('USAGE', `cannot read password file ${file}: ${e.code ?? e.message}`);
  }
}

/** Reads a line from the terminal without echoing it. */
export async function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) throw new TsbakError('USAGE', 'no passphrase given: use --password-file, TSBAK_PASSWORD_FILE or TSBAK_PASSWORD (no terminal to ask on)');
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          done();
          resolve(buf);
          return;
        } else if (ch === '\u0003') {
          done();
          reject(new TsbakError('USAGE', 'interrupted'));
          return;
        } else if (ch === '\u007f' || ch === '\b') buf = buf.slice(0, -1);
        else buf += ch;
      }
    };
    const done = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}

/** The passphrase if one was given (file or env); undefined otherwise. */
export function givenPassword(a: SecretArgs): string | undefined {
  if (a.password !== undefined) return a.password;
  if (a.passwordFile) return readPasswordFile(a.passwordFile);
  if (process.env.TSBAK_PASSWORD !== undefined) return process.env.TSBAK_PASSWORD;
  if (process.env.TSBAK_PASSWORD_FILE) return readPasswordFile(process.env.TSBAK_PASSWORD_FILE);
  return undefined;
}

export async function getPassword(a: SecretArgs, prompt = 'Repository passphrase: '): Promise<string> {
  return givenPassword(a) ?? (await promptHidden(prompt));
}

export async function getNewPassword(a: SecretArgs): Promise<string> {
  const given = givenPassword(a);
  if (given !== undefined) {
    if (!given) throw new TsbakError('USAGE', 'the passphrase is empty');
    return given;
  }
  const p1 = await promptHidden('New repository passphrase: ');
  const p2 = await promptHidden('Repeat passphrase: ');
  if (p1 !== p2) throw new TsbakError('USAGE', 'the passphrases do not match');
  if (!p1) throw new TsbakError('USAGE', 'the passphrase is empty');
  return p1;
}

/**
 * A passphrase to add or change to (key add-password, key passwd): from --new-password-file,
 * else asked twice on the terminal. Never TSBAK_PASSWORD: that is the passphrase that opens
 * the repository, and adding it again would add nothing.
 */
export async function getAddedPassword(newPasswordFile: string | undefined, current: string | undefined): Promise<string> {
  let p: string;
  if (newPasswordFile !== undefined) p = readPasswordFile(newPasswordFile);
  else {
    if (!process.stdin.isTTY) throw new TsbakError('USAGE', 'no new passphrase: give it with --new-password-file (no terminal to ask on)');
    p = await promptHidden('New passphrase: ');
    if (p !== (await promptHidden('Repeat passphrase: '))) throw new TsbakError('USAGE', 'the passphrases do not match');
  }
  if (!p) throw new TsbakError('USAGE', 'the new passphrase is empty');
  if (p === current) throw new TsbakError('USAGE', 'the new passphrase is the one that opened the repository; choose another');
  return p;
}

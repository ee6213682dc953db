// One SSH connection with one SFTP channel (ssh2), as promises. Requests are pipelined:
// any number may be in flight on a session, answered in any order. A session that loses its
// connection fails every request in flight, and every later one, with a retryable
// BackendError (the backend then opens a new session); errors the server answers (no such
// file, permission denied, failure) are SftpStatusErrors and never retryable.
//
// Connecting checks the server's host key against known_hosts (./known-hosts.ts) before
// anything is sent, and authenticates with ssh-agent and/or private keys, in that order.

// ssh2 is CommonJS whose exports node cannot name statically: the default import, then its members.
import ssh2 from 'ssh2';
import type { AgentAuthMethod, Client, ConnectConfig, FileEntryWithStats, PublicKeyAuthMethod, SFTPWrapper, Stats } from 'ssh2';
import { BackendError } from './backend-error.js';
import { checkHostKey, fingerprint, hostKeyAlgorithms, hostKeyName, keyTypeOf, type KnownHost } from './known-hosts.js';

export interface SshTarget {
  host: string;
  port: number;
  user: string;
}

export interface SshCredentials {
  /** ssh-agent's socket (SSH_AUTH_SOCK), tried first. */
  agent?: string;
  /** Private keys (OpenSSH or PEM text), already decrypted or with their passphrase, tried in order. */
  keys: Array<{ file: string; key: Buffer; passphrase?: string }>;
  /** known_hosts entries the host key must match, and the files they came from (for messages). */
  knownHosts: KnownHost[];
  knownHostsFiles: string[];
}

/** SFTP status codes (draft-ietf-secsh-filexfer-02). */
export const FX = { EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, BAD_MESSAGE: 5, NO_CONNECTION: 6, CONNECTION_LOST: 7, OP_UNSUPPORTED: 8 } as const;

/** The server answered a request with an error status. */
export class SftpStatusError extends Error {
  constructor(readonly status: number, message: string, readonly path: string) {
    super(message);
    this.name = 'SftpStatusError';
  }
}

/** Host-key algorithms ssh2 supports, in its default order of preference. */
const HOST_KEY_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

function where(t: SshTarget): string {
  return t.port === 22 ? t.host : `${t.host}:${t.port}`;
}

/** A connection-level failure: the session is gone, a new one may succeed. */
export function connectionLost(t: SshTarget, detail: string, cause?: unknown): BackendError {
  return new BackendError(`SFTP connection to ${where(t)} lost (${detail})`, { retryable: true, serviceCode: 'CONNECTION_LOST', cause });
}

const TRANSIENT_CONNECT = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN', 'EPIPE', 'ECONNABORTED', 'EAI_AGAIN']);

/** A session with requests waiting and no answer for this long is taken as lost (a server stuck on its disk). */
const STALL_MS = 120_000;

export class SftpSession {
  private dead: Error | null = null;
  private readonly pending = new Set<(e: Error) => void>();
  private lastAnswer = Date.now();
  private readonly watchdog: NodeJS.Timeout;
  /** Called once if the connection drops by itself (not by end()). */
  onLost?: (e: Error) => void;
  private ending = false;

  private constructor(
    readonly target: SshTarget,
    private readonly client: Client,
    private readonly sftp: SFTPWrapper,
  ) {
    const lose = (detail: string, cause?: unknown) => {
      if (this.dead) return;
      this.dead = connectionLost(target, detail, cause);
      for (const fail of [...this.pending]) fail(this.dead);
      this.pending.clear();
      if (!this.ending) this.onLost?.(this.dead);
    };
    client.on('error', (e: any) => lose(e?.code ?? e?.message ?? 'error', e));
    client.on('close', () => lose('closed by the server or the network'));
    sftp.on('error', (e: any) => lose(`SFTP channel: ${e?.message ?? e}`, e));
    sftp.on('close', () => lose('SFTP channel closed'));
    // ssh's keepalives find a dead peer; this finds a live one that stopped answering.
    this.watchdog = setInterval(() => {
      if (this.pending.size && Date.now() - this.lastAnswer > STALL_MS) {
        lose(`no answer for ${STALL_MS / 1000} s`);
        client.destroy();
      }
    }, STALL_MS / 4).unref();
    client.once('close', () => clearInterval(this.watchdog));
  }

  get alive(): boolean {
    return !this.dead;
  }

  /** Largest read and write the server takes in one request (OpenSSH: 255 KiB, from limits@openssh.com). */
  get maxRead(): number {
    return (this.sftp as any)._maxReadLen ?? 32_768;
  }
  get maxWrite(): number {
    return (this.sftp as any)._maxWriteLen ?? 32_768;
  }
  /** Whether the server does fsync@openssh.com. */
  get canFsync(): boolean {
    return (this.sftp as any)._extensions?.['fsync@openssh.com'] === '1';
  }

  static async connect(target: SshTarget, cred: SshCredentials, opts: { timeoutMs?: number } = {}): Promise<SftpSession> {
    const client = new ssh2.Client();
    const name = hostKeyName(target.host, target.port);
    let refused: BackendError | null = null;
    const auth: Array<AgentAuthMethod | PublicKeyAuthMethod> = [];
    if (cred.agent) auth.push({ type: 'agent' as const, username: target.user, agent: cred.agent });
    for (const k of cred.keys) auth.push({ type: 'publickey' as const, username: target.user, key: k.key, ...(k.passphrase !== undefined ? { passphrase: k.passphrase } : {}) });
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      authHandler: auth,
      readyTimeout: opts.timeoutMs ?? 30_000,
      // A connection that stops answering (a dead peer, a dropped route) is noticed within a minute.
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      algorithms: { serverHostKey: hostKeyAlgorithms(cred.knownHosts, name, HOST_KEY_ALGORITHMS) as any },
      hostVerifier: (key: Buffer) => {
        const v = checkHostKey(cred.knownHosts, name, key);
        if (v.ok) return true;
        refused = hostKeyRefusal(target, name, key, v, cred.knownHostsFiles);
        return false;
      },
    };
    try {
      await new Promise<void>((resolve, reject) => {
        client.once('ready', () => resolve());
        client.once('error', reject);
        client.once('close', () => reject(new Error('connection closed during the SSH handshake')));
        client.connect(config);
      });
    } catch (e: any) {
      client.end();
      if (refused) throw refused;
      throw connectError(target, e, cred);
    }
    let sftp: SFTPWrapper;
    try {
      sftp = await new Promise<SFTPWrapper>((resolve, reject) => client.sftp((e, s) => (e ? reject(e) : resolve(s))));
    } catch (e: any) {
      client.end();
      throw new BackendError(`${target.user}@${where(target)} refused the SFTP subsystem (${e?.message ?? e}); the server must allow SFTP (sshd_config: Subsystem sftp)`, { retryable: false, cause: e });
    }
    return new SftpSession(target, client, sftp);
  }

  /** Runs one request; the connection's loss fails it with the session's error. */
  private call<T>(path: string, start: (cb: (err: any, value?: T) => void) => void): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    if (!this.pending.size) this.lastAnswer = Date.now();
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const fail = (e: Error) => {
        if (!done) (done = true), reject(e);
      };
      this.pending.add(fail);
      try {
        start((err, value) => {
          this.pending.delete(fail);
          this.lastAnswer = Date.now();
          if (done) return;
          done = true;
          if (!err) return resolve(value as T);
          if (typeof err.code === 'number' && err.code !== FX.NO_CONNECTION && err.code !== FX.CONNECTION_LOST) reject(new SftpStatusError(err.code, String(err.message ?? err), path));
          else reject(this.dead ?? connectionLost(this.target, String(err.message ?? err), err));
        });
      } catch (e: any) {
        this.pending.delete(fail);
        fail(this.dead ?? connectionLost(this.target, String(e?.message ?? e), e));
      }
    });
  }

  open(path: string, flags: 'r' | 'wx'): Promise<Buffer> {
    return this.call(path, (cb) => this.sftp.open(path, flags, { mode: 0o600 }, cb));
  }
  close(handle: Buffer): Promise<void> {
    return this.call('', (cb) => this.sftp.close(handle, cb));
  }
  /** Reads up to `len` bytes (one request: at most maxRead) into buf at off; 0 at end of file. */
  read(handle: Buffer, buf: Buffer, off: number, len: number, position: number, path: string): Promise<number> {
    return this.call(path, (cb) => this.sftp.read(handle, buf, off, len, position, (err, n) => cb(err, n ?? 0)));
  }
  write(handle: Buffer, buf: Buffer, off: number, len: number, position: number, path: string): Promise<void> {
    return this.call(path, (cb) => this.sftp.write(handle, buf, off, len, position, cb));
  }
  fsync(handle: Buffer, path: string): Promise<void> {
    return this.call(path, (cb) => this.sftp.ext_openssh_fsync(handle, cb));
  }
  fstat(handle: Buffer, path: string): Promise<Stats> {
    return this.call(path, (cb) => this.sftp.fstat(handle, cb));
  }
  stat(path: string): Promise<Stats> {
    return this.call(path, (cb) => this.sftp.stat(path, cb));
  }
  readdir(path: string): Promise<FileEntryWithStats[]> {
    return this.call(path, (cb) => this.sftp.readdir(path, cb));
  }
  mkdir(path: string): Promise<void> {
    return this.call(path, (cb) => this.sftp.mkdir(path, { mode: 0o700 }, cb));
  }
  /** SSH_FXP_RENAME (SFTP v3): refuses an existing target (OpenSSH: link() then unlink()). */
  rename(from: string, to: string): Promise<void> {
    return this.call(to, (cb) => this.sftp.rename(from, to, cb));
  }
  unlink(path: string): Promise<void> {
    return this.call(path, (cb) => this.sftp.unlink(path, cb));
  }

  /** Closes the connection; requests in flight fail. */
  end(): void {
    this.ending = true;
    clearInterval(this.watchdog);
    this.client.end();
  }
}

function hostKeyRefusal(t: SshTarget, name: string, key: Buffer, v: Exclude<ReturnType<typeof checkHostKey>, { ok: true }>, files: string[]): BackendError {
  const fp = `${keyTypeOf(key) || 'unknown'} key ${fingerprint(key)}`;
  const keyscan = `ssh-keyscan${t.port === 22 ? '' : ` -p ${t.port}`} ${t.host}`;
  if (v.why === 'revoked') return new BackendError(`the host key of ${name} (${fp}) is marked @revoked in ${v.entry.file}:${v.entry.line}; refusing to connect`, { retryable: false });
  if (v.why === 'changed') {
    return new BackendError(
      `the host key of ${name} has CHANGED: it offers ${fp}, ${v.entry.file}:${v.entry.line} records another; someone may be intercepting the connection. If the server's key was replaced on purpose, remove the old one (ssh-keygen -R '${name}' -f ${v.entry.file}) and accept the new one (connect once with ssh, or check the fingerprint and run ${keyscan} >> ${v.entry.file})`,
      { retryable: false },
    );
  }
  return new BackendError(
    `the host key of ${name} is not known (${fp}; looked in ${files.join(', ') || 'no known_hosts file'}); check the fingerprint with the server's administrator, then add it: connect once with ssh, or run ${keyscan} >> ~/.ssh/known_hosts (or pass --sftp-known-hosts FILE)`,
    { retryable: false },
  );
}

function connectError(t: SshTarget, e: any, cred: SshCredentials): BackendError {
  const code: string | undefined = typeof e?.code === 'string' ? e.code : undefined;
  if (e?.level === 'client-authentication') {
    const tried = [cred.agent ? 'the keys of ssh-agent' : '', ...cred.keys.map((k) => k.file)].filter(Boolean);
    return new BackendError(
      `${t.user}@${where(t)} refused every key offered (${tried.length ? tried.join(', ') : 'no key: SSH_AUTH_SOCK unset and no --sftp-key'}); add the key to ssh-agent, or pass --sftp-key FILE, and make sure its public half is in the server's authorized_keys`,
      { retryable: false, cause: e },
    );
  }
  if (code === 'ENOTFOUND') return new BackendError(`cannot resolve the SFTP host ${t.host}; check the repository address`, { retryable: false, cause: e });
  if (code && TRANSIENT_CONNECT.has(code)) return new BackendError(`cannot connect to SFTP server ${where(t)} (${code})`, { retryable: true, serviceCode: code, cause: e });
  if (/Timed out while waiting for handshake/i.test(String(e?.message))) return new BackendError(`SFTP server ${where(t)} did not complete the SSH handshake in time`, { retryable: true, serviceCode: 'ETIMEDOUT', cause: e });
  if (e?.level === 'handshake' || e?.level === 'protocol') return new BackendError(`SSH handshake with ${where(t)} failed: ${e.message}`, { retryable: false, cause: e });
  return new BackendError(`cannot connect to SFTP server ${where(t)}: ${e?.message ?? e}`, { retryable: true, cause: e });
}

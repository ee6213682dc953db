// A real OpenSSH sshd (Debian openssh-server) on a loopback port, for the SFTP tests: a
// temporary host key, user key, authorized_keys and known_hosts, started with -D so it
// stays our child, logging to sshd.log in its directory. startSshd(t) stops it when `t` ends (and at
// process exit); a test without sshd skips with the reason (sshdOrSkip).
//
// The sessions it serves are its children (one per connection, each with its own
// children): killSessions() kills them all, which drops every connection the way a network
// failure would, while the listener keeps accepting new ones. stop() then start() on the
// same Sshd brings it back on the same port with the same keys. Sessions are found by
// parentage and by the connections to the port they hold: a session accepted as the
// listener stops outlives it, and is no longer its child.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { whenFiles } from './file-events.js';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { userInfo } from 'node:os';
import { makeTempDir, removeDir, type HasTeardown } from './temp.js';

export const SSHD = '/usr/sbin/sshd';

export interface Sshd {
  host: string;
  port: number;
  user: string;
  /** The temporary directory holding keys, config and (by default) repositories. */
  dir: string;
  /** The client's private key (no passphrase) and a known_hosts file naming this server. */
  userKey: string;
  knownHosts: string;
  /** The server's public host key, "ssh-ed25519 AAAA...". */
  hostPublicKey: string;
  /** sftp://user@127.0.0.1:port/<abs path> */
  url(absPath: string): string;
  /** The listener's pid (undefined while stopped). */
  pid(): number | undefined;
  /** Pids of every process below the listener: the sessions and their sftp-servers. */
  sessionPids(): number[];
  /** SIGKILLs every session (connections drop; the listener stays). Resolves to how many. */
  killSessions(): number;
  /** Starts the listener again (same port, keys) after stop(). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Why sshd cannot run here, or null when it can. */
export function sshdUnavailable(): string | null {
  if (!existsSync(SSHD)) return `${SSHD} is not installed (Debian package openssh-server; scripts/setup.sh installs it)`;
  if (spawnSync('ssh-keygen', ['-?'], { stdio: 'ignore' }).error) return 'ssh-keygen is not installed (Debian package openssh-client)';
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function keygen(file: string, comment: string): void {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr || r.error?.message}`);
}

/** The pids below `root` in the process tree, from /proc. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const ent of readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${ent}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; ppid follows the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(ent));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const stack = [...(children.get(root) ?? [])];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/** The pids holding the server's end of a TCP connection to `port` (from /proc/net/tcp*), not a listening socket. */
function connectionHolders(port: number): number[] {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    // "sl local_address rem_address st ... inode": addresses are HEX_IP:HEX_PORT, st 0A is LISTEN.
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] === '0A' || cols[9] === '0') continue;
      if (parseInt(cols[1]!.split(':')[1]!, 16) === port) inodes.add(cols[9]!);
    }
  }
  if (!inodes.size) return [];
  const out: number[] = [];
  for (const ent of readdirSync('/proc')) {
    if (!/^\d+$/.test(ent) || Number(ent) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${ent}/fd`);
    } catch {
      continue; // exited meanwhile, or not ours to read
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${ent}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1]!)) {
        out.push(Number(ent));
        break;
      }
    }
  }
  return out;
}

/** SIGKILLs them; how many were still there. */
function killAll(pids: number[]): number {
  let n = 0;
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
      n++;
    } catch {
      // exited already
    }
  }
  return n;
}

// sshd outlives a test process that dies: kill it at exit, and on the signals tap sends.
const live = new Set<ChildProcess>();
const killLive = () => {
  for (const c of live) c.kill('SIGKILL');
};
process.on('exit', killLive);
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    killLive();
    process.kill(process.pid, sig);
  });
}

/** Starts sshd in a new temporary directory (removed when it stops for good with `t`). */
export async function startSshd(t?: HasTeardown, opts: { verbose?: boolean } = {}): Promise<Sshd> {
  const why = sshdUnavailable();
  if (why) throw new Error(why);
  const dir = makeTempDir('tsbak-sshd-');
  const user = userInfo().username;
  const hostKey = path.join(dir, 'host_ed25519');
  const userKey = path.join(dir, 'user_ed25519');
  keygen(hostKey, 'tsbak-test-host');
  keygen(userKey, 'tsbak-test-user');
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(`${userKey}.pub`));
  const hostPublicKey = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  // The privilege separation directory sshd insists on when run as root.
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });

  let port = 0;
  let child: ChildProcess | undefined;
  const config = path.join(dir, 'sshd_config');

  const launch = async (): Promise<void> => {
    writeFileSync(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey}`,
        `PidFile ${path.join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        `PermitRootLogin ${user === 'root' ? 'prohibit-password' : 'no'}`,
        `AllowUsers ${user}`,
        'MaxStartups 100',
        'MaxSessions 100',
        // sshd's built-in sftp-server: the same code, without a login shell started per
        // connection (a user's shell start-up files can take a second).
        'Subsystem sftp internal-sftp',
        'LogLevel INFO',
        '',
      ].join('\n'),
    );
    // The log goes to a file, not a pipe: a test blocked in spawnSync would not drain a
    // pipe, and sshd would stop on a full one.
    const logFile = path.join(dir, 'sshd.log');
    const logStart = existsSync(logFile) ? statSync(logFile).size : 0;
    const c = spawn(SSHD, ['-D', '-E', logFile, '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(c);
    c.once('exit', () => live.delete(c));
    let early = '';
    c.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (early.length < 65536) early += d;
    });
    const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(logStart) : '');
    // sshd writes this line to its log once it listens; each write to the log wakes a look.
    const exited = new Promise<Error>((resolve) =>
      c.once('exit', (code) => resolve(new Error(`sshd exited with ${code} before listening: ${(early + log()).trim()}`))),
    );
    await whenFiles(dir, () => /Server listening on/.test(log()), { failed: exited });
    if (opts.verbose) process.stderr.write(`[sshd] ${log()}`);
    child = c;
  };

  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (e: any) {
      // Another process took the port between our probe and sshd's bind: take another.
      if (attempt < 5 && /Address already in use|Bind to port/.test(e.message)) continue;
      removeDir(dir);
      throw e;
    }
  }
  const knownHosts = path.join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostPublicKey}\n`);

  const sessions = (): number[] => {
    const listener = child?.pid;
    return [...new Set([...(listener ? descendants(listener) : []), ...connectionHolders(port)])].filter((p) => p !== listener);
  };
  // The listener first, so that no session starts after; then every session, also one it
  // accepted just before (killed, a session may be forking: look again until none is left).
  const stopChild = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (c && c.exitCode === null && c.signalCode === null) {
      const gone = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      const below = descendants(c.pid!);
      c.kill('SIGKILL');
      await gone;
      killAll(below);
    }
    for (let i = 0; i < 10_000 && killAll(connectionHolders(port)) > 0; i++);
  };

  const sshd: Sshd = {
    host: '127.0.0.1',
    port,
    user,
    dir,
    userKey,
    knownHosts,
    hostPublicKey,
    url: (absPath: string) => `sftp://${user}@127.0.0.1:${port}${absPath.startsWith('/') ? '' : '/'}${absPath}`,
    pid: () => child?.pid,
    sessionPids: sessions,
    killSessions: () => killAll(sessions()),
    start: async () => {
      if (child) return;
      await launch();
    },
    stop: stopChild,
  };
  t?.teardown(async () => {
    await stopChild();
    removeDir(dir);
  });
  return sshd;
}

/**
 * startSshd for a test that cannot run without it: undefined (and the test marked skipped
 * with the reason) where sshd is missing or will not start.
 */
export async function sshdOrSkip(t: HasTeardown & { skip(...args: any[]): unknown }): Promise<Sshd | undefined> {
  try {
    return await startSshd(t);
  } catch (e: any) {
    t.skip(`no sshd to test SFTP against: ${e.message}`);
    return undefined;
  }
}

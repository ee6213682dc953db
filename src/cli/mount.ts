// mount.tsbak: the mount helper (`mount -t tsbak <repo> <dir> -o ...`, /etc/fstab) and the
// `tsbak mount` command.
//
//   mount.tsbak <repo> <mountpoint> [-o opt,opt=value,...] [-f] [-s] [-n] [-v] [-t type]
//
// Without -f it starts a detached copy of itself with -f, waits until that copy has the
// file system mounted (or failed: one line, non-zero exit) and returns, as mount(8)
// expects of a helper. The copy reports over an IPC channel that closes once it is ready.
import { spawn } from 'node:child_process';
import { openSync, readFileSync, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RestoreTier } from '../backend/backend.js';
import { isLocalAddress } from '../backend/open.js';
import { TsbakError } from '../errors.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { openRepo, type RepoArgs } from './open-repo.js';
import { dropSecretEnv, givenPassword, promptHidden } from './secrets.js';
import { parseSize } from './size.js';
import { count } from './output.js';
import { programVersion } from '../platform/package.js';
import { requireAddon } from './addon.js';

const PROG = 'mount.tsbak';
const DAEMON_ENV = 'TSBAK_MOUNT_DAEMON';
const DEFAULT_CACHE = 128 << 20;

export interface MountConfig extends RepoArgs {
  mountpoint: string;
  foreground: boolean;
  verbose: boolean;
  cacheSize?: number;
  allowOther?: boolean;
  uid?: number;
  gid?: number;
  /** seconds between looks for new snapshots */
  refresh?: number;
  readahead?: number;
  readAheadKb?: number;
  log?: string;
  debug?: boolean;
  /** Reads of data in cold storage: fail at once with ENODATA (default) or wait. */
  cold?: 'fail' | 'wait';
  /** cold=wait: seconds one read waits at most (default 300). */
  coldTimeout?: number;
  /** Seconds between looks at S3 for a restore in progress (default 60). */
  coldPoll?: number;
  /** Restore tier and days of the restores reads request (default Standard, 7). */
  tier?: RestoreTier;
  days?: number;
  /** List user.tsbak.state in listxattr (default) or only answer getxattr. */
  stateXattr?: 'listed' | 'hidden';
}

const USAGE = `Usage: ${PROG} <repo> <mountpoint> [-o option[,option...]] [-f]

Mounts a tsbak repository read-only: <mountpoint>/snapshots/<time>/..., plus hosts/,
tags/ and ids/ views. Returns once the mount is ready; -f stays in the foreground.
Unmount with 'umount <mountpoint>' or 'fusermount -u <mountpoint>'.

Options (-o):
  password_file=FILE   read the passphrase from FILE (or set TSBAK_PASSWORD_FILE or TSBAK_PASSWORD)
  key_file=FILE        use this key file
  cache_size=SIZE      memory for decrypted chunks, e.g. 256M (default 128M)
  allow_other          let other users in (permission bits still apply)
  uid=N, gid=N         show every file as owned by this uid/gid
  refresh=SECONDS      how often to look for new snapshots (default 3; 60 for S3)
  readahead=N          chunks to fetch ahead of sequential reads (default 4)
  read_ahead_kb=N      kernel read-ahead of the mount in KiB (default 1024; needs root)
  log=FILE             append the background daemon's messages to FILE
  s3_endpoint=URL, s3_region=REGION, s3_path_style, s3_profile=NAME
  sftp_key=FILE, sftp_key_passphrase_file=FILE, sftp_known_hosts=FILE   sftp:// repositories
  debug                libfuse debug output (with -f)

Cold storage (data packs in S3 Glacier / Deep Archive):
  cold=fail|wait       reading data that is not restored requests the restore of all the
                       file's packs (once) and fails with ENODATA (fail, the default) or
                       waits for it (wait); the daemon's log names the file and the restore
  cold_timeout=SECONDS cold=wait: the longest a read waits (default 300), then ENODATA
  cold_poll=SECONDS    least time between two looks at S3 at a restore (default 60)
  tier=Bulk|Standard|Expedited   tier of restores started by reads (default Standard;
                       Deep Archive has no Expedited: Standard is used instead)
  days=N               days S3 keeps a restored copy (default 7)
  cache_dir=DIR        local cache: restore journal, restored packs, trees (default
                       $TSBAK_CACHE_DIR, else ~/.cache/tsbak)
  pack_cache_size=SIZE bound of the disk cache of restored packs (default 10G)
  tree_cache_size=SIZE bound of the disk cache of trees of a remote repository (default 1G)
  state_xattr=listed|hidden   whether listxattr shows user.tsbak.state (default listed,
                       for files with data in cold storage); getxattr always answers it.
                       hidden keeps cp -a/rsync -X from copying it
  Every regular file has the xattr user.tsbak.state: hot, cold, restoring, available
  (restored in S3) or cached (in the local cache). <mountpoint>/.tsbak-status lists
  the pending restores.
Generic mount options (ro, rw, defaults, noauto, _netdev, nofail, user, x-...) are accepted and ignored.
`;

/** The text of `mount.tsbak --help`, for its man page (generate.ts). */
export function mountUsage(): string {
  return USAGE;
}

/** Mount options that mean something to mount(8) or systemd, not to us. */
const IGNORED = new Set(['ro', 'rw', 'defaults', 'auto', 'noauto', '_netdev', 'nofail', 'user', 'users', 'nouser', 'owner', 'group', 'exec', 'noexec', 'suid', 'nosuid', 'dev', 'nodev', 'atime', 'noatime', 'relatime', 'strictatime', 'nodiratime', 'sync', 'async', 'silent', 'loud']);

function usageError(msg: string): TsbakError {
  return new TsbakError('USAGE', `${msg} (see '${PROG} --help')`);
}

function intOption(key: string, v: string | undefined): number {
  if (v === undefined || !/^\d+$/.test(v)) throw usageError(`option ${key}= needs a whole number`);
  return Number(v);
}

export function parseMountArgs(argv: string[]): MountConfig | 'help' | 'version' {
  const pos: string[] = [];
  const opts: string[] = [];
  let foreground = false;
  let verbose = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') return 'help';
    if (a === '-V' || a === '--version') return 'version';
    if (a === '-o') {
      if (i + 1 >= argv.length) throw usageError('-o needs a value');
      opts.push(argv[++i]!);
    } else if (a.startsWith('-o') && a.length > 2) opts.push(a.slice(2));
    else if (a === '-t' || a === '-N') i++; // type (tsbak) and namespace: given by mount(8)
    else if (/^-[fsnv]+$/.test(a)) {
      if (a.includes('f')) foreground = true;
      if (a.includes('v')) verbose = true;
    } else if (a === '--') pos.push(...argv.slice(i + 1)), (i = argv.length);
    else if (a.startsWith('-') && a !== '-') throw usageError(`unknown option ${a}`);
    else pos.push(a);
  }
  if (pos.length !== 2) throw usageError('expected a repository and a mountpoint');
  const cfg: MountConfig = { repo: pos[0]!, mountpoint: pos[1]!, foreground, verbose };
  for (const opt of opts.join(',').split(',')) {
    if (!opt) continue;
    const eq = opt.indexOf('=');
    const key = eq < 0 ? opt : opt.slice(0, eq);
    const value = eq < 0 ? undefined : opt.slice(eq + 1);
    const need = () => {
      if (!value) throw usageError(`option ${key}= needs a value`);
      return value;
    };
    switch (key) {
      case 'password_file':
        cfg.passwordFile = need();
        break;
      case 'key_file':
        cfg.keyFile = need();
        break;
      case 'cache_size':
        cfg.cacheSize = parseSize(need(), 'option cache_size=');
        break;
      case 'allow_other':
        cfg.allowOther = true;
        break;
      case 'uid':
        cfg.uid = intOption(key, value);
        break;
      case 'gid':
        cfg.gid = intOption(key, value);
        break;
      case 'refresh':
        cfg.refresh = intOption(key, value);
        break;
      case 'readahead':
        cfg.readahead = intOption(key, value);
        break;
      case 'read_ahead_kb':
        cfg.readAheadKb = intOption(key, value);
        break;
      case 'log':
        cfg.log = need();
        break;
      case 'debug':
        cfg.debug = true;
        break;
      case 's3_endpoint':
        cfg.s3Endpoint = need();
        break;
      case 's3_region':
        cfg.s3Region = need();
        break;
      case 's3_profile':
        cfg.s3Profile = need();
        break;
      case 'sftp_key':
        cfg.sftpKey = need();
        break;
      case 'sftp_key_passphrase_file':
        cfg.sftpKeyPassphraseFile = need();
        break;
      case 'sftp_known_hosts':
        cfg.sftpKnownHosts = need();
        break;
      case 's3_path_style':
        cfg.s3PathStyle = value === undefined || !/^(0|false|no)$/i.test(value);
        break;
      case 'cold': {
        const v = need().toLowerCase();
        if (v !== 'fail' && v !== 'wait') throw usageError(`option cold= is fail or wait, not '${value}'`);
        cfg.cold = v;
        break;
      }
      case 'cold_timeout':
        cfg.coldTimeout = intOption(key, value);
        break;
      case 'cold_poll':
        cfg.coldPoll = intOption(key, value);
        if (cfg.coldPoll < 1) throw usageError('option cold_poll= must be at least 1 (second)');
        break;
      case 'tier': {
        const v = need().toLowerCase();
        const tier = (['Bulk', 'Standard', 'Expedited'] as const).find((x) => x.toLowerCase() === v);
        if (!tier) throw usageError(`option tier= is Bulk, Standard or Expedited, not '${value}'`);
        cfg.tier = tier;
        break;
      }
      case 'days':
        cfg.days = intOption(key, value);
        if (cfg.days < 1) throw usageError('option days= must be at least 1');
        break;
      case 'cache_dir':
        cfg.cacheDir = need();
        break;
      case 'pack_cache_size':
        parseSize(need(), 'option pack_cache_size='); // fails here, not in the daemon
        cfg.packCacheSize = value;
        break;
      case 'tree_cache_size':
        parseSize(need(), 'option tree_cache_size=');
        cfg.treeCacheSize = value;
        break;
      case 'state_xattr': {
        const v = need().toLowerCase();
        if (v !== 'listed' && v !== 'hidden') throw usageError(`option state_xattr= is listed or hidden, not '${value}'`);
        cfg.stateXattr = v;
        break;
      }
      default:
        if (IGNORED.has(key) || key.startsWith('x-') || key.startsWith('_') || key === 'comment') break;
        throw usageError(`unknown mount option '${key}'`);
    }
  }
  return cfg;
}

/** Mounts and serves until unmounted (umount, fusermount -u, SIGTERM/SIGINT/SIGHUP). Returns the exit code. */
export async function serveMount(cfg: MountConfig, onReady?: () => void): Promise<number> {
  const stamp = !process.stderr.isTTY;
  const log = (msg: string) => process.stderr.write(`${stamp ? `${new Date().toISOString()} ` : ''}${PROG}: ${msg}\n`);
  // A stray rejection must not take the whole mount down.
  process.on('unhandledRejection', (e) => log(`internal error: ${(e as Error)?.stack ?? String(e)}`));

  // cache_dir and pack_cache_size go to the repository's cold storage as it is opened.
  const repo = await openRepo(cfg);
  // Nothing this process starts from here on (fusermount) needs the passphrase: in the
  // foreground it may have come in the environment, which children would inherit.
  dropSecretEnv();
  repo.onWarning = (m) => log(`warning: ${m}`);
  repo.setCacheSize(cfg.cacheSize ?? DEFAULT_CACHE);
  // Restores started by reads; the cold store's own lines (each pack requested, fetched) with -v.
  repo.configureCold({ tier: cfg.tier, days: cfg.days, pollMs: cfg.coldPoll !== undefined ? cfg.coldPoll * 1000 : undefined, log: cfg.verbose ? log : undefined });
  const refresh = cfg.refresh ?? (isLocalAddress(cfg.repo) ? 3 : 60);
  // Loaded here, not at start-up: the FUSE layer is only for this command.
  const { mountRepository } = await import('../fuse/mount.js');
  // Signals are taken before the mount exists: the kernel shows it mounted before
  // mountRepository returns, and a SIGTERM then must unmount, not kill the process.
  let mounted: { mountpoint: string; unmount(): Promise<void> } | null = null;
  let stopped: string | null = null;
  const onSignal = (sig: string) => {
    if (!mounted) {
      stopped = sig;
      return;
    }
    if (cfg.verbose) log(`${sig}: unmounting ${mounted.mountpoint}`);
    mounted.unmount().catch((e) => log((e as Error).message));
  };
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, onSignal);
  try {
    const m = await mountRepository(repo, cfg.mountpoint, {
      fsname: cfg.repo,
      allowOther: cfg.allowOther,
      uid: cfg.uid,
      gid: cfg.gid,
      refreshMs: refresh * 1000,
      readaheadChunks: cfg.readahead,
      // Large files are read sequentially, and the kernel's page cache keeps what was read:
      // a small cache of their chunks lets their buffers be reused sooner (fuse/plain-chunks.ts).
      chunkCacheBytes: Math.floor((cfg.cacheSize ?? DEFAULT_CACHE) / 4),
      // What is fetched ahead must not push out of the blob cache what was fetched before it.
      packReadAheadBytes: Math.min(16 << 20, Math.floor((cfg.cacheSize ?? DEFAULT_CACHE) / 4)),
      readAheadKb: cfg.readAheadKb,
      debug: cfg.debug,
      log,
      cold: {
        mode: cfg.cold,
        timeoutMs: cfg.coldTimeout !== undefined ? cfg.coldTimeout * 1000 : undefined,
        pollMaxMs: cfg.coldPoll !== undefined ? cfg.coldPoll * 1000 : undefined,
        listStateXattr: cfg.stateXattr !== 'hidden',
      },
    });
    if (cfg.verbose) log(`mounted ${cfg.repo} on ${m.mountpoint} (${count(m.fs.snapshotCount, 'snapshot')})`);
    mounted = m;
    if (stopped) onSignal(stopped);
    else onReady?.();
    await m.closed;
    if (cfg.verbose) log(`${m.mountpoint} unmounted`);
  } finally {
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.off(sig, onSignal);
  }
  return EXIT.OK;
}

function errorLine(e: unknown): { line: string; code: number } {
  if (e instanceof TsbakError) return { line: `${PROG}: ${e.message}`, code: exitCodeFor(e.code) };
  const err = e as NodeJS.ErrnoException;
  if (err?.code && err.syscall) return { line: `${PROG}: ${err.message}`, code: EXIT.ERROR };
  return { line: `${PROG}: internal error: ${err?.stack ?? String(e)}`, code: EXIT.ERROR };
}

/** Absolute paths for everything the daemon (started in /) reads. */
function absolutize(cfg: MountConfig): MountConfig {
  const abs = (p?: string) => (p === undefined ? p : path.resolve(p));
  return {
    ...cfg,
    repo: isLocalAddress(cfg.repo) || cfg.repo === '.' || cfg.repo === '..' ? path.resolve(cfg.repo) : cfg.repo,
    mountpoint: path.resolve(cfg.mountpoint),
    passwordFile: abs(cfg.passwordFile),
    keyFile: abs(cfg.keyFile),
    log: abs(cfg.log),
    cacheDir: abs(cfg.cacheDir),
    sftpKey: abs(cfg.sftpKey),
    sftpKeyPassphraseFile: abs(cfg.sftpKeyPassphraseFile),
    sftpKnownHosts: abs(cfg.sftpKnownHosts),
  };
}

function toArgs(cfg: MountConfig): string[] {
  const o: string[] = [];
  const kv = (k: string, v: string | number | undefined) => v !== undefined && o.push(`${k}=${v}`);
  kv('password_file', cfg.passwordFile);
  kv('key_file', cfg.keyFile);
  kv('cache_size', cfg.cacheSize);
  if (cfg.allowOther) o.push('allow_other');
  kv('uid', cfg.uid);
  kv('gid', cfg.gid);
  kv('refresh', cfg.refresh);
  kv('readahead', cfg.readahead);
  kv('read_ahead_kb', cfg.readAheadKb);
  kv('s3_endpoint', cfg.s3Endpoint);
  kv('s3_region', cfg.s3Region);
  kv('s3_profile', cfg.s3Profile);
  if (cfg.s3PathStyle) o.push('s3_path_style');
  kv('sftp_key', cfg.sftpKey);
  kv('sftp_key_passphrase_file', cfg.sftpKeyPassphraseFile);
  kv('sftp_known_hosts', cfg.sftpKnownHosts);
  kv('cold', cfg.cold);
  kv('cold_timeout', cfg.coldTimeout);
  kv('cold_poll', cfg.coldPoll);
  kv('tier', cfg.tier);
  kv('days', cfg.days);
  kv('cache_dir', cfg.cacheDir);
  kv('pack_cache_size', cfg.packCacheSize);
  kv('tree_cache_size', cfg.treeCacheSize);
  kv('state_xattr', cfg.stateXattr);
  const args = [cfg.repo, cfg.mountpoint, '-f'];
  if (cfg.verbose) args.push('-v');
  if (cfg.debug) o.push('debug');
  if (o.length) args.push('-o', o.join(','));
  return args;
}

/** Whether opening the repository will need a passphrase nobody has given yet. */
function needsPrompt(cfg: MountConfig): boolean {
  if (givenPassword(cfg) !== undefined || !process.stdin.isTTY) return false;
  if (!cfg.keyFile) return true;
  try {
    return !!JSON.parse(readFileSync(cfg.keyFile, 'utf8')).wrapped;
  } catch {
    return false; // the daemon reports the unreadable key file
  }
}

interface FromDaemon {
  ready?: boolean;
  error?: string;
  code?: number;
}

/** Starts the detached daemon and waits for it to report. */
async function startDaemon(cfg0: MountConfig): Promise<number> {
  const cfg = absolutize(cfg0);
  // The passphrase goes over the IPC channel, not the environment: /proc/<pid>/environ of a
  // long-lived daemon would show it for as long as it runs.
  const { TSBAK_PASSWORD: fromEnv, ...env } = process.env;
  const password = fromEnv ?? (needsPrompt(cfg) ? await promptHidden(cfg.keyFile ? `Passphrase for ${cfg.keyFile}: ` : 'Repository passphrase: ') : undefined);
  let out: number | 'ignore' = 'ignore';
  if (cfg.log) {
    try {
      out = openSync(cfg.log, 'a', 0o600);
    } catch (e: any) {
      throw new TsbakError('USAGE', `cannot open log file ${cfg.log}: ${e.code ?? e.message}`);
    }
  }
  // A larger initial old space: reads allocate a buffer per chunk and per FUSE request, and
  // with V8's small default heap the daemon spent a quarter of its CPU in full GCs.
  const child = spawn(process.execPath, ['--initial-old-space-size=64', fileURLToPath(import.meta.url), ...toArgs(cfg)], {
    detached: true,
    cwd: '/',
    stdio: ['ignore', out, out, 'ipc'],
    env: { ...env, [DAEMON_ENV]: '1' },
  });
  return new Promise<number>((resolve) => {
    let done = false;
    let failed = false;
    const finish = (code: number, line?: string) => {
      if (done) return;
      done = true;
      if (line) process.stderr.write(`${line}\n`);
      if (child.connected) child.disconnect();
      child.unref();
      resolve(code);
    };
    child.on('message', (m: FromDaemon) => {
      if (m.ready) finish(EXIT.OK);
      else if (m.error) {
        // Return once the daemon is gone, so that nothing of the failed mount is left.
        failed = true;
        const give = () => finish(m.code ?? EXIT.ERROR, m.error);
        child.once('exit', give);
        setTimeout(give, 5000).unref();
      }
    });
    child.on('error', (e) => finish(EXIT.ERROR, `${PROG}: cannot start the mount daemon: ${e.message}`));
    child.on('exit', (code, sig) => !failed && finish(EXIT.ERROR, `${PROG}: the mount daemon ended (${sig ?? `exit code ${code}`}) before the mount was ready${cfg.log ? `; see ${cfg.log}` : '; run with -f to see why'}`));
    child.send({ password });
  });
}

/** The daemon side: take the passphrase from the parent, mount, say so, keep serving. */
async function runDaemon(cfg: MountConfig): Promise<number> {
  const hello = await new Promise<{ password?: string }>((resolve) => process.once('message', resolve));
  // Handed to openRepo directly: never put in the environment, which children would inherit.
  if (hello.password !== undefined) cfg = { ...cfg, password: hello.password };
  const tell = (m: FromDaemon) => new Promise<void>((resolve) => process.send!(m, undefined, {}, () => resolve()));
  try {
    return await serveMount(cfg, () => {
      void tell({ ready: true }).then(() => process.disconnect());
    });
  } catch (e) {
    const { line, code } = errorLine(e);
    if (process.connected) {
      await tell({ error: line, code });
      process.disconnect();
    }
    return code;
  }
}

export async function mountMain(argv: string[]): Promise<never> {
  let code: number;
  try {
    const cfg = parseMountArgs(argv);
    if (cfg === 'help') {
      process.stdout.write(USAGE);
      code = EXIT.OK;
    } else if (cfg === 'version') {
      process.stdout.write(`${programVersion()}\n`);
      code = EXIT.OK;
    } else {
      requireAddon();
      if (process.env[DAEMON_ENV] && process.send) code = await runDaemon(cfg);
      else if (cfg.foreground) code = await serveMount(cfg);
      else code = await startDaemon(cfg);
    }
  } catch (e) {
    const { line, code: c } = errorLine(e);
    process.stderr.write(`${line}\n`);
    code = c;
  }
  process.exit(code);
}

/** `tsbak mount <repo> <mountpoint>`: the same, in the foreground. */
export async function cmdMount(
  a: RepoArgs & { mountpoint: string; cacheSize?: string; allowOther?: boolean; uid?: number; gid?: number; refresh?: number; readahead?: number; verbose?: boolean } & Pick<MountConfig, 'cold' | 'coldTimeout' | 'coldPoll' | 'tier' | 'days' | 'stateXattr'>,
): Promise<number> {
  return serveMount({
    repo: a.repo,
    mountpoint: a.mountpoint,
    passwordFile: a.passwordFile,
    keyFile: a.keyFile,
    s3Endpoint: a.s3Endpoint,
    s3Region: a.s3Region,
    s3PathStyle: a.s3PathStyle,
    s3Profile: a.s3Profile,
    sftpKey: a.sftpKey,
    sftpKeyPassphraseFile: a.sftpKeyPassphraseFile,
    sftpKnownHosts: a.sftpKnownHosts,
    cacheDir: a.cacheDir,
    packCacheSize: a.packCacheSize,
    treeCacheSize: a.treeCacheSize,
    cold: a.cold,
    coldTimeout: a.coldTimeout,
    coldPoll: a.coldPoll,
    tier: a.tier,
    days: a.days,
    stateXattr: a.stateXattr,
    foreground: true,
    verbose: !!a.verbose,
    cacheSize: a.cacheSize !== undefined ? parseSize(a.cacheSize, '--cache-size') : undefined,
    allowOther: a.allowOther,
    uid: a.uid,
    gid: a.gid,
    refresh: a.refresh,
    readahead: a.readahead,
  });
}

// bin/mount.tsbak runs this file directly.
const entry = process.argv[1];
if (entry && realpathOr(entry) === fileURLToPath(import.meta.url)) await mountMain(process.argv.slice(2));

function realpathOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

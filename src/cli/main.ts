// Command-line entry points. The only place that calls process.exit. Expected errors
// (TsbakError) print one line and map to a documented exit code; anything else is a bug
// and prints its stack.
import { TsbakError } from '../errors.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { helpFor, parseCommandLine, UsageError, type Command, type Opts } from './args.js';
import { rawArgv } from './raw-argv.js';
import { setProgramName } from './output.js';
import { programVersion } from '../platform/package.js';
import { requireAddon } from './addon.js';

type Handler = (a: any) => Promise<number>;

// Commands are imported when run: tsbak-write does not load the restore, check or FUSE
// code (fuse-native), which costs startup time and memory on every backup.
const commands = () => import('./commands.js');
const cmdInit: Handler = async (a) => (await commands()).cmdInit(a);
const cmdSnapshots: Handler = async (a) => (await commands()).cmdSnapshots(a);
const cmdLs: Handler = async (a) => (await commands()).cmdLs(a);
const cmdRestore: Handler = async (a) => (await commands()).cmdRestore(a);
const cmdCheck: Handler = async (a) => (await commands()).cmdCheck(a);
const cmdKeyAddWriter: Handler = async (a) => (await commands()).cmdKeyAddWriter(a);
const cmdKeyList: Handler = async (a) => (await commands()).cmdKeyList(a);
const cmdKeyAddPassword: Handler = async (a) => (await commands()).cmdKeyAddPassword(a);
const cmdKeyPasswd: Handler = async (a) => (await commands()).cmdKeyPasswd(a);
const cmdKeyRemove: Handler = async (a) => (await commands()).cmdKeyRemove(a);
const cmdKeySignConfig: Handler = async (a) => (await commands()).cmdKeySignConfig(a);
const cmdWrite: Handler = async (a) => (await import('./write.js')).cmdWrite(a);
const cmdWarm: Handler = async (a) => (await import('./warm.js')).cmdWarm(a);
const cmdCost: Handler = async (a) => (await import('./cost.js')).cmdCost(a);
const cmdMount: Handler = async (a) => (await import('./mount.js')).cmdMount(a);

const repoOptions: Opts = {
  'password-file': { type: 'string', describe: 'read the repository passphrase from this file (or set TSBAK_PASSWORD_FILE, or TSBAK_PASSWORD to the passphrase)' },
  'key-file': { type: 'string', describe: 'use a write-only key file instead of the passphrase' },
  's3-endpoint': { type: 'string', describe: 'S3-compatible endpoint URL (also AWS_ENDPOINT_URL_S3)' },
  's3-region': { type: 'string', describe: 'S3 region (also AWS_REGION)' },
  's3-path-style': { type: 'boolean', describe: 'path-style S3 addressing' },
  's3-profile': { type: 'string', describe: 'AWS profile' },
  'cache-dir': { type: 'string', describe: 'local cache directory (default $TSBAK_CACHE_DIR or ~/.cache/tsbak)' },
  'no-cache': { type: 'boolean', describe: "use no local cache (snapshots, trees; the writer's parent trees and directory records)" },
  'tree-cache-size': { type: 'string', describe: 'bound of the disk cache of trees read from a remote repository (default 1G)' },
};

const writeOptions: Opts = {
  ...repoOptions,
  tag: { type: 'string', array: true, describe: 'tag the snapshot (repeatable)' },
  host: { type: 'string', describe: 'host name to record (default: this machine)' },
  json: { type: 'boolean', describe: 'print one JSON object at the end' },
  quiet: { alias: 'q', type: 'boolean', describe: 'print nothing on success (warnings and errors still go to stderr)' },
  parent: { type: 'string', describe: 'compare against this snapshot instead of the latest of the same host and paths' },
  signer: { type: 'string', describe: "full key: take the parent only among snapshots signed by this key ('master', a writer key's id or name)" },
  force: { type: 'boolean', describe: 'read every file again (no parent)' },
  'trust-writers': { type: 'boolean', describe: "dedup against other writer keys' data too (they could make this backup unrestorable; also TSBAK_TRUST_WRITERS=1)" },
  exclude: { alias: 'e', type: 'string', array: true, describe: 'exclude a gitignore-style pattern (repeatable)' },
  iexclude: { type: 'string', array: true, describe: 'like --exclude, case-insensitive' },
  'exclude-file': { type: 'string', array: true, describe: 'read exclude patterns from a file' },
  'iexclude-file': { type: 'string', array: true, describe: 'like --exclude-file, patterns matched case-insensitively' },
  'exclude-caches': { type: 'boolean', describe: 'skip directories holding a CACHEDIR.TAG' },
  'exclude-larger-than': { type: 'string', describe: 'skip files larger than SIZE (e.g. 2G)' },
  'one-file-system': { alias: 'x', type: 'boolean', describe: 'do not cross file system boundaries' },
};

/** Restore, warm: fetching cold data. */
function coldOptions(defaultTier: string): Opts {
  return {
    tier: { type: 'string', choices: ['Expedited', 'Standard', 'Bulk'], describe: `restore tier for cold data (default ${defaultTier}; Expedited: Glacier only)` },
    days: { type: 'number', describe: 'days S3 keeps restored copies (default 7)' },
    'pack-cache-size': { type: 'string', describe: 'bound of the disk cache of packs fetched from cold storage (default 10G)' },
    'poll-interval': { type: 'number', describe: 'longest pause in seconds between looks at restores in progress (default 300)' },
  };
}

const json: Opts = { json: { type: 'boolean', describe: 'print JSON' } };

/** Which snapshots `latest` (and `snapshots`) considers. */
const selectOptions: Opts = {
  host: { type: 'string', describe: 'only snapshots of this host' },
  path: { type: 'string', array: true, describe: 'only snapshots that backed up this path (repeatable: each of them)' },
  signer: { type: 'string', describe: "only snapshots signed by this key: 'master', a writer key's id (or prefix) or name" },
};

// version, help and generate need neither the addon nor a repository.
const cmdVersion: Handler = async (a: { json?: boolean }) => {
  process.stdout.write(a.json ? `${JSON.stringify({ version: programVersion(), node: process.versions.node, platform: process.platform, arch: process.arch })}\n` : `tsbak ${programVersion()}\n`);
  return EXIT.OK;
};
const cmdHelp: Handler = async (a: { command?: string[] }) => {
  try {
    process.stdout.write(helpFor('tsbak', TSBAK, a.command ?? []));
  } catch (e) {
    if (e instanceof UsageError) throw new TsbakError('USAGE', `${e.message}; 'tsbak help' lists the commands`);
    throw e;
  }
  return EXIT.OK;
};
const cmdGenerate: Handler = async (a) => (await import('./generate.js')).cmdGenerate([TSBAK, TSBAK_WRITE], a);

export const TSBAK: Command = {
  usage: 'tsbak',
  describe: 'tsbak: deduplicated, encrypted backups to S3 (Standard, Glacier, Deep Archive) or a directory',
  subcommands: [
    {
      usage: 'init <repo>',
      describe: 'create a repository',
      options: {
        ...repoOptions,
        compression: { type: 'number', describe: 'zstd level (0 = none)', default: 3 },
        'data-class': { type: 'string', choices: ['STANDARD', 'STANDARD_IA', 'GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE'], describe: 'S3 storage class of data packs' },
        'pack-size': { type: 'number', describe: 'target data pack size in MiB (default 16, 64 for cold classes)' },
      },
      run: (a) => run(cmdInit, a),
    },
    { usage: 'backup <repo> <paths..>', describe: 'back up paths (same as tsbak-write)', options: writeOptions, run: (a) => run(cmdWrite, a) },
    { usage: 'snapshots <repo>', describe: 'list snapshots, with who signed each', options: { ...repoOptions, ...json, ...selectOptions, tag: { type: 'string', array: true, describe: 'only snapshots with this tag (repeatable: each of them)' } }, run: (a) => run(cmdSnapshots, a) },
    { usage: 'ls <repo> <snapshot> [dir]', describe: 'list files in a snapshot', options: { ...repoOptions, ...selectOptions, long: { alias: 'l', type: 'boolean', describe: 'long listing: mode, owner, group, size, time, symlink target' }, json: { type: 'boolean', describe: 'print one JSON document: the snapshot and its entries' }, 'json-lines': { type: 'boolean', describe: 'print JSON, one object per line: the snapshot, then each entry as it is found' } }, run: (a) => run(cmdLs, a) },
    {
      usage: 'restore <repo> <snapshot>',
      describe: 'restore a snapshot',
      options: {
        ...repoOptions,
        ...selectOptions,
        ...coldOptions('Standard'),
        target: { alias: 't', type: 'string', demand: true, describe: 'directory to restore into' },
        include: { alias: 'i', type: 'string', array: true, describe: 'restore only this path of the snapshot (repeatable)' },
        'no-owner': { type: 'boolean', describe: 'do not restore uid/gid' },
        'security-xattrs': { type: 'boolean', describe: 'also restore security.* xattrs' },
        'map-by-name': { type: 'boolean', describe: 'map owners by user/group name' },
        'no-wait': { type: 'boolean', describe: 'cold data: request the restores, then exit 15 instead of waiting; run again later' },
        ...json,
      },
      run: (a) => run(cmdRestore, a),
    },
    {
      usage: 'warm <repo> <snapshot> [paths..]',
      describe: 'request, in one batch, the restores from Glacier/Deep Archive that a snapshot (or paths in it) needs',
      options: {
        ...repoOptions,
        ...selectOptions,
        ...coldOptions('Bulk'),
        wait: { type: 'boolean', describe: 'wait, with progress, until everything is restored' },
        'dry-run': { alias: 'n', type: 'boolean', describe: 'only print what would be requested and its cost' },
        ...json,
      },
      run: (a) => run(cmdWarm, a),
    },
    {
      usage: 'cost <repo> [snapshot]',
      describe: 'monthly storage cost by storage class, bytes added per snapshot, and the cost and time of restoring a snapshot',
      options: { ...repoOptions, ...selectOptions, days: { type: 'number', describe: 'days restored copies are kept (default 7)' }, ...json },
      run: (a) => run(cmdCost, a),
    },
    { usage: 'check <repo>', describe: 'verify the repository', options: { ...repoOptions, 'read-data': { type: 'boolean', describe: 'also read and verify every blob' }, ...json }, run: (a) => run(cmdCheck, a) },
    {
      usage: 'mount <repo> <mountpoint>',
      describe: 'mount the repository read-only, in the foreground (mount.tsbak for the background and /etc/fstab)',
      options: {
        ...repoOptions,
        'cache-size': { type: 'string', describe: 'memory for decrypted chunks, e.g. 256M (default 128M)' },
        'allow-other': { type: 'boolean', describe: 'let other users in (permission bits still apply)' },
        uid: { type: 'number', describe: 'show every file as owned by this uid' },
        gid: { type: 'number', describe: 'show every file as owned by this gid' },
        refresh: { type: 'number', describe: 'seconds between looks for new snapshots (default 3; 60 for S3)' },
        readahead: { type: 'number', describe: 'chunks to fetch ahead of sequential reads (default 4)' },
        cold: { type: 'string', choices: ['fail', 'wait'], describe: 'reading cold data: fail with EAGAIN (default) or wait for the restore' },
        'cold-timeout': { type: 'number', describe: 'seconds a read waits for a restore with --cold wait (default 300)' },
        'cold-poll': { type: 'number', describe: 'seconds between looks at a restore in progress (default 60)' },
        tier: { type: 'string', choices: ['Expedited', 'Standard', 'Bulk'], describe: 'restore tier for cold data (default Standard)' },
        days: { type: 'number', describe: 'days S3 keeps restored copies (default 7)' },
        'pack-cache-size': { type: 'string', describe: 'bound of the disk cache of restored packs (default 10G)' },
        'state-xattr': { type: 'string', choices: ['listed', 'hidden'], describe: 'list user.tsbak.state on cold files (default listed)' },
        verbose: { alias: 'v', type: 'boolean', describe: 'log what the mount does on stderr' },
      },
      run: (a) => run(cmdMount, a),
    },
    {
      usage: 'key <command>',
      describe: 'manage keys',
      subcommands: [
        {
          usage: 'add-writer <repo>',
          describe: 'create a write-only key file',
          options: {
            ...repoOptions,
            name: { type: 'string', demand: true, describe: 'name of the key (the machine it is for); shown by key list and as the signer of its snapshots' },
            out: { type: 'string', demand: true, describe: 'file to write the key to (mode 0600)' },
            protect: { type: 'boolean', describe: 'protect the key file with a passphrase' },
          },
          run: (a) => run(cmdKeyAddWriter, a),
        },
        { usage: 'list <repo>', describe: 'list keys', options: { ...repoOptions, ...json }, run: (a) => run(cmdKeyList, a) },
        { usage: 'add-password <repo>', describe: 'add another passphrase for the full key (from --new-password-file, or asked)', options: { ...repoOptions, 'new-password-file': { type: 'string', describe: 'read the passphrase to add from this file' } }, run: (a) => run(cmdKeyAddPassword, a) },
        { usage: 'passwd <repo>', describe: 'change the passphrase that opens the repository (the new one from --new-password-file, or asked)', options: { ...repoOptions, 'new-password-file': { type: 'string', describe: 'read the new passphrase from this file' } }, run: (a) => run(cmdKeyPasswd, a) },
        { usage: 'remove <repo> <key>', describe: "revoke a write-only key (its id, a prefix of it, or its name): its later snapshots are refused", options: repoOptions, run: (a) => run(cmdKeyRemove, a) },
        { usage: 'sign-config <repo>', describe: 'sign the config of a repository made before configs were signed (writes config.sig)', options: repoOptions, run: (a) => run(cmdKeySignConfig, a) },
      ],
    },
    // ---- version, help, generate (issue 17) ----
    { usage: 'version', describe: 'print the version of tsbak', options: { json: { type: 'boolean', describe: 'print JSON: version, node, platform, arch' } }, run: (a) => run(cmdVersion, a, false) },
    { usage: 'help [command..]', describe: "print the help of tsbak, or of a command ('tsbak help key add-writer')", run: (a) => run(cmdHelp, a, false) },
    {
      usage: 'generate',
      describe: 'write man pages and shell completions, made from this command table',
      options: {
        man: { type: 'string', describe: 'write a man page per command (tsbak.1, tsbak-<command>.1, tsbak-write.1, mount.tsbak.1) into this directory' },
        'bash-completion': { type: 'string', describe: "write the bash completion script to this file ('-' for stdout)" },
        'zsh-completion': { type: 'string', describe: "write the zsh completion script to this file ('-' for stdout)" },
      },
      run: (a) => run(cmdGenerate, a, false),
    },
    // ---- end version, help, generate ----
  ],
};

export const TSBAK_WRITE: Command = { usage: 'tsbak-write <repo> <paths..>', describe: 'back up paths into a repository', options: writeOptions, run: (a) => run(cmdWrite, a) };

/** The name errors are prefixed with: the command the user typed. */
let progName = 'tsbak';

async function run(handler: Handler, a: any, addon = true): Promise<never> {
  let code: number;
  try {
    if (addon) requireAddon();
    code = await handler(a);
  } catch (e) {
    code = reportError(e, !!(a?.json || a?.jsonLines));
  }
  process.exit(code);
}

/** Prints an error: one line, and under --json also {"error": {...}} as the last line of stderr (docs/JSON.md "Errors"). */
function reportError(e: unknown, json: boolean): number {
  const prog = progName;
  const say = (code: string, exit: number, message: string, line = message): number => {
    process.stderr.write(`${prog}: ${line}\n`);
    if (json) process.stderr.write(`${JSON.stringify({ error: { code, exit, message } })}\n`);
    return exit;
  };
  if (e instanceof TsbakError) return say(e.code, exitCodeFor(e.code), e.message);
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOSPC') return say('DISK_FULL', EXIT.ERROR, `disk full (${err.path ?? ''}): free some space and try again`);
  if (err?.code && err.syscall) return say('IO', EXIT.ERROR, err.message);
  return say('INTERNAL', EXIT.ERROR, `internal error: ${(err as Error)?.message ?? String(e)}`, `internal error: ${(err as Error)?.stack ?? String(e)}`);
}

async function main(name: string, program: Command, argv: string[]): Promise<void> {
  progName = name;
  setProgramName(name);
  let r: ReturnType<typeof parseCommandLine>;
  try {
    r = parseCommandLine(name, program, argv, rawArgv(argv));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${name}: ${e.message}\nTry '${e.command} --help'.\n`);
    const flags = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv;
    if (flags.includes('--json') || flags.includes('--json-lines')) process.stderr.write(`${JSON.stringify({ error: { code: 'USAGE', exit: EXIT.USAGE, message: `${e.message}; try '${e.command} --help'` } })}\n`);
    process.exit(EXIT.USAGE);
  }
  if (r.kind === 'help') {
    process.stdout.write(r.text);
    process.exit(EXIT.OK);
  }
  if (r.kind === 'version') {
    process.stdout.write(`${programVersion()}\n`);
    process.exit(EXIT.OK);
  }
  await r.command.run!({ ...r.args, rawValues: r.raw });
}

export async function tsbakMain(argv: string[]): Promise<void> {
  await main('tsbak', TSBAK, argv);
}

export async function tsbakWriteMain(argv: string[]): Promise<void> {
  await main('tsbak-write', TSBAK_WRITE, argv);
}

// Command-line entry points. The only place that calls process.exit. Expected errors
// (TsbakError) print one line and map to a documented exit code; anything else is a bug
// and prints its stack.
import yargs, { type Argv } from 'yargs';
import { TsbakError } from '../errors.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { coldOptions } from './warm.js';

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
const cmdWrite: Handler = async (a) => (await import('./write.js')).cmdWrite(a);
const cmdWarm: Handler = async (a) => (await import('./warm.js')).cmdWarm(a);
const cmdCost: Handler = async (a) => (await import('./cost.js')).cmdCost(a);
const cmdMount: Handler = async (a) => (await import('./mount.js')).cmdMount(a);

function repoOptions<T>(y: Argv<T>) {
  return y
    .option('password-file', { type: 'string', describe: 'read the repository passphrase from this file (or set TSBAK_PASSWORD)' })
    .option('key-file', { type: 'string', describe: 'use a write-only key file instead of the passphrase' })
    .option('s3-endpoint', { type: 'string', describe: 'S3-compatible endpoint URL (also AWS_ENDPOINT_URL_S3)' })
    .option('s3-region', { type: 'string', describe: 'S3 region (also AWS_REGION)' })
    .option('s3-path-style', { type: 'boolean', describe: 'path-style S3 addressing' })
    .option('s3-profile', { type: 'string', describe: 'AWS profile' })
    .option('cache-dir', { type: 'string', describe: 'local cache directory (default $TSBAK_CACHE_DIR or ~/.cache/tsbak)' })
    .option('no-cache', { type: 'boolean', describe: 'use no local cache (snapshots; the writer\'s parent trees and directory records)' });
}

function writeOptions<T>(y: Argv<T>) {
  return repoOptions(y)
    .positional('repo', { type: 'string', demandOption: true })
    .positional('paths', { type: 'string', array: true, demandOption: true })
    .option('tag', { type: 'string', array: true, describe: 'tag the snapshot (repeatable)' })
    .option('host', { type: 'string', describe: 'host name to record (default: this machine)' })
    .option('json', { type: 'boolean', describe: 'print one JSON object at the end' })
    .option('quiet', { alias: 'q', type: 'boolean' })
    .option('parent', { type: 'string', describe: 'compare against this snapshot instead of the latest of the same host and paths' })
    .option('force', { type: 'boolean', describe: 'read every file again (no parent)' })
    .option('exclude', { alias: 'e', type: 'string', array: true, describe: 'exclude a gitignore-style pattern (repeatable)' })
    .option('iexclude', { type: 'string', array: true, describe: 'like --exclude, case-insensitive' })
    .option('exclude-file', { type: 'string', array: true, describe: 'read exclude patterns from a file' })
    .option('iexclude-file', { type: 'string', array: true })
    .option('exclude-caches', { type: 'boolean', describe: 'skip directories holding a CACHEDIR.TAG' })
    .option('exclude-larger-than', { type: 'string', describe: 'skip files larger than SIZE (e.g. 2G)' })
    .option('one-file-system', { alias: 'x', type: 'boolean', describe: 'do not cross file system boundaries' });
}

/** The name errors are prefixed with: the command the user typed. */
let progName = 'tsbak';

async function run(handler: Handler, a: any): Promise<never> {
  let code: number;
  try {
    code = await handler(a);
  } catch (e) {
    code = reportError(e);
  }
  process.exit(code);
}

function reportError(e: unknown): number {
  const prog = progName;
  if (e instanceof TsbakError) {
    process.stderr.write(`${prog}: ${e.message}\n`);
    return exitCodeFor(e.code);
  }
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOSPC') {
    process.stderr.write(`${prog}: disk full (${err.path ?? ''}): free some space and try again\n`);
    return EXIT.ERROR;
  }
  if (err?.code && err.syscall) {
    process.stderr.write(`${prog}: ${err.message}\n`);
    return EXIT.ERROR;
  }
  process.stderr.write(`${prog}: internal error: ${(err as Error)?.stack ?? String(e)}\n`);
  return EXIT.ERROR;
}

function base(argv: string[], name: string) {
  return yargs(argv)
    .scriptName(name)
    .strict()
    .help()
    .version('0.1.0')
    .parserConfiguration({ 'boolean-negation': false })
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`${name}: ${msg}\nTry '${name} --help'.\n`);
      process.exit(EXIT.USAGE);
    });
}

export async function tsbakMain(argv: string[]): Promise<void> {
  progName = 'tsbak';
  await base(argv, 'tsbak')
    .command(
      'init <repo>',
      'create a repository',
      (y) =>
        repoOptions(y)
          .positional('repo', { type: 'string', demandOption: true })
          .option('compression', { type: 'number', describe: 'zstd level (0 = none)', default: 3 })
          .option('data-class', { type: 'string', choices: ['STANDARD', 'STANDARD_IA', 'GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE'], describe: 'S3 storage class of data packs' })
          .option('pack-size', { type: 'number', describe: 'target data pack size in MiB (default 16, 64 for cold classes)' }),
      (a) => run(cmdInit, a),
    )
    .command('backup <repo> <paths..>', 'back up paths (same as tsbak-write)', (y) => writeOptions(y), (a) => run(cmdWrite, a))
    .command(
      'snapshots <repo>',
      'list snapshots',
      (y) => repoOptions(y).positional('repo', { type: 'string', demandOption: true }).option('json', { type: 'boolean' }).option('host', { type: 'string' }).option('tag', { type: 'string', array: true }),
      (a) => run(cmdSnapshots, a),
    )
    .command(
      'ls <repo> <snapshot> [path]',
      'list files in a snapshot',
      (y) =>
        repoOptions(y)
          .positional('repo', { type: 'string', demandOption: true })
          .positional('snapshot', { type: 'string', demandOption: true })
          .positional('path', { type: 'string' })
          .option('long', { alias: 'l', type: 'boolean' })
          .option('json', { type: 'boolean' }),
      (a) => run(cmdLs, a),
    )
    .command(
      'restore <repo> <snapshot>',
      'restore a snapshot',
      (y) =>
        coldOptions(repoOptions(y), 'Standard')
          .positional('repo', { type: 'string', demandOption: true })
          .positional('snapshot', { type: 'string', demandOption: true })
          .option('target', { alias: 't', type: 'string', demandOption: true, describe: 'directory to restore into' })
          .option('include', { alias: 'i', type: 'string', array: true, describe: 'restore only this path of the snapshot (repeatable)' })
          .option('no-owner', { type: 'boolean', describe: 'do not restore uid/gid' })
          .option('security-xattrs', { type: 'boolean', describe: 'also restore security.* xattrs' })
          .option('map-by-name', { type: 'boolean', describe: 'map owners by user/group name' })
          .option('no-wait', { type: 'boolean', describe: 'cold data: request the restores, then exit 15 instead of waiting; run again later' })
          .option('json', { type: 'boolean' }),
      (a) => run(cmdRestore, a),
    )
    .command(
      'warm <repo> <snapshot> [paths..]',
      'request, in one batch, the restores from Glacier/Deep Archive that a snapshot (or paths in it) needs',
      (y) =>
        coldOptions(repoOptions(y), 'Bulk')
          .positional('repo', { type: 'string', demandOption: true })
          .positional('snapshot', { type: 'string', demandOption: true })
          .positional('paths', { type: 'string', array: true, describe: 'paths inside the snapshot (default: all of it)' })
          .option('wait', { type: 'boolean', describe: 'wait, with progress, until everything is restored' })
          .option('dry-run', { alias: 'n', type: 'boolean', describe: 'only print what would be requested and its cost' })
          .option('json', { type: 'boolean' }),
      (a) => run(cmdWarm, a),
    )
    .command(
      'cost <repo> [snapshot]',
      'monthly storage cost by storage class, bytes added per snapshot, and the cost and time of restoring a snapshot',
      (y) =>
        repoOptions(y)
          .positional('repo', { type: 'string', demandOption: true })
          .positional('snapshot', { type: 'string', describe: 'snapshot whose restore to price (default: the latest)' })
          .option('days', { type: 'number', describe: 'days restored copies are kept (default 7)' })
          .option('json', { type: 'boolean' }),
      (a) => run(cmdCost, a),
    )
    .command(
      'check <repo>',
      'verify the repository',
      (y) => repoOptions(y).positional('repo', { type: 'string', demandOption: true }).option('read-data', { type: 'boolean', describe: 'also read and verify every blob' }).option('json', { type: 'boolean' }),
      (a) => run(cmdCheck, a),
    )
    .command(
      'mount <repo> <mountpoint>',
      'mount the repository read-only, in the foreground (mount.tsbak for the background and /etc/fstab)',
      (y) =>
        repoOptions(y)
          .positional('repo', { type: 'string', demandOption: true })
          .positional('mountpoint', { type: 'string', demandOption: true })
          .option('cache-size', { type: 'string', describe: 'memory for decrypted chunks, e.g. 256M (default 128M)' })
          .option('allow-other', { type: 'boolean', describe: 'let other users in (permission bits still apply)' })
          .option('uid', { type: 'number', describe: 'show every file as owned by this uid' })
          .option('gid', { type: 'number', describe: 'show every file as owned by this gid' })
          .option('refresh', { type: 'number', describe: 'seconds between looks for new snapshots (default 3; 60 for S3)' })
          .option('readahead', { type: 'number', describe: 'chunks to fetch ahead of sequential reads (default 4)' })
          .option('cold', { type: 'string', choices: ['fail', 'wait'], describe: 'reading cold data: fail with EAGAIN (default) or wait for the restore' })
          .option('cold-timeout', { type: 'number', describe: 'seconds a read waits for a restore with --cold wait (default 300)' })
          .option('cold-poll', { type: 'number', describe: 'seconds between looks at a restore in progress (default 60)' })
          .option('tier', { type: 'string', choices: ['Expedited', 'Standard', 'Bulk'], describe: 'restore tier for cold data (default Standard)' })
          .option('days', { type: 'number', describe: 'days S3 keeps restored copies (default 7)' })
          .option('pack-cache-size', { type: 'string', describe: 'bound of the disk cache of restored packs (default 10G)' })
          .option('state-xattr', { type: 'string', choices: ['listed', 'hidden'], describe: 'list user.tsbak.state on cold files (default listed)' })
          .option('verbose', { alias: 'v', type: 'boolean' }),
      (a) => run(cmdMount, a),
    )
    .command('key', 'manage keys', (y) =>
      y
        .command(
          'add-writer <repo>',
          'create a write-only key file',
          (y2) =>
            repoOptions(y2)
              .positional('repo', { type: 'string', demandOption: true })
              .option('name', { type: 'string', demandOption: true })
              .option('out', { type: 'string', demandOption: true, describe: 'file to write the key to (mode 0600)' })
              .option('protect', { type: 'boolean', describe: 'protect the key file with a passphrase' }),
          (a) => run(cmdKeyAddWriter, a),
        )
        .command('list <repo>', 'list keys', (y2) => repoOptions(y2).positional('repo', { type: 'string', demandOption: true }).option('json', { type: 'boolean' }), (a) => run(cmdKeyList, a))
        .command(
          'add-password <repo>',
          'add another passphrase for the full key',
          (y2) => repoOptions(y2).positional('repo', { type: 'string', demandOption: true }).option('new-password-file', { type: 'string' }),
          (a) => run(cmdKeyAddPassword, a),
        )
        .demandCommand(1),
    )
    .demandCommand(1)
    .parseAsync();
}

export async function tsbakWriteMain(argv: string[]): Promise<void> {
  progName = 'tsbak-write';
  await base(argv, 'tsbak-write')
    .command('$0 <repo> <paths..>', 'back up paths into a repository', (y) => writeOptions(y), (a) => run(cmdWrite, a))
    .parseAsync();
}

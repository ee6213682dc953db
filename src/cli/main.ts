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
// code (the FUSE layer), which costs startup time and memory on every backup.
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
const cmdRepairIndex: Handler = async (a) => (await import('./repair.js')).cmdRepairIndex(a);
const cmdRepairSnapshots: Handler = async (a) => (await import('./repair.js')).cmdRepairSnapshots(a);
// parity across packs (issue 20)
const cmdParitySet: Handler = async (a) => (await import('./parity.js')).cmdParitySet(a);
const cmdParityShow: Handler = async (a) => (await import('./parity.js')).cmdParityShow(a);
const cmdRepairPacks: Handler = async (a) => (await import('./parity.js')).cmdRepairPacks(a);
const cmdRecover: Handler = async (a) => (await import('./repair.js')).cmdRecover(a);
const cmdForget: Handler = async (a) => (await import('./forget.js')).cmdForget(a);
const cmdPrune: Handler = async (a) => (await import('./prune.js')).cmdPrune(a);
const cmdUnlock: Handler = async (a) => (await import('./unlock.js')).cmdUnlock(a);
const cmdConfigSet: Handler = async (a) => (await import('./config.js')).cmdConfigSet(a);
const cmdConfigShow: Handler = async (a) => (await import('./config.js')).cmdConfigShow(a);
// find, diff, dump, stats, tag (issue 17)
const cmdFind: Handler = async (a) => (await import('./find.js')).cmdFind(a);
const cmdDiff: Handler = async (a) => (await import('./diff.js')).cmdDiff(a);
const cmdDump: Handler = async (a) => (await import('./dump.js')).cmdDump(a);
const cmdStats: Handler = async (a) => (await import('./stats.js')).cmdStats(a);
const cmdTag: Handler = async (a) => (await import('./tag.js')).cmdTag(a);
// s3 check, s3 policy (issue 19)
const cmdS3Check: Handler = async (a) => (await import('./s3.js')).cmdS3Check(a);
const cmdS3Policy: Handler = async (a) => (await import('./s3.js')).cmdS3Policy(a);
// watch (issue 21)
const cmdWatch: Handler = async (a) => (await import('./watch.js')).cmdWatch(a);

const repoOptions: Opts = {
  repo: { alias: 'r', type: 'string', describe: 'the repository (also TSBAK_REPOSITORY); the positional <repo> is then left out' },
  'password-file': { type: 'string', describe: 'read the repository passphrase from this file (or set TSBAK_PASSWORD_FILE, or TSBAK_PASSWORD to the passphrase)' },
  'key-file': { type: 'string', describe: 'use a write-only key file instead of the passphrase' },
  's3-endpoint': { type: 'string', describe: 'S3-compatible endpoint URL (also AWS_ENDPOINT_URL_S3)' },
  's3-region': { type: 'string', describe: 'S3 region (also AWS_REGION)' },
  's3-path-style': { type: 'boolean', describe: 'path-style S3 addressing' },
  's3-profile': { type: 'string', describe: 'AWS profile' },
  'sftp-key': { type: 'string', describe: 'sftp:// repositories: SSH private key file (also TSBAK_SFTP_KEY; default: ssh-agent, then ~/.ssh/id_*)' },
  'sftp-key-passphrase-file': { type: 'string', describe: "read the --sftp-key's passphrase from this file (also TSBAK_SFTP_KEY_PASSPHRASE_FILE)" },
  'sftp-known-hosts': { type: 'string', describe: 'sftp:// repositories: a known_hosts file checked beside ~/.ssh/known_hosts (also TSBAK_SFTP_KNOWN_HOSTS)' },
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
  verbose: { alias: 'v', type: 'boolean', describe: "list each new and modified file ('new PATH', 'modified PATH') on stdout" },
  'dry-run': { alias: 'n', type: 'boolean', describe: 'walk and read as a backup would, say what would be stored, and write nothing to the repository' },
  'files-from': { type: 'string', array: true, describe: "also back up the paths listed in this file, one a line ('#' comments and blank lines skipped)" },
  'files-from-verbatim': { type: 'string', array: true, describe: 'also back up the paths listed in this file, every line a path' },
  stdin: { type: 'boolean', describe: 'back up what is read from stdin as one file (see --stdin-filename)' },
  'stdin-filename': { type: 'string', describe: "the name of the file --stdin stores (default 'stdin'), at the snapshot's root" },
  parent: { type: 'string', describe: 'compare against this snapshot instead of the latest of the same host and paths' },
  signer: { type: 'string', describe: "full key: take the parent only among snapshots signed by this key ('master', a writer key's id or name)" },
  force: { type: 'boolean', describe: 'read every file again (no parent)' },
  'trust-writers': { type: 'boolean', describe: "dedup against other writer keys' data too (they could make this backup unrestorable; also TSBAK_TRUST_WRITERS=1)" },
  exclude: { alias: 'e', type: 'string', array: true, describe: 'exclude a gitignore-style pattern (repeatable)' },
  iexclude: { type: 'string', array: true, describe: 'like --exclude, case-insensitive' },
  'exclude-file': { type: 'string', array: true, describe: 'read exclude patterns from a file' },
  'iexclude-file': { type: 'string', array: true, describe: 'like --exclude-file, patterns matched case-insensitively' },
  'exclude-if-present': { type: 'string', array: true, describe: "skip directories holding this file (FILE[:CONTENT]: only if it starts with CONTENT; repeatable)" },
  'exclude-caches': { type: 'boolean', describe: 'skip directories holding a CACHEDIR.TAG' },
  'exclude-larger-than': { type: 'string', describe: 'skip files larger than SIZE (e.g. 2G)' },
  'one-file-system': { alias: 'x', type: 'boolean', describe: 'do not cross file system boundaries' },
  // S3 Object Lock (WORM): cli/write-lock.ts.
  'lock-until': { type: 'string', describe: 'S3 Object Lock: keep every object this snapshot needs undeletable until this date (2027-06-30 or RFC 3339); needs a bucket with Object Lock' },
  'lock-days': { type: 'string', describe: 'S3 Object Lock: as --lock-until, N days from now (by S3\'s clock)' },
  'lock-mode': { type: 'string', choices: ['governance', 'compliance'], describe: 'governance (default: an admin with s3:BypassGovernanceRetention can still undo a mistake) or compliance (no one can delete or shorten it before the date, not even the account root)' },
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
  tag: { type: 'string', array: true, describe: 'only snapshots with these tags: --tag a,b needs both, --tag a --tag b either' },
};

/** How much unused space prune leaves, and whether it repacks cold packs (prune, forget --prune). */
const pruneOptions: Opts = {
  'max-unused': { type: 'string', describe: "unused space tolerated in partly used packs before they are repacked: a percentage (default 5%) or 'unlimited'" },
  'repack-cold': { type: 'boolean', describe: 'also repack partly used GLACIER/DEEP_ARCHIVE packs when that pays back within 12 months (restores them first)' },
  'in-region': { type: 'boolean', describe: "prune runs in the bucket's AWS region (EC2): reading packs costs no download out of AWS ($0.09/GB otherwise counted)" },
};

/** A forget policy (forget, and cost's what-if). */
const keepOptions: Opts = {
  'keep-last': { type: 'number', describe: 'keep the N newest snapshots (-1: all)' },
  'keep-hourly': { type: 'number', describe: 'keep the newest snapshot of each of the N newest hours that have one' },
  'keep-daily': { type: 'number', describe: 'keep the newest snapshot of each of the N newest days (local time)' },
  'keep-weekly': { type: 'number', describe: 'keep the newest snapshot of each of the N newest ISO weeks' },
  'keep-monthly': { type: 'number', describe: 'keep the newest snapshot of each of the N newest months' },
  'keep-yearly': { type: 'number', describe: 'keep the newest snapshot of each of the N newest years' },
  'keep-within': { type: 'string', describe: "keep every snapshot less than this before the group's newest: e.g. 30d, 1y2m3d4h" },
  'keep-tag': { type: 'string', array: true, describe: 'keep snapshots with all of these comma-separated tags (repeatable: any)' },
};
/** --tag choosing snapshots (find, stats, tag, dump, diff): restic's form. */
const tagSelect: Opts = { tag: { type: 'string', array: true, describe: "only snapshots with these tags: 'a,b' needs both, a repeated --tag is an alternative" } };

/** find, diff, dump, stats, tag (issue 17): snapshots browsed and tagged without a mount. */
const browseCommands: Command[] = [
  {
    usage: 'find <repo> <pattern..>',
    describe: "which snapshots hold an entry matching a pattern (a glob on the name, or on the path when it holds '/'), with its type, size and mtime",
    options: {
      ...repoOptions,
      ...selectOptions,
      ...tagSelect,
      snapshot: { alias: 's', type: 'string', array: true, describe: 'search only this snapshot (id, prefix or latest; repeatable; default: every snapshot the filters select)' },
      'ignore-case': { alias: 'i', type: 'boolean', describe: 'match patterns case-insensitively' },
      ...json,
    },
    run: (a) => run(cmdFind, a),
  },
  {
    usage: 'diff <repo> <a> <b>',
    describe: 'what changed from snapshot a to b: + added, - removed, M content, U metadata only, T type; with totals',
    options: { ...repoOptions, ...selectOptions, ...tagSelect, ...json },
    run: (a) => run(cmdDiff, a),
  },
  {
    usage: 'dump <repo> <snapshot> <file>',
    describe: "print a file of a snapshot to stdout, or a directory as a tar or zip archive ('/' for the whole snapshot)",
    options: { ...repoOptions, ...selectOptions, ...tagSelect, archive: { alias: 'a', type: 'string', choices: ['tar', 'zip'], describe: 'archive format for a directory (default tar)' } },
    run: (a) => run(cmdDump, a),
  },
  {
    usage: 'stats <repo> [snapshot..]',
    describe: 'sizes of snapshots: what a restore writes, distinct file contents, or the blobs stored for them',
    options: {
      ...repoOptions,
      ...selectOptions,
      ...tagSelect,
      mode: { type: 'string', choices: ['restore-size', 'files-by-contents', 'raw-data'], describe: 'what to count (default restore-size)' },
      ...json,
    },
    run: (a) => run(cmdStats, a),
  },
  {
    usage: 'tag <repo> [snapshot..]',
    describe: 'add, remove or set tags (full key): each changed snapshot is replaced by a new one signed by the master (new id, same content)',
    options: {
      ...repoOptions,
      ...selectOptions,
      ...tagSelect,
      add: { type: 'string', array: true, describe: 'add these tags (a,b or repeated)' },
      remove: { type: 'string', array: true, describe: 'remove these tags' },
      set: { type: 'string', array: true, describe: 'replace the tags with these' },
      ...json,
    },
    run: (a) => run(cmdTag, a),
  },
];

/** s3 check, s3 policy (issue 19): the bucket's safety settings, and the IAM policy of each kind of credential. */
const s3Command: Command = {
  usage: 's3 <command>',
  describe: "the S3 bucket's safety: check its settings, print the IAM policy of a backup, admin or read credential",
  subcommands: [
    {
      usage: 'check <repo>',
      describe: 'check the bucket: public access (bucket and account), policy, ACLs, ownership, encryption, versioning and Object Lock, lifecycle rules, region, and what the credentials in use may do; one line each, OK/WARN/FAIL and what to do (exit 1 when any FAIL)',
      options: {
        's3-endpoint': repoOptions['s3-endpoint']!,
        's3-region': repoOptions['s3-region']!,
        's3-path-style': repoOptions['s3-path-style']!,
        's3-profile': repoOptions['s3-profile']!,
        mode: { type: 'string', choices: ['backup', 'admin', 'read'], describe: 'what the credentials in use are meant for: judge what they may do against it (a backup credential that may delete is a WARN)' },
        ...json,
      },
      run: (a) => run(cmdS3Check, a, false),
    },
    {
      usage: 'policy <repo>',
      describe: 'print the IAM policy document a credential needs on this bucket and prefix: backup (write new objects, no delete), admin (+ delete: forget, prune) or read (restore, mount); notes on stderr',
      options: {
        mode: { type: 'string', choices: ['backup', 'admin', 'read'], demand: true, describe: 'backup, admin or read' },
        'bucket-policy': { type: 'boolean', describe: 'print the bucket-policy form (statements with a Principal), for another account or an IAM user' },
        principal: { type: 'string', describe: 'with --bucket-policy: the ARN of the user or role (or an account id)' },
        ...json,
      },
      run: (a) => run(cmdS3Policy, a, false),
    },
  ],
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
  describe: 'tsbak: deduplicated, encrypted backups to S3 (Standard, Glacier, Deep Archive), a directory or an SFTP server',
  subcommands: [
    {
      usage: 'init <repo>',
      describe: 'create a repository',
      options: {
        ...repoOptions,
        compression: { type: 'number', describe: 'zstd level, 1 (fastest) to 22 (smallest); 0 = none', default: 3 },
        'data-class': { type: 'string', choices: ['STANDARD', 'STANDARD_IA', 'GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE'], describe: 'S3 storage class of data packs' },
        'tree-class': { type: 'string', choices: ['STANDARD', 'STANDARD_IA', 'GLACIER_IR'], describe: 'S3 storage class of tree packs (default: STANDARD; see README, "Storage classes")' },
        'index-class': { type: 'string', choices: ['STANDARD', 'STANDARD_IA', 'GLACIER_IR'], describe: 'S3 storage class of index files (default: as tree packs)' },
        'pack-size': { type: 'number', describe: 'target data pack size in MiB (default 16, 64 for cold classes)' },
        parity: { type: 'string', describe: 'parity across packs: K+M (M parity objects per K packs, any M lost rebuilt) or none (default: 10+2 on local and SFTP repositories, none on S3)' },
      },
      run: (a) => run(cmdInit, a),
    },
    { usage: 'backup <repo> [paths..]', describe: 'back up paths (same as tsbak-write)', options: writeOptions, run: (a) => run(cmdWrite, a) },
    {
      usage: 'watch <repo> [paths..]',
      describe: 'back up paths continuously: inotify says what changed, a snapshot re-reads only that once quiet; runs in the foreground (contrib/tsbak-watch.service)',
      options: {
        ...Object.fromEntries(Object.entries(writeOptions).filter(([k]) => !['json', 'dry-run', 'stdin', 'stdin-filename', 'files-from', 'files-from-verbatim'].includes(k))),
        interval: { type: 'string', describe: 'how often subtrees beyond the inotify watch limit are scanned (default 5m)' },
        'quiet-for': { type: 'string', describe: 'take a snapshot once nothing changed for this long (default 30s)' },
        'max-delay': { type: 'string', describe: 'take a snapshot at the latest this long after the first change (default 15m)' },
        ...keepOptions,
        'forget-every': { type: 'string', describe: 'with --keep-* and the full key: how often forget applies the policy to these snapshots (default 1h)' },
        'full-check-every': { type: 'string', describe: 'list every directory this often even when inotify reports nothing, for what it cannot see (mmap writes, network file systems); "off" for never (default 24h)' },
        'json-lines': { type: 'boolean', describe: 'print one JSON object a line per event (watching, snapshot, unchanged, watch_limit, clock_jump, full_check_due, forget, error)' },
      },
      run: (a) => run(cmdWatch, a),
    },
    { usage: 'snapshots <repo>', describe: 'list snapshots, with who signed each', options: { ...repoOptions, ...json, ...selectOptions, latest: { type: 'number', describe: 'only the N newest snapshots of each host and set of paths' } }, run: (a) => run(cmdSnapshots, a) },
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
        exclude: { alias: 'e', type: 'string', array: true, describe: 'leave out paths of the snapshot matching this pattern (as backup --exclude; repeatable)' },
        iexclude: { type: 'string', array: true, describe: 'like --exclude, case-insensitive' },
        'dry-run': { alias: 'n', type: 'boolean', describe: 'list what would be restored; write nothing' },
        verify: { type: 'boolean', describe: "after restoring, read every restored file back and compare it with the snapshot's data (exit 14 naming mismatches)" },
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
      describe: 'monthly storage cost by storage class and per host, bytes added per snapshot, a what-if of other classes, the cost and time of restoring a snapshot, and (--keep-*) what a forget policy would save',
      options: { ...repoOptions, ...selectOptions, days: { type: 'number', describe: 'days restored copies are kept (default 7)' }, region: { type: 'string', describe: 'price with this AWS region (default: the repository\'s: --s3-region, AWS_REGION; us-east-1 for a local repository)' }, ...keepOptions, ...json },
      run: (a) => run(cmdCost, a),
    },
    {
      usage: 'forget <repo> [snapshots..]',
      describe: 'remove snapshots by a retention policy (which are kept, by which rule, and which removed), or the ones named (ids or unique prefixes, readable or not); --prune then prunes',
      options: {
        ...repoOptions,
        ...keepOptions,
        host: { type: 'string', describe: 'only snapshots of this host' },
        path: { type: 'string', array: true, describe: 'only snapshots that backed up this path (repeatable: each of them)' },
        tag: { type: 'string', array: true, describe: 'only snapshots with all of these comma-separated tags (repeatable: any)' },
        'group-by': { type: 'string', describe: "apply the policy per group of host, paths and/or tags (default host,paths; '' for one group)" },
        prune: { type: 'boolean', describe: 'run prune afterwards' },
        ...pruneOptions,
        'dry-run': { alias: 'n', type: 'boolean', describe: 'only say what would be removed (and, with --prune, pruned)' },
        ...json,
      },
      run: (a) => run(cmdForget, a),
    },
    {
      usage: 'prune <repo>',
      describe: 'delete data no snapshot uses, repack partly used packs, compact the index, clean up after killed backups; prints savings and one-time costs',
      options: { ...repoOptions, ...pruneOptions, 'dry-run': { alias: 'n', type: 'boolean', describe: 'only print what would be done and what it would save and cost' }, ...json },
      run: (a) => run(cmdPrune, a),
    },
    {
      usage: 'check <repo>',
      describe: 'verify the repository',
      options: {
        ...repoOptions,
        'read-data': { type: 'boolean', describe: 'also read and verify every blob' },
        'read-data-subset': { type: 'string', describe: 'read and verify the blobs of some packs: n/t (group n of t, by pack id), x% or a size (2G) of packs chosen at random' },
        tier: { type: 'string', choices: ['Expedited', 'Standard', 'Bulk'], describe: 'restore tier for archived packs to read (default Bulk); they are requested in one batch, exit 15' },
        days: { type: 'number', describe: 'days S3 keeps restored copies (default 7)' },
        ...json,
      },
      run: (a) => run(cmdCheck, a),
    },
    {
      usage: 'unlock <repo>',
      describe: 'remove stale locks (of processes that are gone, or not refreshed for 30 minutes); --remove-all removes every lock',
      options: { ...repoOptions, 'remove-all': { type: 'boolean', describe: 'remove every lock, also those of processes at work (only when none is)' }, ...json },
      run: (a) => run(cmdUnlock, a),
    },
    ...browseCommands,
    s3Command,
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
        cold: { type: 'string', choices: ['fail', 'wait'], describe: 'reading cold data: fail with ENODATA (default) or wait for the restore' },
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
      usage: 'repair <command>',
      describe: 'rebuild what damage or a lost object took away, from the packs',
      subcommands: [
        {
          usage: 'index <repo>',
          describe: 'rebuild the index from the pack headers: list every pack no sound index file lists, then remove the index files replaced',
          options: {
            ...repoOptions,
            'dry-run': { alias: 'n', type: 'boolean', describe: 'read the pack headers and say what would be written and removed' },
            'read-data': { type: 'boolean', describe: 'read every pack to be listed whole and list only the blobs that open and match their id (always, when write-only keys exist: the new index is the master\'s, and backups dedup against it)' },
            warm: { type: 'boolean', describe: 'request the restores of cold packs (GLACIER, DEEP_ARCHIVE) whose headers must be read; run again once done' },
            tier: { type: 'string', choices: ['Expedited', 'Standard', 'Bulk'], describe: 'restore tier of --warm (default Bulk)' },
            days: { type: 'number', describe: 'days S3 keeps restored copies (default 7)' },
            ...json,
          },
          run: (a) => run(cmdRepairIndex, a),
        },
        {
          usage: 'snapshots <repo>',
          describe: 'rewrite the snapshots that name missing or damaged data without it (files dropped, unreadable directories emptied), signed by the master and tagged "repaired"',
          options: {
            ...repoOptions,
            forget: { type: 'boolean', describe: 'remove each original snapshot once its repaired one is written' },
            'read-data': { type: 'boolean', describe: 'also read every blob the snapshots name, to find damaged ones (not only missing ones)' },
            'dry-run': { alias: 'n', type: 'boolean', describe: 'only say which snapshots and paths are affected' },
            ...json,
          },
          run: (a) => run(cmdRepairSnapshots, a),
        },
        {
          usage: 'packs <repo>',
          describe: 'rebuild lost or damaged packs from their parity group, each checked against its id before it is stored',
          options: {
            ...repoOptions,
            'dry-run': { alias: 'n', type: 'boolean', describe: 'only say which packs are lost or damaged, whether they can be rebuilt, and which archived objects that needs restored at what cost; nothing is requested' },
            tier: { type: 'string', choices: ['Expedited', 'Standard', 'Bulk'], describe: 'restore tier for archived packs and parity the rebuilds need (default Standard); requested in one batch, exit 15' },
            days: { type: 'number', describe: 'days S3 keeps restored copies (default 7)' },
            region: { type: 'string', describe: "price restores with this AWS region (default: the repository's)" },
            ...json,
          },
          run: (a) => run(cmdRepairPacks, a),
        },
      ],
    },
    {
      usage: 'parity <command>',
      describe: 'parity across packs of new backups: show it, or set K+M or none (full key only)',
      subcommands: [
        { usage: 'show <repo>', describe: 'print the parity new packs get', options: { ...repoOptions, ...json }, run: (a) => run(cmdParityShow, a) },
        { usage: 'set <repo> <spec>', describe: 'set the parity of new packs: K+M (e.g. 10+2) or none (off works too); a new settings object signed by the master key', options: { ...repoOptions, ...json }, run: (a) => run(cmdParitySet, a) },
      ],
    },
    {
      usage: 'config <command>',
      describe: 'show the repository settings; change the storage classes of new tree packs and index files',
      subcommands: [
        { usage: 'show <repo>', describe: 'print the config and the storage classes new objects go to', options: { ...repoOptions, ...json }, run: (a) => run(cmdConfigShow, a) },
        {
          usage: 'set <repo> <settings..>',
          describe: 'tree-class=CLASS, index-class=CLASS (STANDARD, STANDARD_IA or GLACIER_IR): the class of tree packs and index files written from now on (full key only)',
          options: repoOptions,
          run: (a) => run(cmdConfigSet, a),
        },
      ],
    },
    {
      usage: 'recover <repo>',
      describe: 'with only the packs and the full key: rebuild every snapshot it can from the pack headers and restore each into DIR/<id>/',
      options: {
        ...repoOptions,
        target: { alias: 't', type: 'string', demand: true, describe: 'directory to restore into, one subdirectory per snapshot or root tree' },
        'no-owner': { type: 'boolean', describe: 'do not restore uid/gid' },
        'all-roots': { type: 'boolean', describe: 'also restore trees no snapshot names when there are snapshots (into DIR/tree-<id>/)' },
        ...json,
      },
      run: (a) => run(cmdRecover, a),
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
            protect: { type: 'boolean', describe: 'protect the key file with a passphrase (asked, or from --new-password-file)' },
            'new-password-file': { type: 'string', describe: "with --protect: read the key file's passphrase from this file" },
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

export const TSBAK_WRITE: Command = { usage: 'tsbak-write <repo> [paths..]', describe: 'back up paths into a repository', options: writeOptions, run: (a) => run(cmdWrite, a) };

/** The name errors are prefixed with: the command the user typed. */
let progName = 'tsbak';

async function run(handler: Handler, a: any, addon = true): Promise<never> {
  // Nothing left to wait for while the command still runs: a bug (a promise nobody will
  // settle). Fail loudly rather than exit as if the work were done.
  process.once('beforeExit', () => {
    process.exit(reportError(new Error('the command stopped before it finished (nothing left to wait for); nothing it had not written yet was saved'), !!(a?.json || a?.jsonLines)));
  });
  let code: number;
  try {
    if (addon) requireAddon();
    code = await handler(a);
  } catch (e) {
    code = reportError(e, !!(a?.json || a?.jsonLines));
  }
  return exitWhenWritten(code);
}

/**
 * Exits once stdout and stderr have handed the kernel all that was written to them: to a
 * pipe they are written asynchronously, and process.exit drops what is still queued (the
 * end of a dump's archive, a long --json document).
 */
async function exitWhenWritten(code: number): Promise<never> {
  for (const s of [process.stdout, process.stderr]) {
    // A write's callback comes after every write before it; a broken pipe calls it with the error.
    if (s.writable && !s.destroyed) await new Promise<void>((resolve) => s.write('', () => resolve()));
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
    r = parseCommandLine(name, program, argv, process.env, rawArgv(argv));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${name}: ${e.message}\nTry '${e.command} --help'.\n`);
    const flags = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv;
    if (flags.includes('--json') || flags.includes('--json-lines')) process.stderr.write(`${JSON.stringify({ error: { code: 'USAGE', exit: EXIT.USAGE, message: `${e.message}; try '${e.command} --help'` } })}\n`);
    return exitWhenWritten(EXIT.USAGE);
  }
  if (r.kind === 'help') {
    process.stdout.write(r.text);
    return exitWhenWritten(EXIT.OK);
  }
  if (r.kind === 'version') {
    process.stdout.write(`${programVersion()}\n`);
    return exitWhenWritten(EXIT.OK);
  }
  await r.command.run!({ ...r.args, rawValues: r.raw });
}

export async function tsbakMain(argv: string[]): Promise<void> {
  await main('tsbak', TSBAK, argv);
}

export async function tsbakWriteMain(argv: string[]): Promise<void> {
  await main('tsbak-write', TSBAK_WRITE, argv);
}

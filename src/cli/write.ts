// tsbak-write (and `tsbak backup`): script-friendly backup. No prompts unless a TTY and no
// secret given; --json prints one final object; exit 3 when some files were skipped.
import { readFileSync } from 'node:fs';
import { backup, type BackupProgress } from '../writer/backup.js';
import { backupStdin } from '../writer/stdin-backup.js';
import { TsbakError } from '../errors.js';
import { tagList } from './select.js';
import { buildExcluder, type ExcludeArgs } from '../writer/exclude-rules.js';
import { EXIT } from './exit-codes.js';
import { cleanUpOnSignals } from './interrupt.js';
import { openRepo, type RepoArgs } from './open-repo.js';
import { count, fmtBytes, fmtDuration, fmtUsd, ProgressLine } from './output.js';
import { parseSize } from './size.js';
import { parseLockArgs, WriteLock, type LockArgs } from './write-lock.js';

export interface WriteArgs extends RepoArgs, LockArgs, Omit<ExcludeArgs, 'excludeLargerThan'> {
  excludeLargerThan?: string;
  paths: string[];
  tag?: string[];
  host?: string;
  json?: boolean;
  parent?: string;
  signer?: string;
  force?: boolean;
  cacheDir?: string;
  noCache?: boolean;
  oneFileSystem?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  dryRun?: boolean;
  filesFrom?: string[];
  filesFromVerbatim?: string[];
  stdin?: boolean;
  stdinFilename?: string;
}

/** --files-from (verbatim: every line a path; else '#' comments and blank lines skipped, as restic). */
function readPathList(file: string, verbatim: boolean): string[] {
  let text: string;
  try {
    text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (e: any) {
    throw new TsbakError('USAGE', `cannot read ${verbatim ? '--files-from-verbatim' : '--files-from'} ${file}: ${e.code ?? e.message}`);
  }
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  // A path cannot be empty: an empty line, even verbatim, names nothing.
  return verbatim ? lines.filter((l) => l !== '') : lines.map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

export async function cmdWrite(a: WriteArgs): Promise<number> {
  const paths = [...a.paths, ...(a.filesFrom ?? []).flatMap((f) => readPathList(f, false)), ...(a.filesFromVerbatim ?? []).flatMap((f) => readPathList(f, true))];
  if (a.stdin && paths.length) throw new TsbakError('USAGE', '--stdin backs up stdin alone: name no paths (nor --files-from)');
  if (a.stdinFilename !== undefined && !a.stdin) throw new TsbakError('USAGE', '--stdin-filename names what --stdin stores: give --stdin too');
  if (!a.stdin && !paths.length) throw new TsbakError('USAGE', `nothing to back up: name paths${a.filesFrom || a.filesFromVerbatim ? ' (the --files-from lists are empty)' : ''}, or give --stdin`);
  const lockReq = parseLockArgs(a);
  const writeLock = lockReq ? new WriteLock(lockReq) : null;
  const repo = await openRepo(a, writeLock ? { wrapBackend: writeLock.wrap } : {});
  if (a.dryRun) repo.startDryRun();
  const objectLock = writeLock && !a.dryRun ? { lock: writeLock.snapshotLock, beforeSnapshot: writeLock.beforeSnapshot(repo) } : undefined;
  const progress = new ProgressLine();
  const start = Date.now();
  let lastBytes = 0;
  const interrupt = cleanUpOnSignals(repo, (sig) => `backup interrupted by ${sig}: no snapshot saved; its lock and temporary files were removed (run it again: the data indexed so far is reused)`);
  const onProgress = (p: BackupProgress) => {
    if (!progress.enabled) return;
    const secs = (Date.now() - start) / 1000;
    lastBytes = p.bytesRead;
    progress.update(`${count(p.files, 'file')}, ${count(p.dirs, 'dir')}, ${fmtBytes(p.bytesRead)} read, ${fmtBytes(lastBytes / Math.max(secs, 0.001))}/s, ${fmtDuration(secs * 1000)}  ${p.current}`);
  };
  // Stopped by a signal: its handler prints the line and exits; this failure is its doing.
  const stopped = async (e: unknown): Promise<never> => {
    if (interrupt.stopping) await interrupt.stopping;
    throw e;
  };
  const res = await (a.stdin
    ? backupStdin(repo, { name: a.stdinFilename ?? 'stdin', input: process.stdin, tags: tagList(a.tag), host: a.host, onProgress, objectLock })
    : backup(repo, {
    paths,
    objectLock,
    tags: tagList(a.tag),
    host: a.host,
    parent: a.force ? null : a.parent,
    parentSigner: a.signer,
    cacheDir: a.noCache ? null : a.cacheDir,
    exclude: await buildExcluder({ ...a, excludeLargerThan: a.excludeLargerThan !== undefined ? parseSize(a.excludeLargerThan, '--exclude-larger-than') : undefined }),
    oneFileSystem: a.oneFileSystem,
    onWarning: (p, m) => {
      // Once stopping, saves fail by design: the one line of the signal says it all.
      if (interrupt.stopping) return;
      progress.clear();
      process.stderr.write(`tsbak-write: ${p}: ${m}\n`);
    },
    onProgress,
    ...(a.verbose && !a.json
      ? {
          onChange: (p: string, change: 'new' | 'modified') => {
            progress.clear();
            process.stdout.write(`${change === 'new' ? 'new     ' : 'modified'} ${quotePath(p)}\n`);
          },
        }
      : {}),
  })).catch(stopped);
  interrupt.dispose();
  progress.clear();
  const s = res.info.stats;
  if (a.dryRun) {
    const dry = { dry_run: true, files: s.files, dirs: s.dirs, bytes_read: s.bytesRead, bytes_to_add: s.bytesAdded, blobs_to_add: s.blobsAdded, parent: res.info.parent ?? null, errors: res.errors };
    if (a.json) process.stdout.write(JSON.stringify(dry) + '\n');
    else if (!a.quiet)
      process.stdout.write(`dry run: would store ${s.files} file${s.files === 1 ? '' : 's'}, ${s.dirs} dir${s.dirs === 1 ? '' : 's'}, ${fmtBytes(s.bytesRead)} read, ${fmtBytes(s.bytesAdded)} new (before compression) in ${s.blobsAdded} blob${s.blobsAdded === 1 ? '' : 's'}; nothing was written\n`);
    return res.errors.length ? EXIT.PARTIAL : EXIT.OK;
  }
  const summary = {
    snapshot_id: res.snapshotId,
    short_id: res.snapshotId.slice(0, 8),
    parent: res.info.parent ?? null,
    files: s.files,
    dirs: s.dirs,
    dirs_unchanged: res.dirsUnchanged,
    bytes_read: s.bytesRead,
    bytes_added: s.bytesAdded,
    blobs_added: s.blobsAdded,
    duration_seconds: s.durationMs / 1000,
    cost_usd_per_month: res.info.costUsd ?? 0,
    errors: res.errors,
    changed_while_read: res.changed,
    lock: writeLock && !a.dryRun ? writeLock.json() : null,
  };
  if (a.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else if (!a.quiet)
    process.stdout.write(
      `snapshot ${summary.short_id} saved: ${count(s.files, 'file')}, ${count(s.dirs, 'dir')}, ${fmtBytes(s.bytesRead)} read, ${fmtBytes(s.bytesAdded)} added (${fmtUsd(res.info.costUsd ?? 0)}/month) in ${fmtDuration(s.durationMs)}` +
        (res.errors.length ? `; ${count(res.errors.length, 'entry', 'entries')} skipped (see above)` : '') +
        (writeLock ? `; locked (${writeLock.snapshotLock.mode}) until ${writeLock.snapshotLock.until}, ${writeLock.extended?.extended ?? 0} earlier objects' locks extended` : '') +
        '\n',
    );
  return res.errors.length ? EXIT.PARTIAL : EXIT.OK;
}

/** A path on one line: control characters escaped (JSON-style) so that a name holding a newline cannot fake a line. */
function quotePath(p: string): string {
  return /[\x00-\x1f\x7f]/.test(p) ? JSON.stringify(p).slice(1, -1) : p;
}

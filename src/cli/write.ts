// tsbak-write (and `tsbak backup`): script-friendly backup. No prompts unless a TTY and no
// secret given; --json prints one final object; exit 3 when some files were skipped.
import { backup } from '../writer/backup.js';
import { buildExcluder, type ExcludeArgs } from '../writer/exclude-rules.js';
import { EXIT } from './exit-codes.js';
import { openRepo, type RepoArgs } from './open-repo.js';
import { count, fmtBytes, fmtDuration, fmtUsd, ProgressLine } from './output.js';
import { parseSize } from './size.js';

export interface WriteArgs extends RepoArgs, Omit<ExcludeArgs, 'excludeLargerThan'> {
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
}

export async function cmdWrite(a: WriteArgs): Promise<number> {
  const repo = await openRepo(a);
  const progress = new ProgressLine();
  const start = Date.now();
  let lastBytes = 0;
  const res = await backup(repo, {
    paths: a.paths,
    tags: a.tag,
    host: a.host,
    parent: a.force ? null : a.parent,
    parentSigner: a.signer,
    cacheDir: a.noCache ? null : a.cacheDir,
    exclude: await buildExcluder({ ...a, excludeLargerThan: a.excludeLargerThan !== undefined ? parseSize(a.excludeLargerThan, '--exclude-larger-than') : undefined }),
    oneFileSystem: a.oneFileSystem,
    onWarning: (p, m) => {
      progress.clear();
      process.stderr.write(`tsbak-write: ${p}: ${m}\n`);
    },
    onProgress: (p) => {
      if (!progress.enabled) return;
      const secs = (Date.now() - start) / 1000;
      lastBytes = p.bytesRead;
      progress.update(`${count(p.files, 'file')}, ${count(p.dirs, 'dir')}, ${fmtBytes(p.bytesRead)} read, ${fmtBytes(lastBytes / Math.max(secs, 0.001))}/s, ${fmtDuration(secs * 1000)}  ${p.current}`);
    },
  });
  progress.clear();
  const s = res.info.stats;
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
  };
  if (a.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else if (!a.quiet)
    process.stdout.write(
      `snapshot ${summary.short_id} saved: ${count(s.files, 'file')}, ${count(s.dirs, 'dir')}, ${fmtBytes(s.bytesRead)} read, ${fmtBytes(s.bytesAdded)} added (${fmtUsd(res.info.costUsd ?? 0)}/month) in ${fmtDuration(s.durationMs)}` +
        (res.errors.length ? `; ${count(res.errors.length, 'entry', 'entries')} skipped (see above)` : '') +
        '\n',
    );
  return res.errors.length ? EXIT.PARTIAL : EXIT.OK;
}

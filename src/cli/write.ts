// tsbak-write (and `tsbak backup`): script-friendly backup. No prompts unless a TTY and no
// secret given; --json prints one final object; exit 3 when some files were skipped.
import { backup } from '../writer/backup.js';
import { buildExcluder, type ExcludeArgs } from '../writer/exclude-rules.js';
import { EXIT } from './exit-codes.js';
import { cleanUpOnSignals } from './interrupt.js';
import { openRepo, type RepoArgs } from './open-repo.js';
import { fmtBytes, fmtDuration, fmtUsd, ProgressLine } from './output.js';
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
  const interrupt = cleanUpOnSignals(repo, (sig) => `backup interrupted by ${sig}: no snapshot saved; its lock and temporary files were removed (run it again: the data indexed so far is reused)`);
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
      // Once stopping, saves fail by design: the one line of the signal says it all.
      if (interrupt.stopping) return;
      progress.clear();
      process.stderr.write(`tsbak-write: ${p}: ${m}\n`);
    },
    onProgress: (p) => {
      if (!progress.enabled) return;
      const secs = (Date.now() - start) / 1000;
      lastBytes = p.bytesRead;
      progress.update(`${p.files} files, ${p.dirs} dirs, ${fmtBytes(p.bytesRead)} read, ${fmtBytes(lastBytes / Math.max(secs, 0.001))}/s, ${fmtDuration(secs * 1000)}  ${p.current}`);
    },
  }).catch(async (e) => {
    // Stopped by a signal: its handler prints the line and exits; this failure is its doing.
    if (interrupt.stopping) await interrupt.stopping;
    throw e;
  });
  interrupt.dispose();
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
      `snapshot ${summary.short_id} saved: ${s.files} files, ${s.dirs} dirs, ${fmtBytes(s.bytesRead)} read, ${fmtBytes(s.bytesAdded)} added (${fmtUsd(res.info.costUsd ?? 0)}/month) in ${fmtDuration(s.durationMs)}` +
        (res.errors.length ? `; ${res.errors.length} entries skipped (see above)` : '') +
        '\n',
    );
  return res.errors.length ? EXIT.PARTIAL : EXIT.OK;
}

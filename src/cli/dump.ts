// `tsbak dump <repo> <snapshot> <path>`: a file's bytes, or a directory as a tar (default)
// or zip archive, on stdout, without a mount or a restore to disk.
import { once } from 'node:events';
import * as path from 'node:path';
import { TsbakError } from '../errors.js';
import { EXIT } from './exit-codes.js';
import { openRepo, type RepoArgs } from './open-repo.js';
import { findTaggedSnapshot, type TaggedSelectArgs } from './snapshot-args.js';
import { dumpTree, fileBytes, findEntry } from '../restore/dump.js';
import { TarWriter } from '../restore/tar-writer.js';
import { ZipWriter } from '../restore/zip-writer.js';
import type { ByteSink } from '../restore/archive.js';

export interface DumpArgs extends RepoArgs, TaggedSelectArgs {
  snapshot: string;
  file: string;
  archive?: 'tar' | 'zip';
}

/** stdout with its backpressure; a reader gone (EPIPE) fails the next write. */
function stdoutSink(): ByteSink {
  let failed: Error | null = null;
  process.stdout.on('error', (e) => (failed = e));
  return {
    async write(b: Buffer) {
      if (failed) throw new TsbakError('IO', `cannot write to the output (${(failed as NodeJS.ErrnoException).code ?? failed.message}); nothing more is written`);
      if (!process.stdout.write(b)) await Promise.race([once(process.stdout, 'drain'), once(process.stdout, 'error')]).catch(() => {});
    },
  };
}

export async function cmdDump(a: DumpArgs): Promise<number> {
  if (process.stdout.isTTY) throw new TsbakError('USAGE', 'dump writes bytes to stdout, which is a terminal: redirect it to a file or a pipe (tsbak dump ... > file)');
  const repo = await openRepo(a);
  const snap = await findTaggedSnapshot(repo, a.snapshot, a);
  await repo.loadIndex();
  repo.preferSigner(snap.signer?.id ?? null);
  const p = path.posix.resolve('/', a.file);
  const { node, tree } = await findEntry(repo, snap, p);
  const sink = stdoutSink();
  if (node && node.type === 'file') {
    for await (const b of fileBytes(repo, p, node)) await sink.write(b);
    return EXIT.OK;
  }
  if (node && node.type !== 'dir') throw new TsbakError('USAGE', `${p} is a ${node.type}: dump gives a file's content or a directory as an archive (dump its directory instead)`);
  const w = a.archive === 'zip' ? new ZipWriter(sink) : new TarWriter(sink);
  const r = await dumpTree(repo, tree, p, node, w, (at, m) => process.stderr.write(`tsbak: ${at}: ${m}\n`));
  return r.refused ? EXIT.CORRUPT : EXIT.OK;
}

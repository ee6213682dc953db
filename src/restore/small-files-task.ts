// The restore of a batch of small files, in one go: open each file's sealed blobs (decrypt,
// decompress, check against the id: native/restore.c, docs/FORMAT.md "Blob"), create the
// file, write it, and put its metadata on (natively too when that is only chmod and times).
// It runs in a worker of the blob-opening pool (OpenPool.run), so that the main thread only
// walks trees and reads packs, as restic's restorer hands whole packs to its workers; or
// inline when there are no workers. Everything in and out is plain data (structured clone).
import { closeSync, constants as C, openSync, rmSync, writeSync } from 'node:fs';
import { getSystemErrorMap } from 'node:util';
import type { TreeNode } from '../format/tree.js';
import { withShortPathSync } from '../platform/long-path.js';
import { openBlobs, writeFiles, type NewFile, type SealedBlobs } from '../platform/native.js';
import { applyMetaSync, type ApplyMetaOptions, type CreatedAs } from './apply-meta.js';

/** What a file's tree node has beyond mode, owner ids and times: sent only for the files that have it. */
export interface SmallFileExtra {
  user: string;
  group: string;
  xattrs?: Array<[string, Uint8Array]>;
}

/**
 * The files of a batch, in typed arrays (a structured clone of one object per file cost the
 * main thread more than the rest of the batch's work there).
 */
export interface SmallFilesJob extends SealedBlobs {
  /** Directories the files go in (absolute paths), and what entries created there start as (null: it existed, replace what is there). */
  dirs: Uint8Array[];
  created: Array<CreatedAs | null>;
  meta: ApplyMetaOptions;
  /** File i's name is names[nameEnds[i-1] .. nameEnds[i]), in directory dirOf[i]. */
  names: Uint8Array;
  nameEnds: Uint32Array;
  dirOf: Uint32Array;
  modes: Uint32Array;
  uids: Uint32Array;
  gids: Uint32Array;
  /** atime, mtime (ns) of each file */
  times: BigInt64Array;
  /** File i is made of blobs blobList[blobStart[i] .. blobStart[i+1]), in order. */
  blobStart: Uint32Array;
  blobList: Uint32Array;
  /** [file, what else it has]: xattrs; owner names when mapping owners by name. */
  extras: Array<[number, SmallFileExtra]>;
}

/**
 * Per file: the bytes written; 'blob' when one of its blobs did not open or match its id
 * (nothing was created: the caller restores it the long way, which reports the damage
 * and retries where it can); or the error that stopped it (the file is removed).
 */
export type SmallFileOutcome = number | 'blob' | { code: string; message: string };

export interface SmallFilesResult {
  outcomes: SmallFileOutcome[];
  /** Metadata that could not be put on: [file, message]. */
  warnings: Array<[number, string]>;
}

const buf = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.length));
const SLASH = Buffer.from('/');
/** Paths this long or longer go through withShortPathSync (long-path.ts), in TypeScript. */
const NATIVE_PATH_MAX = 4000;
/** The errno codes applyMeta takes as warnings for chmod and times (apply-meta.ts SOFT). */
const SOFT_CHMOD = new Set(['EPERM']);
const SOFT_TIMES = new Set(['EPERM', 'EACCES']);

export default function restoreSmallFiles(job: SmallFilesJob): SmallFilesResult {
  // Every blob, opened and checked at once, into one buffer.
  const outOffsets = new Uint32Array(job.rawLengths.length);
  let total = 0;
  for (let b = 0; b < outOffsets.length; b++) {
    outOffsets[b] = total;
    total += job.rawLengths[b]!;
  }
  const plain = Buffer.allocUnsafe(total);
  const ok = openBlobs(job, plain, outOffsets);

  const n = job.modes.length;
  const outcomes: SmallFileOutcome[] = new Array(n);
  const warnings: Array<[number, string]> = [];
  const dirs = job.dirs.map(buf);
  const names = buf(job.names);
  const extras = new Map(job.extras);
  // Files this run created, owned as recorded, without xattrs: created, written, chmod'ed and
  // timed by one native call for all of them. The rest the TypeScript way (applyMeta).
  const quick: NewFile[] = [];
  const quickNo: number[] = [];
  for (let f = 0; f < n; f++) {
    const blobs = job.blobList.subarray(job.blobStart[f]!, job.blobStart[f + 1]!);
    if (!blobs.every((b) => ok[b])) {
      outcomes[f] = 'blob';
      continue;
    }
    const segments = Array.from(blobs, (b) => [outOffsets[b]!, job.rawLengths[b]!] as [number, number]);
    const dir = job.dirOf[f]!;
    const name = names.subarray(f ? job.nameEnds[f - 1]! : 0, job.nameEnds[f]!);
    const path = Buffer.concat([dirs[dir]!, SLASH, name]);
    const created = job.created[dir]!;
    const extra = extras.get(f);
    const mode = job.modes[f]!;
    const atimeNs = job.times[2 * f]!;
    const mtimeNs = job.times[2 * f + 1]!;
    if (isQuick(job.uids[f]!, job.gids[f]!, extra, path, created, job.meta)) {
      quick.push({ path, replace: !created, mode, atimeNs, mtimeNs, segments });
      quickNo.push(f);
      continue;
    }
    const node = {
      name,
      type: 'file',
      mode,
      uid: job.uids[f]!,
      gid: job.gids[f]!,
      user: extra?.user ?? '',
      group: extra?.group ?? '',
      atimeNs,
      mtimeNs,
      xattrs: extra?.xattrs?.map(([k, v]) => [k, buf(v)] as [string, Buffer]),
    } as TreeNode;
    try {
      const wrote = withShortPathSync(path, (sp) => writeNew(sp, segments.map(([o, l]) => plain.subarray(o, o + l)), !created));
      for (const w of applyMetaSync(path, node, job.meta, created ?? undefined)) warnings.push([f, w.message]);
      outcomes[f] = wrote;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      outcomes[f] = { code: err.code ?? 'EIO', message: err.message ?? String(e) };
    }
  }
  if (quick.length) {
    writeFiles(quick, plain).forEach((r, i) => {
      const f = quickNo[i]!;
      const file = quick[i]!;
      const p = file.path.toString();
      if (r.errno) {
        const [code, message] = describe(r.errno, r.step === 'write' ? 'write' : r.step === 'close' ? 'close' : 'open', p);
        outcomes[f] = { code, message };
        return;
      }
      outcomes[f] = file.segments.reduce((n, [, l]) => n + l, 0);
      for (const [op, errno, soft] of [['chmod', r.chmodErrno, SOFT_CHMOD], ['times', r.timesErrno, SOFT_TIMES]] as const) {
        if (!errno) continue;
        const [code, message] = describe(errno, op === 'chmod' ? 'fchmod' : 'futimens', p);
        if (soft.has(code)) warnings.push([f, `${op}: ${message}`]);
        else outcomes[f] = { code, message };
      }
    });
  }
  return { outcomes, warnings };
}

/** An errno as Node words it: [code, "ENOSPC: no space left on device, write '/x'"]. */
function describe(errno: number, syscall: string, path: string): [string, string] {
  const [code, text] = getSystemErrorMap().get(-errno) ?? [`errno ${errno}`, 'unknown error'];
  return [code, `${code}: ${text}, ${syscall} '${path}'`];
}

/** Whether applyMeta would do no more than chmod and set the times (and the native call can take the path). */
function isQuick(uid: number, gid: number, extra: SmallFileExtra | undefined, path: Buffer, created: CreatedAs | null, meta: ApplyMetaOptions): boolean {
  if (!created || created.aclInherited || extra?.xattrs?.length || path.length >= NATIVE_PATH_MAX) return false;
  return !meta.owner || (!meta.mapByName && created.uid === uid && created.gid === gid);
}
/** Creates (or replaces) the file at `path` with the concatenation of `parts`; on failure removes it. */
function writeNew(path: Buffer, parts: Buffer[], replace: boolean): number {
  if (replace) rmSync(path, { force: true });
  const fd = openSync(path, C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW, 0o600);
  let pos = 0;
  try {
    for (const p of parts) {
      for (let done = 0; done < p.length; ) done += writeSync(fd, p, done, p.length - done, pos + done);
      pos += p.length;
    }
  } catch (e) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw e;
  }
  closeSync(fd);
  return pos;
}

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

/** What applyMeta needs of a file's tree node, and its name. */
export type SmallFileNode = Pick<TreeNode, 'name' | 'type' | 'mode' | 'uid' | 'gid' | 'user' | 'group' | 'atimeNs' | 'mtimeNs' | 'xattrs' | 'size'>;

export interface SmallFilesJob extends SealedBlobs {
  /** Directories the files go in (absolute paths), and what entries created there start as (null: it existed, replace what is there). */
  dirs: Uint8Array[];
  created: Array<CreatedAs | null>;
  meta: ApplyMetaOptions;
  /** Each file: its directory, node, and blobs (indices into the sealed blobs), in order. */
  files: Array<{ dir: number; node: SmallFileNode; blobs: number[] }>;
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
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
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

  const outcomes: SmallFileOutcome[] = new Array(job.files.length);
  const warnings: Array<[number, string]> = [];
  const dirs = job.dirs.map(buf);
  // Files this run created, owned as recorded, without xattrs: created, written, chmod'ed and
  // timed by one native call for all of them. The rest the TypeScript way (applyMeta).
  const quick: NewFile[] = [];
  const quickNo: number[] = [];
  for (let f = 0; f < job.files.length; f++) {
    const { dir, node: n, blobs } = job.files[f]!;
    if (!blobs.every((b) => ok[b])) {
      outcomes[f] = 'blob';
      continue;
    }
    const segments = blobs.map((b) => [outOffsets[b]!, job.rawLengths[b]!] as [number, number]);
    const path = Buffer.concat([dirs[dir]!, SLASH, buf(n.name)]);
    const created = job.created[dir]!;
    if (isQuick(n, path, created, job.meta)) {
      quick.push({ path, replace: !created, mode: n.mode, atimeNs: n.atimeNs, mtimeNs: n.mtimeNs, segments });
      quickNo.push(f);
      continue;
    }
    const node = { ...n, name: buf(n.name), xattrs: n.xattrs?.map(([k, v]) => [k, buf(v)] as [string, Buffer]) } as TreeNode;
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

/** Whether applyMeta would do no more than chmod and set the times (and the native call can take the path and times). */
function isQuick(n: SmallFileNode, path: Buffer, created: CreatedAs | null, meta: ApplyMetaOptions): boolean {
  if (!created || created.aclInherited || n.xattrs?.length || path.length >= NATIVE_PATH_MAX) return false;
  if (meta.owner && (meta.mapByName || created.uid !== n.uid || created.gid !== n.gid)) return false;
  return n.atimeNs >= INT64_MIN && n.atimeNs <= INT64_MAX && n.mtimeNs >= INT64_MIN && n.mtimeNs <= INT64_MAX;
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

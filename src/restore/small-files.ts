// The restore of a batch of small files, in one go, on libuv's thread pool: open every blob
// of the batch (decrypt, decompress, check against the id: native/blob.c, docs/FORMAT.md
// "Blob"), then create, write, chown, chmod and time the files through their descriptors
// (native/restore.c), as restic's restorer hands whole packs to its workers. The main thread only
// walks trees and reads packs. Files with more to their metadata (xattrs, a directory's
// default ACL) take applyMeta on this thread. Every file is made in its directory's handle
// (dir-fd.ts), created O_EXCL|O_NOFOLLOW: nothing already there is written through.
import { closeSync, constants as C, openSync, rmSync } from 'node:fs';
import { getSystemErrorMap } from 'node:util';
import type { TreeNode } from '../format/tree.js';
import { openBlobsAsync, type SealedBlobs } from '../platform/native/blob.js';
import { writeFilesAsync, type NewFile } from '../platform/native/restore.js';
import { gidOf, uidOf } from '../platform/users.js';
import { writeAllAtSync } from '../platform/write-all.js';
import type { BufferPool } from '../repo/buffer-pool.js';
import { applyMetaAtSync, SOFT, type ApplyMetaOptions, type CreatedAs } from './apply-meta.js';
import { entryAt, tidyMessage } from './dir-fd.js';

export interface SmallFile {
  node: TreeNode;
  /**
   * Its directory: path (for messages), its O_PATH handle `fd` and the handle's path `at`,
   * through which the file is made (dir-fd.ts), and what entries created there start as
   * (null: it existed, replace what is there).
   */
  dir: { path: Buffer; fd: number; at: Buffer; created: CreatedAs | null };
  /** Its blobs, in order: blobList[start .. end), indices into the batch's sealed blobs. */
  start: number;
  end: number;
}

const SLASH = Buffer.from('/');

/** A small file's path (built only where needed: most files never need it here). */
export function pathOf(f: SmallFile): Buffer {
  return Buffer.concat([f.dir.path, SLASH, f.node.name]);
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

/** Names this long or longer (beyond NAME_MAX: they fail) take the TypeScript path, which says why. */
const NATIVE_NAME_MAX = 256;

/** `buffers` gives the plaintext buffer, of `bufferSize` bytes at least (one size fits all batches: see RestoreRun.buffers). */
export async function restoreSmallFiles(files: SmallFile[], blobList: Uint32Array, blobs: SealedBlobs, meta: ApplyMetaOptions, buffers: BufferPool, bufferSize: number): Promise<SmallFilesResult> {
  // Every blob, opened and checked at once, into one buffer.
  const outOffsets = new Uint32Array(blobs.rawLengths.length);
  let total = 0;
  for (let b = 0; b < outOffsets.length; b++) {
    outOffsets[b] = total;
    total += blobs.rawLengths[b]!;
  }
  const ab = buffers.take(Math.max(total, bufferSize));
  try {
    return await openAndWrite(files, blobList, blobs, meta, Buffer.from(ab, 0, total), outOffsets);
  } finally {
    buffers.give(ab);
  }
}

async function openAndWrite(files: SmallFile[], blobList: Uint32Array, blobs: SealedBlobs, meta: ApplyMetaOptions, plain: Buffer, outOffsets: Uint32Array): Promise<SmallFilesResult> {
  const ok = await openBlobsAsync(blobs, plain, outOffsets);

  const outcomes: SmallFileOutcome[] = new Array(files.length);
  const warnings: Array<[number, string]> = [];
  const quick: NewFile[] = [];
  const quickNo: number[] = [];
  for (let f = 0; f < files.length; f++) {
    const file = files[f]!;
    const { node, start, end } = file;
    const created = file.dir.created;
    let whole = true;
    for (let k = start; k < end; k++) whole &&= ok[blobList[k]!] === 1;
    if (!whole) {
      outcomes[f] = 'blob';
      continue;
    }
    if (created && !created.aclInherited && !node.xattrs?.length && node.name.length < NATIVE_NAME_MAX) {
      let owner: NewFile['owner'];
      if (meta.owner) {
        const uid = meta.mapByName ? (uidOf(node.user) ?? node.uid) : node.uid;
        const gid = meta.mapByName ? (gidOf(node.group) ?? node.gid) : node.gid;
        if (created.uid !== uid || created.gid !== gid) owner = { uid, gid };
      }
      quick.push({ dir: file.dir.fd, name: node.name, replace: false, owner, mode: node.mode, atimeNs: node.atimeNs, mtimeNs: node.mtimeNs, start, end });
      quickNo.push(f);
      continue;
    }
    try {
      const at = entryAt(file.dir.at, node.name);
      const parts: Buffer[] = [];
      for (let k = start; k < end; k++) parts.push(plain.subarray(outOffsets[blobList[k]!]!, outOffsets[blobList[k]!]! + blobs.rawLengths[blobList[k]!]!));
      const wrote = writeNew(at, parts, !created);
      for (const w of applyMetaAtSync(at, node, meta, created ?? undefined)) warnings.push([f, tidyMessage(w.message)]);
      outcomes[f] = wrote;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      outcomes[f] = { code: err.code ?? 'EIO', message: tidyMessage(err.message ?? String(e)) };
    }
  }
  if (quick.length) {
    (await writeFilesAsync(quick, plain, { offsets: outOffsets, lengths: blobs.rawLengths, list: blobList })).forEach((r, i) => {
      const f = quickNo[i]!;
      if (!r.errno && !r.chownErrno && !r.chmodErrno && !r.timesErrno) {
        outcomes[f] = files[f]!.node.size;
        return;
      }
      const p = pathOf(files[f]!).toString();
      if (r.errno) {
        const [code, message] = describe(r.errno, r.step === 'write' ? 'write' : r.step === 'close' ? 'close' : 'open', p);
        outcomes[f] = { code, message };
        return;
      }
      outcomes[f] = files[f]!.node.size;
      for (const [op, errno, syscall] of [['chown', r.chownErrno, 'fchown'], ['chmod', r.chmodErrno, 'fchmod'], ['times', r.timesErrno, 'futimens']] as const) {
        if (!errno) continue;
        const [code, message] = describe(errno, syscall, p);
        if (SOFT[op].has(code)) warnings.push([f, `${op}: ${message}`]);
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

/** Creates (or replaces: what is there is removed, never followed) the file at `path` with the concatenation of `parts`; on failure removes it. */
function writeNew(path: Buffer, parts: Buffer[], replace: boolean): number {
  if (replace) rmSync(path, { force: true });
  const fd = openSync(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
  let pos = 0;
  try {
    for (const p of parts) pos += writeAllAtSync(fd, p, pos);
  } catch (e) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw e;
  }
  closeSync(fd);
  return pos;
}

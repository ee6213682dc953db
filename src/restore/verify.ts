// restore --verify: every restored file read back from the target and checked against the
// ids of its blobs (keyed hashes of their plaintext), chunk by chunk, so a file that differs
// from the snapshot in any byte, or in its size, is named.
import { promises as fsp } from 'node:fs';
import type { TreeNode } from '../format/tree.js';
import type { Repository, Snapshot } from '../repo/repository.js';
import { walkSelection, type Selection } from './selection.js';

export interface VerifyResult {
  files: number;
  bytes: number;
  mismatches: Array<{ path: string; message: string }>;
}

export async function verifyRestore(repo: Repository, snap: Snapshot, target: string, sel: Selection, onFile?: (bytes: number) => void): Promise<VerifyResult> {
  const res: VerifyResult = { files: 0, bytes: 0, mismatches: [] };
  const root = Buffer.from(target.replace(/\/+$/, '') || '/');
  await walkSelection(repo, snap, sel, async (snapPath, node) => {
    if (node.type !== 'file') return;
    const file = Buffer.concat([root, snapPath]);
    const problem = await verifyFile(repo, file, node);
    res.files++;
    res.bytes += node.size;
    if (problem) res.mismatches.push({ path: file.toString(), message: problem });
    onFile?.(node.size);
  });
  return res;
}

/** What is wrong with the file at `file` against `node`, or null. */
async function verifyFile(repo: Repository, file: Buffer, node: TreeNode): Promise<string | null> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (e: any) {
    return `cannot read it back: ${e.code ?? e.message}`;
  }
  try {
    const st = await fh.stat();
    if (st.size !== node.size) return `size ${st.size}, the snapshot says ${node.size}`;
    const extents = node.extents ?? (node.size > 0 ? [[0, node.size] as [number, number]] : []);
    const content = node.content ?? [];
    let e = 0;
    let pos = extents[0]?.[0] ?? 0;
    let left = extents[0]?.[1] ?? 0;
    for (let i = 0; i < content.length; i++) {
      const id = content[i]!;
      const len = repo.locate(id)?.rawLength;
      if (len === undefined) return `chunk ${i} (${id.toString('hex').slice(0, 16)}) is not in the index: cannot check it`;
      // A chunk fills the extents in order (restore.ts writeFile); it may span several.
      const buf = Buffer.alloc(len);
      let got = 0;
      while (got < len) {
        while (left === 0 && ++e < extents.length) [pos, left] = extents[e]!;
        if (left === 0) return `chunk ${i} runs past the file's extents`;
        const n = Math.min(left, len - got);
        const { bytesRead } = await fh.read(buf, got, n, pos);
        if (bytesRead !== n) return `shorter than the snapshot says (at byte ${pos})`;
        got += n;
        pos += n;
        left -= n;
      }
      if (!repo.blobId(buf).equals(id)) return `differs from the snapshot in chunk ${i} (bytes ${pos - len}..${pos})`;
    }
    return null;
  } finally {
    await fh.close();
  }
}

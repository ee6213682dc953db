// Where a file's chunks go. Chunks fill the data extents in order (one extent [0, size)
// when none are listed), each of its length in the index; an extent may end short of its
// length (a file that shrank while it was read is stored as read: the rest reads as zeros).
// A chunk that crosses its extent's end, or chunks left over when the extents are full,
// no honest writer makes: the tree was damaged or made by hand (a writer key can store any
// tree), and readers refuse the file rather than guess where its bytes go.
import type { TreeNode } from './tree.js';

export interface ChunkPlace<L> {
  /** Offset in the file. */
  at: number;
  id: Buffer;
  /** Plaintext length, from the index. */
  length: number;
  /** Where the index has it (what `locate` gave). */
  loc: L;
}

export type ChunkLayout<L> = { places: Array<ChunkPlace<L>> } | { problem: string } | { missing: Buffer };

/** `locate` finds a chunk in the index (its plaintext length at least), undefined for one no index file holds. */
export function chunkLayout<L extends { rawLength: number }>(node: TreeNode, locate: (id: Buffer) => L | undefined): ChunkLayout<L> {
  const content = node.content ?? [];
  const extents = node.extents ?? (node.size > 0 ? [[0, node.size] as [number, number]] : []);
  const places: Array<ChunkPlace<L>> = [];
  let ci = 0;
  for (const [off, len] of extents) {
    let p = off;
    while (p < off + len && ci < content.length) {
      const id = content[ci++]!;
      const loc = locate(id);
      if (loc === undefined) return { missing: id };
      const length = loc.rawLength;
      if (p + length > off + len) return { problem: 'its chunks reach beyond its extents' };
      places.push({ at: p, id, length, loc });
      p += length;
    }
  }
  // Empty chunks take no room (a file emptied between its stat and its read is stored so).
  for (; ci < content.length; ci++) {
    const loc = locate(content[ci]!);
    if (loc === undefined) return { missing: content[ci]! };
    if (loc.rawLength > 0) return { problem: 'it has more chunks than its extents hold' };
  }
  return { places };
}

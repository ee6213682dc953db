// Where each chunk of a file lies in the file. A file's chunks fill its data extents in
// order, each extent chunked separately (docs/FORMAT.md, "Sparse files"), so every chunk
// has one file offset; the gaps between chunks are holes and read as zeros.
import type { TreeNode } from '../format/tree.js';
import { CorruptError, TsbakError } from '../errors.js';
import { chunkLayout } from '../format/file-layout.js';

export class ChunkMap {
  constructor(
    readonly size: number,
    readonly ids: Buffer[],
    /** file offset of each chunk, ascending */
    readonly offsets: Float64Array,
    /** plaintext length of each chunk */
    readonly lengths: Float64Array,
  ) {}

  get count(): number {
    return this.ids.length;
  }

  /** Index of the last chunk that starts at or before `off`, or -1. */
  find(off: number): number {
    let lo = 0;
    let hi = this.offsets.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.offsets[mid]! <= off) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  /** End of chunk i in the file. */
  end(i: number): number {
    return this.offsets[i]! + this.lengths[i]!;
  }

  /** Where the data after chunk i starts again (the next chunk, or the end of the file). */
  nextStart(i: number): number {
    return i + 1 < this.offsets.length ? this.offsets[i + 1]! : this.size;
  }
}

/**
 * Builds the map from the index's plaintext lengths. Throws NOT_FOUND if a chunk is not in
 * the index, CORRUPT for a layout no honest writer makes (format/file-layout.ts).
 */
export function buildChunkMap(node: TreeNode, rawLength: (id: Buffer) => number | undefined): ChunkMap {
  const layout = chunkLayout(node, (id) => {
    const n = rawLength(id);
    return n === undefined ? undefined : { rawLength: n };
  });
  if ('missing' in layout) throw new TsbakError('NOT_FOUND', `chunk ${layout.missing.toString('hex').slice(0, 16)} is not in the index (repository damaged or snapshot incomplete); run 'tsbak check'`);
  if ('problem' in layout) throw new CorruptError(`file ${JSON.stringify(node.name.toString())}`, `${layout.problem}; the snapshot was damaged or made to attack`);
  const { places } = layout;
  const offsets = new Float64Array(places.length);
  const lengths = new Float64Array(places.length);
  places.forEach((p, i) => {
    offsets[i] = p.at;
    lengths[i] = p.length;
  });
  return new ChunkMap(node.size, places.map((p) => p.id), offsets, lengths);
}

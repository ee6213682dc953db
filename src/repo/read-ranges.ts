// Reads of many blobs of one pack planned as few ranged reads: blobs no further apart than
// `gap` are read with the bytes between them, in reads of at most `span` bytes (a blob
// longer than that is a read of its own). The gap is worth reading when it costs less than
// another request: on a network a round trip is worth megabytes, on a local disk far less.
import type { BlobLocation } from './blob-index.js';

export interface PlannedRead<T> {
  offset: number;
  length: number;
  /** The items it covers, by offset. */
  items: T[];
}

/** Items of one pack (in any order) as ranged reads, by offset. */
export function coalesce<T>(items: T[], locOf: (item: T) => Pick<BlobLocation, 'offset' | 'length'>, gap: number, span: number): Array<PlannedRead<T>> {
  const sorted = [...items].sort((a, b) => locOf(a).offset - locOf(b).offset);
  const out: Array<PlannedRead<T>> = [];
  let cur: PlannedRead<T> | null = null;
  let end = 0;
  for (const it of sorted) {
    const l = locOf(it);
    if (cur && l.offset <= end + gap && Math.max(end, l.offset + l.length) - cur.offset <= span) {
      cur.items.push(it);
      end = Math.max(end, l.offset + l.length);
      cur.length = end - cur.offset;
      continue;
    }
    cur = { offset: l.offset, length: l.length, items: [it] };
    end = l.offset + l.length;
    out.push(cur);
  }
  return out;
}

// A file of a snapshot as a stream of its bytes, in order: holes as zeros, chunks read a
// few ahead (bounded in count and bytes), so memory stays bounded whatever the file's size.
import type { TreeNode } from '../format/tree.js';
import type { Repository } from '../repo/repository.js';
import { CorruptError } from '../errors.js';
import { chunkLayout, type ChunkPlace } from '../format/file-layout.js';

/** Chunks read ahead of the one being written, and the most bytes they may hold. */
const AHEAD = 8;
const AHEAD_BYTES = 32 << 20;
const ZEROS = Buffer.alloc(1 << 20);

function* zeros(n: number): Generator<Buffer> {
  for (; n > 0; n -= ZEROS.length) yield n >= ZEROS.length ? ZEROS : ZEROS.subarray(0, n);
}

/** The file's chunk places (format/file-layout.ts); a layout no honest writer makes, or a chunk in no index file, is damage. */
function layout(repo: Repository, what: string, n: TreeNode): Array<ChunkPlace<unknown>> {
  const l = chunkLayout(n, (id) => repo.locate(id));
  if ('missing' in l) throw new CorruptError(`${what}`, `chunk ${l.missing.toString('hex').slice(0, 16)} is in no index file`);
  if ('problem' in l) throw new CorruptError(`${what}`, l.problem);
  return l.places;
}

/**
 * The file's bytes, exactly n.size of them. `what` names it in errors. Its layout is checked
 * here, before any byte is given (an archive then holds no header of a file it cannot finish).
 */
export function fileBytes(repo: Repository, what: string, n: TreeNode, preloaded?: Map<string, Buffer>): AsyncGenerator<Buffer> {
  return stream(repo, what, n, layout(repo, what, n), preloaded);
}

async function* stream(repo: Repository, what: string, n: TreeNode, plan: Array<ChunkPlace<unknown>>, preloaded?: Map<string, Buffer>): AsyncGenerator<Buffer> {
  const started: Array<Promise<Buffer>> = [];
  let next = 0;
  let aheadBytes = 0;
  const fill = () => {
    while (next < plan.length && started.length < AHEAD && (started.length === 0 || aheadBytes + plan[next]!.length <= AHEAD_BYTES)) {
      const id = plan[next]!.id;
      const pre = preloaded?.get(id.toString('hex'));
      const p = pre ? Promise.resolve(pre) : repo.loadBlob(id, undefined, { cache: false });
      p.catch(() => {}); // awaited in order below; this only keeps an early failure from being "unhandled"
      started.push(p);
      aheadBytes += plan[next]!.length;
      next++;
    }
  };
  let pos = 0;
  for (const c of plan) {
    fill();
    const bytes = await started.shift()!;
    aheadBytes -= c.length;
    if (bytes.length !== c.length) throw new CorruptError(`${what}`, `chunk ${c.id.toString('hex').slice(0, 16)} has ${bytes.length} bytes, the index says ${c.length}`);
    if (c.at > pos) yield* zeros(c.at - pos);
    yield bytes;
    pos = c.at + c.length;
  }
  if (n.size > pos) yield* zeros(n.size - pos);
}

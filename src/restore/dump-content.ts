// A file of a snapshot as a stream of its bytes, in order: holes as zeros, chunks read a
// few ahead (bounded in count and bytes), so memory stays bounded whatever the file's size.
import type { TreeNode } from '../format/tree.js';
import type { Repository } from '../repo/repository.js';
import { CorruptError } from '../errors.js';

/** Chunks read ahead of the one being written, and the most bytes they may hold. */
const AHEAD = 8;
const AHEAD_BYTES = 32 << 20;
const ZEROS = Buffer.alloc(1 << 20);

function* zeros(n: number): Generator<Buffer> {
  for (; n > 0; n -= ZEROS.length) yield n >= ZEROS.length ? ZEROS : ZEROS.subarray(0, n);
}

/**
 * Where each chunk goes: chunks fill the extents in order (one extent [0, size) when none
 * are listed), each of the length the index gives. A chunk that would cross its extent's
 * end, or chunks left over, are damage: the stream must be exactly `size` bytes.
 */
function layout(repo: Repository, what: string, n: TreeNode): Array<{ at: number; id: Buffer; length: number }> {
  const content = n.content ?? [];
  const extents = n.extents ?? (n.size > 0 ? [[0, n.size] as [number, number]] : []);
  const plan: Array<{ at: number; id: Buffer; length: number }> = [];
  let ci = 0;
  for (const [off, len] of extents) {
    let p = off;
    while (p < off + len && ci < content.length) {
      const id = content[ci++]!;
      const loc = repo.locate(id);
      if (!loc) throw new CorruptError(`${what}`, `chunk ${id.toString('hex').slice(0, 16)} is in no index file`);
      if (p + loc.rawLength > off + len) throw new CorruptError(`${what}`, 'its chunks reach beyond its extents');
      plan.push({ at: p, id, length: loc.rawLength });
      p += loc.rawLength;
    }
  }
  if (ci < content.length) throw new CorruptError(`${what}`, 'it has more chunks than its extents hold');
  return plan;
}

/**
 * The file's bytes, exactly n.size of them. `what` names it in errors. Its layout is checked
 * here, before any byte is given (an archive then holds no header of a file it cannot finish).
 */
export function fileBytes(repo: Repository, what: string, n: TreeNode, preloaded?: Map<string, Buffer>): AsyncGenerator<Buffer> {
  return stream(repo, what, n, layout(repo, what, n), preloaded);
}

async function* stream(repo: Repository, what: string, n: TreeNode, plan: Array<{ at: number; id: Buffer; length: number }>, preloaded?: Map<string, Buffer>): AsyncGenerator<Buffer> {
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

// The pieces of read-ahead that need no repository: TreePrefetch (tsbak ls) keeps the walk's
// order, loads each tree once and stays within its bounds; BlobIndex.inPack lists a pack's
// blobs by offset.
import t from 'tap';
import { createHash } from 'node:crypto';
import type { Tree, TreeNode } from '../src/format/tree.js';
import { BlobIndex, type PackRef } from '../src/repo/blob-index.js';
import { TreePrefetch } from '../src/repo/tree-prefetch.js';

const idOf = (s: string) => createHash('sha256').update(s).digest();

// A tree of directories: every name below depth 3 has 5 subdirectories.
function children(name: string): string[] {
  return name.split('/').length > 3 ? [] : Array.from({ length: 5 }, (_, i) => `${name}/${i}`);
}
const names = new Map<string, string>();
const treeOf = (name: string): Tree => ({
  nodes: children(name).map((c) => {
    names.set(idOf(c).toString('hex'), c);
    return { name: Buffer.from(c.slice(c.lastIndexOf('/') + 1)), type: 'dir', subtree: idOf(c) } as TreeNode;
  }),
});

t.test('TreePrefetch: walk order, each tree loaded once, bounded', async (t) => {
  names.set(idOf('r').toString('hex'), 'r');
  let running = 0;
  let most = 0;
  const loads = new Map<string, number>();
  const release: Array<() => void> = [];
  const load = async (id: Buffer): Promise<Tree> => {
    const name = names.get(id.toString('hex'))!;
    loads.set(name, (loads.get(name) ?? 0) + 1);
    running++;
    most = Math.max(most, running);
    // Finish in an order of our choosing: loads wait until the walk below lets them go.
    await new Promise<void>((r) => release.push(r));
    running--;
    return treeOf(name);
  };
  const pump = setInterval(() => release.splice(0).forEach((r) => r()), 1);
  const pre = new TreePrefetch(load, { concurrency: 4, window: 8 });
  const seen: string[] = [];
  const walk = async (name: string) => {
    const tree = await pre.get(idOf(name));
    seen.push(name);
    for (const n of tree.nodes) await walk(names.get(n.subtree!.toString('hex'))!);
  };
  await walk('r');
  clearInterval(pump);
  const expected: string[] = [];
  const dfs = (n: string) => {
    expected.push(n);
    children(n).forEach(dfs);
  };
  dfs('r');
  t.same(seen, expected, 'depth-first order, as without read-ahead');
  t.ok(most > 1, `loads overlapped (${most} at once)`);
  // The window bounds loads started ahead; the walk's own load may come on top.
  t.ok(most <= 4 + 1, `at most the concurrency at once (${most})`);
  t.same([...loads.values()].filter((n) => n !== 1), [], 'every tree loaded once');
  t.equal(loads.size, expected.length);
});

t.test('BlobIndex.inPack: the blobs of one pack in a byte range, in pack order', async (t) => {
  const idx = new BlobIndex();
  const pack = (n: number): PackRef => ({ id: idOf(`pack${n}`), kind: 'data', sealedKey: Buffer.alloc(8), indexFile: 'i', signer: 'master', verified: true });
  const a = pack(1);
  const b = pack(2);
  const na = idx.addPack(a);
  const nb = idx.addPack(b);
  // Added out of order, interleaved between packs.
  for (const off of [3000, 0, 1000, 5000, 2000]) {
    idx.add(idOf(`a${off}`), na, off, 900, 1000);
    idx.add(idOf(`b${off}`), nb, off, 900, 1000);
  }
  const hex = (ids: Buffer[]) => ids.map((i) => i.toString('hex'));
  t.same(hex(idx.inPack(a, 1000, 3001)), hex([idOf('a1000'), idOf('a2000'), idOf('a3000')]));
  t.same(hex(idx.inPack(b, 0, 1e9)), hex([0, 1000, 2000, 3000, 5000].map((o) => idOf(`b${o}`))));
  t.same(idx.inPack(a, 6000, 9000), [], 'past the end');
  // The order is rebuilt when the index grows.
  idx.add(idOf('a4000'), na, 4000, 900, 1000);
  t.same(hex(idx.inPack(a, 3500, 5000)), hex([idOf('a4000')]));
});

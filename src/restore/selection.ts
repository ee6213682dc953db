// The entries a restore with these --include and --exclude options writes, walked without
// writing anything: what `restore --dry-run` lists and what `restore --verify` reads back.
import * as path from 'node:path';
import { nameProblem, type Tree, type TreeNode } from '../format/tree.js';
import type { Repository, Snapshot } from '../repo/repository.js';
import { Selector, snapshotPath, type RestoreOptions } from './restore.js';

export type Selection = Pick<RestoreOptions, 'include' | 'exclude'>;

/**
 * Calls `visit` for each entry restore would create (directories before what is in them),
 * with its path inside the snapshot (raw name bytes). Entries a restore refuses (names that
 * are not one path component) are not visited.
 */
export async function walkSelection(repo: Repository, snap: Snapshot, sel: Selection, visit: (snapPath: Buffer, node: TreeNode) => Promise<void> | void): Promise<void> {
  const selector = new Selector(sel.include);
  const walk = async (tree: Tree, dir: string, all: boolean): Promise<void> => {
    for (const node of tree.nodes) {
      if (nameProblem(node.name) !== null) continue;
      const child = path.posix.join(dir, node.name.toString('latin1'));
      const s = all ? 'all' : selector.test(child);
      if (s === 'no' || (s === 'path' && node.type !== 'dir')) continue;
      const p = snapshotPath(dir, node.name);
      if (sel.exclude?.(p, node.type === 'dir')) continue;
      await visit(p, node);
      if (node.type === 'dir' && node.subtree) await walk(await repo.loadTree(node.subtree), child, s === 'all');
    }
  };
  await walk(await repo.loadTree(Buffer.from(snap.info.tree, 'hex')), '/', false);
}

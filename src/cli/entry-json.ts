// A tree entry as find, diff and the tables show it.
import type { TreeNode } from '../format/tree.js';
import { escapeName, tableTime } from './raw-name.js';
import { lsEntryJson } from './json-out.js';
import { count } from './output.js';

/** An entry in JSON: the same fields as `ls --json` gives it (json-out.ts). */
export const entryJson = lsEntryJson;

/** The columns of an `ls -l` line after the mode: owner, group, size, mtime, path (-> target). */
export function entryColumns(path: Buffer, n: TreeNode): string[] {
  return [String(n.user || n.uid), String(n.group || n.gid), String(n.size), tableTime(n.mtimeNs), escapeName(path) + (n.type === 'symlink' && n.target ? ` -> ${escapeName(n.target)}` : '')];
}

/** "1 snapshot", "2 snapshots" (output.ts). */
export const plural = count;

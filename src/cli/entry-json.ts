// A tree entry as find, diff and the tables show it.
import type { TreeNode } from '../format/tree.js';
import { escapeName, isoNs, jsonName, tableTime } from './raw-name.js';

/** An entry in JSON: snake_case, raw names and targets lossless (raw-name.ts). */
export function entryJson(path: Buffer, n: TreeNode): Record<string, unknown> {
  return {
    ...jsonName('path', path),
    ...jsonName('name', n.name),
    type: n.type,
    mode: n.mode,
    size: n.size,
    uid: n.uid,
    gid: n.gid,
    user: n.user,
    group: n.group,
    mtime: isoNs(n.mtimeNs),
    mtime_ns: n.mtimeNs.toString(),
    ...(n.type === 'symlink' && n.target ? jsonName('target', n.target) : {}),
  };
}

/** The columns of an `ls -l` line after the mode: owner, group, size, mtime, path (-> target). */
export function entryColumns(path: Buffer, n: TreeNode): string[] {
  return [String(n.user || n.uid), String(n.group || n.gid), String(n.size), tableTime(n.mtimeNs), escapeName(path) + (n.type === 'symlink' && n.target ? ` -> ${escapeName(n.target)}` : '')];
}

export const plural = (k: number, one: string, many = `${one}s`): string => `${k} ${k === 1 ? one : many}`;

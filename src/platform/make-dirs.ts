// mkdir -p without node's `recursive: true`: node 20's recursive mkdir spins forever at 100%
// CPU where mkdir says ENOENT while the parent exists (/proc/x: the kernel refuses new
// entries there). Here each level is made once, from the top, and a refusal is an error.
import { mkdirSync, statSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';

function refused(dir: string, code: string): Error {
  const e = new Error(`cannot create directory ${dir}: its file system refuses new directories there (${code}); choose a directory elsewhere`) as NodeJS.ErrnoException;
  e.code = code;
  e.syscall = 'mkdir';
  e.path = dir;
  return e;
}

/** The directories `dir` needs made, from the top down (stat is cheap: done synchronously). */
function missingDirs(dir: string): string[] {
  const missing: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    try {
      if (statSync(d).isDirectory()) break;
      throw Object.assign(new Error(`cannot create directory ${dir}: ${d} is not a directory`), { code: 'ENOTDIR', syscall: 'mkdir', path: d });
    } catch (e: any) {
      if (e.code !== 'ENOENT' || d === path.dirname(d)) throw e;
      missing.push(d);
    }
  }
  return missing.reverse();
}

/** Whether a mkdir that failed with `e` found the directory made by someone else meanwhile. */
function madeMeanwhile(d: string, e: NodeJS.ErrnoException): boolean {
  try {
    return e.code === 'EEXIST' && statSync(d).isDirectory();
  } catch {
    return false;
  }
}

/** Creates `dir` and its missing parents (mode for those it creates); a directory already there is fine. */
export async function makeDirs(dir: string, mode?: number): Promise<void> {
  for (const d of missingDirs(dir)) {
    try {
      await fsp.mkdir(d, mode);
    } catch (e: any) {
      if (madeMeanwhile(d, e)) continue;
      throw e.code === 'ENOENT' || e.code === 'EEXIST' ? refused(d, e.code) : e;
    }
  }
}

/** makeDirs, synchronously. */
export function makeDirsSync(dir: string, mode?: number): void {
  for (const d of missingDirs(dir)) {
    try {
      mkdirSync(d, mode);
    } catch (e: any) {
      if (madeMeanwhile(d, e)) continue;
      throw e.code === 'ENOENT' || e.code === 'EEXIST' ? refused(d, e.code) : e;
    }
  }
}

// --read-data-subset: "n/t", "x%" or a size ("2G"), as restic takes it.
import { TsbakError } from '../errors.js';
import type { DataSubset } from '../repo/repository.js';
import { parseSize } from './size.js';

export function parseDataSubset(s: string): DataSubset {
  const what = '--read-data-subset';
  const g = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(s);
  if (g) {
    const group = Number(g[1]);
    const of = Number(g[2]);
    if (of < 1 || group < 1 || group > of || of > 0xffffffff) throw new TsbakError('USAGE', `${what} ${s}: n/t needs 1 <= n <= t (e.g. 1/5: the first fifth of the packs)`);
    return { group, of };
  }
  const p = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*%\s*$/.exec(s);
  if (p) {
    const percent = Number(p[1]);
    if (!(percent > 0 && percent <= 100)) throw new TsbakError('USAGE', `${what} ${s}: a percentage between 0 and 100, e.g. 10%`);
    return { percent };
  }
  let bytes: number;
  try {
    bytes = parseSize(s, what);
  } catch {
    throw new TsbakError('USAGE', `${what} ${s}: give n/t (1/5), a percentage (10%) or a size (2G)`);
  }
  if (bytes <= 0) throw new TsbakError('USAGE', `${what} ${s}: the size must be more than 0`);
  return { bytes };
}

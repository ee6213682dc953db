// Sizes given on the command line and as mount options.
import { TsbakError } from '../errors.js';

const UNITS: Record<string, number> = { '': 0, k: 1, m: 2, g: 3, t: 4 };

/**
 * "123" bytes, "500k", "10M", "1.5G", ".5T", "4KiB", "3mb" (powers of 1024) -> bytes,
 * rounded down. `what` names the option in the error.
 */
export function parseSize(s: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kmgt]?)i?b?\s*$/i.exec(String(s));
  if (!m) throw new TsbakError('USAGE', `${what}: "${s}" is not a size: a number with an optional k, M, G or T suffix, e.g. 500k or 1.5G`);
  return Math.floor(Number(m[1]) * 1024 ** UNITS[m[2]!.toLowerCase()]!);
}

// FastCDC's gear-hash loop in C (native/chunk.c).
import { addon } from './addon.js';

interface Chunk {
  gearScan(buf: Uint8Array, from: number, to: number, mask: number, gear: Int32Array, state: Int32Array): number;
}

/**
 * FastCDC's gear hash rolled over buf[from, to) from state[0] (native/chunk.c): the index of
 * the first byte after which (h & mask) == 0, or -1 with the hash left in state[0].
 */
export function gearScan(buf: Uint8Array, from: number, to: number, mask: number, gear: Int32Array, state: Int32Array): number {
  return addon<Chunk>().gearScan(buf, from, to, mask, gear, state);
}

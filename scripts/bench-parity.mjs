#!/usr/bin/env node
// Reed-Solomon encode and decode speed of parity across packs (src/repo/parity-code.ts over
// native/parity.c), per multiply kernel this CPU has (scalar, ssse3, avx2, gfni, gfni512):
// K packs of SIZE MiB folded into M parity stripes, then M data packs rebuilt from the rest.
// Usage: node scripts/bench-parity.mjs [K] [M] [SIZE_MiB] [ROUNDS] [KERNEL...]
// (default 10 2 16 3, every kernel). MB/s counts data bytes (K x SIZE) per second; the
// best round of each is printed, then one line per kernel.
import { randomBytes } from 'node:crypto';
import { ParityEncoder, rebuild } from '../dist/src/repo/parity-code.js';
import { gfKernel, gfKernels } from '../dist/src/platform/native/parity.js';

const [k, m, mib, rounds] = [10, 2, 16, 3].map((d, i) => Number(process.argv[2 + i] ?? d));
const kernels = process.argv.length > 6 ? process.argv.slice(6) : gfKernels();
const size = mib << 20;
const data = Array.from({ length: k }, () => randomBytes(size));
const mbps = (bytes, ms) => (bytes / 1e6 / (ms / 1000)).toFixed(0);
const best = gfKernel();
console.log(`${k}+${m}, ${mib} MiB packs; kernels ${gfKernels().join(', ')} (default ${best})`);
for (const kernel of kernels) {
  gfKernel(kernel);
  let encBest = Infinity, decBest = Infinity;
  for (let r = 0; r < rounds; r++) {
    let t0 = performance.now();
    const enc = new ParityEncoder(m, size);
    for (let i = 0; i < k; i++) await enc.fold(i, data[i]);
    encBest = Math.min(encBest, performance.now() - t0);
    const have = new Map();
    for (let i = m; i < k; i++) have.set(i, data[i]);
    for (let j = 0; j < m; j++) have.set(k + j, enc.stripe(j));
    const want = Array.from({ length: m }, (_, i) => i);
    t0 = performance.now();
    const got = await rebuild(k, m, size, have, want);
    decBest = Math.min(decBest, performance.now() - t0);
    for (const w of want) if (!got.get(w).equals(data[w])) throw new Error(`${kernel}: member ${w} rebuilt wrong`);
  }
  console.log(`${kernel.padEnd(8)} encode ${mbps(k * size, encBest).padStart(6)} MB/s (${encBest.toFixed(0)} ms), decode of ${m} lost ${mbps(k * size, decBest).padStart(6)} MB/s (${decBest.toFixed(0)} ms)`);
}
gfKernel(best);

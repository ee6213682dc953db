// Memory of the in-memory index (src/repo/blob-index.ts): bytes of its typed arrays for N
// random blob ids in one pack, and the time to add them and to ask for a trusted copy of each.
//
//   node scripts/bench/index-memory.mjs [N=1000000] [path/to/blob-index.js]
// (another build's dist/src/repo/blob-index.js compares versions; an older BlobIndex
// without hasWhere is asked has()).
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const n = Number(process.argv[2] ?? 1_000_000);
const mod = process.argv[3] ?? fileURLToPath(new URL('../../dist/src/repo/blob-index.js', import.meta.url));
const { BlobIndex } = await import(mod);
const ids = randomBytes(32 * n);
const ix = new BlobIndex();
const pack = ix.addPack({ id: randomBytes(32), kind: 'data', sealedKey: randomBytes(80), indexFile: 'index/x', signer: 'master', verified: true });
let t0 = performance.now();
for (let i = 0; i < n; i++) ix.add(ids.subarray(i * 32, i * 32 + 32), pack, i * 100, 100, 90);
const addMs = performance.now() - t0;
const trusted = (p) => p.verified && p.signer === 'master';
t0 = performance.now();
let hits = 0;
for (let i = 0; i < n; i++) {
  const id = ids.subarray(i * 32, i * 32 + 32);
  if (ix.hasWhere ? ix.hasWhere(id, trusted) : ix.has(id)) hits++;
}
const lookupMs = performance.now() - t0;
let bytes = 0;
for (const v of Object.values(ix)) if (ArrayBuffer.isView(v)) bytes += v.byteLength;
console.log(JSON.stringify({ module: mod, blobs: n, typedArrayMB: +(bytes / 1e6).toFixed(1), bytesPerBlob: +(bytes / n).toFixed(1), addMs: Math.round(addMs), lookupMs: Math.round(lookupMs), hits }));

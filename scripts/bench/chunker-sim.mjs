// What a repository would store of a corpus with given chunker parameters, without a
// repository: tsbak's own Chunker (dist/) with a random gear table per seed, zstd per unique
// chunk, the files of DIR (not recursive) in sorted order. Prints per seed the chunks, the
// unique ones, their plain bytes, their compressed bytes (stored bytes minus the ~74 B per
// blob of sealing and pack header), and the bytes each file added; then the mean.
//   node scripts/bench/chunker-sim.mjs DIR MIN AVG MAX LEVEL SEEDS
// e.g. node scripts/bench/chunker-sim.mjs /tmp/corpus 65536 262144 4194304 3 5
// docs/PERFORMANCE.md, "the images corpus's size" (images23e).
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const dist = new URL('../../dist/src/', import.meta.url);
const { Chunker, gearTable } = await import(new URL('writer/chunker.js', dist).href);
const { zstdCompress } = await import(new URL('format/compress.js', dist).href);

const [dir, ...nums] = process.argv.slice(2);
const [min, avg, max, level, seeds] = nums.map(Number);
if (!dir || !(seeds > 0)) {
  console.error('usage: chunker-sim.mjs DIR MIN AVG MAX LEVEL SEEDS');
  process.exit(2);
}
const names = readdirSync(dir).sort().filter((f) => statSync(join(dir, f)).isFile());
const files = names.map((f) => readFileSync(join(dir, f)));
const tot = { n: 0, u: 0, plain: 0, comp: 0 };
for (let s = 0; s < seeds; s++) {
  const ch = new Chunker({ min, avg, max }, gearTable(randomBytes(32)));
  const seen = new Set();
  let n = 0;
  let plain = 0;
  let comp = 0;
  const per = [];
  for (const f of files) {
    let added = 0;
    for (let p = 0; p < f.length; ) {
      const len = ch.cut(f, p, f.length);
      const c = f.subarray(p, p + len);
      p += len;
      n++;
      const h = createHash('sha256').update(c).digest('hex');
      if (seen.has(h)) continue;
      seen.add(h);
      const z = Math.min(zstdCompress(c, level).length, len);
      plain += len;
      comp += z;
      added += z;
    }
    per.push((added / 1e6).toFixed(2));
  }
  console.log(`seed ${s}: chunks ${n} unique ${seen.size} plain ${plain} compressed ${comp}; by file (${names.join(' ')}) MB: ${per.join(' ')}`);
  tot.n += n;
  tot.u += seen.size;
  tot.plain += plain;
  tot.comp += comp;
}
console.log(`mean of ${seeds}, ${min}/${avg}/${max} level ${level}: chunks ${(tot.n / seeds).toFixed(1)} unique ${(tot.u / seeds).toFixed(1)} plain ${(tot.plain / seeds / 1e6).toFixed(2)} MB compressed ${(tot.comp / seeds / 1e6).toFixed(3)} MB`);

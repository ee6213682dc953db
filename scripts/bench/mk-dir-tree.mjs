// A tree of N directories for bench-watch.sh: sqrt(N) top directories of sqrt(N) each, a
// small file in every 100th directory. Usage: node mk-dir-tree.mjs <dir> <N>
import { mkdirSync, writeFileSync } from 'node:fs';
const [root, nArg] = process.argv.slice(2);
const n = Number(nArg);
const side = Math.ceil(Math.sqrt(n));
let made = 0;
for (let i = 0; made < n; i++) {
  for (let j = 0; j < side && made < n; j++, made++) {
    const d = `${root}/d${i}/e${j}`;
    mkdirSync(d, { recursive: true });
    if (made % 100 === 0) writeFileSync(`${d}/f`, `file ${made}\n`);
  }
}
console.log(`tree: ${made} directories (+ ${Math.ceil(n / side)} top ones) in ${root}`);

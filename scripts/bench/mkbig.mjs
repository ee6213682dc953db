// Writes one deterministic file of "mixed" data for the large-file benchmark:
// alternating 4 MiB blocks of incompressible bytes (AES-128-CTR keystream under a fixed
// key, so identical on every run and machine) and compressible English-like text
// (pseudo-words from a seeded PRNG; zstd-3 gets roughly 2.5-3x on it). Neither kind of
// block repeats, so nothing deduplicates inside the file.
//
//   node scripts/bench/mkbig.mjs OUT SIZE_BYTES
import { createCipheriv } from 'node:crypto';
import { openSync, writeSync, closeSync } from 'node:fs';

const [out, sizeArg] = process.argv.slice(2);
if (!out || !sizeArg) {
  console.error('usage: mkbig.mjs OUT SIZE_BYTES');
  process.exit(2);
}
const size = Number(sizeArg);
const BLOCK = 4 << 20;

// xorshift32: small, fast and deterministic
let s = 0x9e3779b9;
const rnd = () => {
  s ^= s << 13; s >>>= 0;
  s ^= s >>> 17;
  s ^= s << 5; s >>>= 0;
  return s;
};

// A vocabulary of 4096 pseudo-words built from syllables, with a skewed (Zipf-like) pick.
const syl = ['ba', 'ce', 'di', 'fo', 'gu', 'ha', 'je', 'ki', 'lo', 'mu', 'na', 'pe', 'ri',
  'so', 'tu', 'va', 'we', 'xi', 'yo', 'za', 'th', 'er', 'an', 'in', 'on', 'st', 'ch', 'or'];
const words = [];
for (let i = 0; i < 4096; i++) {
  const n = 1 + (rnd() % 4);
  let w = '';
  for (let j = 0; j < n; j++) w += syl[rnd() % syl.length];
  words.push(Buffer.from(w));
}
const pick = () => {
  const r = rnd() & 0xffff;
  return words[Math.floor((r * r) / 65536 / 16) & 4095]; // small indexes far more often
};

function textBlock(buf) {
  let p = 0;
  let col = 0;
  while (p < buf.length) {
    const w = pick();
    if (col + w.length + 1 > 72) {
      buf[p++] = 0x0a; col = 0;
      continue;
    }
    if (col > 0) { buf[p++] = 0x20; col++; }
    const n = Math.min(w.length, buf.length - p);
    w.copy(buf, p, 0, n);
    p += n; col += n;
  }
}

const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
const zeros = Buffer.alloc(BLOCK);
const text = Buffer.alloc(BLOCK);
const fd = openSync(out, 'w');
let written = 0;
for (let i = 0; written < size; i++) {
  const n = Math.min(BLOCK, size - written);
  let b;
  if (i % 2 === 0) {
    b = cipher.update(zeros.subarray(0, n));
  } else {
    textBlock(text);
    b = text.subarray(0, n);
  }
  let off = 0;
  while (off < b.length) off += writeSync(fd, b, off, b.length - off);
  written += n;
}
closeSync(fd);

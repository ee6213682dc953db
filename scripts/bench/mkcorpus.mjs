// Builds the benchmark's other corpora (scripts/bench.sh, issue 23): data of shapes unlike
// the README corpus's tiny text files. Everything is made on this machine from seeded
// generators (no network), so the same arguments give the same bytes on every run.
//
//   node scripts/bench/mkcorpus.mjs files  DIR COUNT TOTAL_BYTES
//       COUNT medium-size files (log-uniform sizes, 4 KiB up to ~12x the mean) in
//       directories of 100, totalling TOTAL_BYTES, of mixed compressibility: random
//       (like photos and archives), text, structured binary (like executables and
//       databases: small integers, zero runs, repeated records), half random and half
//       zeros; every 20th file is a copy of an earlier one.
//   node scripts/bench/mkcorpus.mjs images DIR TOTAL_BYTES
//       A few large binaries: a raw VM image (half of TOTAL_BYTES) of 1 MiB regions of
//       zeros, one repeated 64 KiB block, random, text, structured binary and copies of
//       earlier regions; a second image that is the first with 5% of its regions changed
//       (a later snapshot of the same VM, a quarter); an archive of random bytes and a
//       database-like file of records (an eighth each).
// The source tree with a .git directory is built by scripts/bench.sh (git, from local text).
import { createCipheriv } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const MiB = 1 << 20;

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
}

/** Incompressible bytes: an AES-128-CTR keystream under a key from `seed`. */
function randomSource(seed) {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed, 0);
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16, 0));
  return (buf) => {
    const zeros = Buffer.alloc(Math.min(buf.length, MiB));
    for (let o = 0; o < buf.length; o += zeros.length) {
      const n = Math.min(zeros.length, buf.length - o);
      c.update(zeros.subarray(0, n)).copy(buf, o);
    }
  };
}

/** English-like text of pseudo-words with a skewed pick (as mkbig.mjs). */
function textSource(seed) {
  const rnd = rng(seed);
  const syl = ['ba', 'ce', 'di', 'fo', 'gu', 'ha', 'je', 'ki', 'lo', 'mu', 'na', 'pe', 'ri',
    'so', 'tu', 'va', 'we', 'xi', 'yo', 'za', 'th', 'er', 'an', 'in', 'on', 'st', 'ch', 'or'];
  const words = [];
  for (let i = 0; i < 4096; i++) {
    let w = '';
    for (let j = 1 + (rnd() % 4); j > 0; j--) w += syl[rnd() % syl.length];
    words.push(Buffer.from(w));
  }
  return (buf) => {
    let p = 0;
    let col = 0;
    while (p < buf.length) {
      const r = rnd() & 0xffff;
      const w = words[Math.floor((r * r) / 65536 / 16) & 4095];
      if (col + w.length + 1 > 72) {
        buf[p++] = 0x0a;
        col = 0;
        continue;
      }
      if (col > 0) {
        buf[p++] = 0x20;
        col++;
      }
      const n = Math.min(w.length, buf.length - p);
      w.copy(buf, p, 0, n);
      p += n;
      col += n;
    }
  };
}

/** Like executables or databases: records of small integers and ids, zero runs, a few strings. */
function structuredSource(seed) {
  const rnd = rng(seed);
  return (buf) => {
    let p = 0;
    let id = rnd() % 100000;
    while (p < buf.length) {
      const kind = rnd() % 8;
      const rec = Buffer.alloc(kind === 0 ? 16 + (rnd() % 240) : 32);
      if (kind === 0) {
        rec.fill(0); // a zero run
      } else {
        rec.writeUInt32LE(id++, 0);
        rec.writeUInt32LE(rnd() % 1000, 4);
        rec.writeUInt32LE(rnd() & 0xffff, 8);
        rec.writeUInt32LE(rnd(), 12); // one random word per record
        rec.write('rec' + (rnd() % 64).toString(36).padStart(2, '0'), 16);
        rec.writeUInt16LE(kind, 24);
      }
      const n = Math.min(rec.length, buf.length - p);
      rec.copy(buf, p, 0, n);
      p += n;
    }
  };
}

function writeAll(fd, b) {
  let off = 0;
  while (off < b.length) off += writeSync(fd, b, off, b.length - off);
}

function writeFile(path, bytes) {
  const fd = openSync(path, 'w');
  try {
    writeAll(fd, bytes);
  } finally {
    closeSync(fd);
  }
}

function files(dir, count, total) {
  const rnd = rng(0x5eed0001);
  const gens = [randomSource(1), textSource(2), structuredSource(3)];
  const halfRandom = randomSource(4);
  // log-uniform sizes between 4 KiB and 12x the mean, then scaled to the total
  const lo = Math.log(4096);
  const hi = Math.log(Math.max(8192, (12 * total) / count));
  const raw = [];
  for (let i = 0; i < count; i++) raw.push(Math.exp(lo + ((rnd() % 1e6) / 1e6) * (hi - lo)));
  const scale = total / raw.reduce((a, b) => a + b, 0);
  const kept = [];
  for (let i = 0; i < count; i++) {
    const d = join(dir, `d${String(Math.floor(i / 100)).padStart(3, '0')}`);
    if (i % 100 === 0) mkdirSync(d, { recursive: true });
    const size = Math.max(1, Math.round(raw[i] * scale));
    let b;
    if (i % 20 === 19 && kept.length) {
      b = kept[rnd() % kept.length];
    } else {
      b = Buffer.allocUnsafe(size);
      const kind = rnd() % 4;
      if (kind < 3) gens[kind](b);
      else {
        b.fill(0);
        halfRandom(b.subarray(0, size >> 1));
      }
      if (kept.length < 64 && rnd() % 8 === 0) kept.push(b);
    }
    const ext = ['.jpg', '.txt', '.bin', '.dat'][i % 4];
    writeFile(join(d, `f${String(i).padStart(5, '0')}${ext}`), b);
  }
}

/** A VM image of `regions` 1 MiB regions; the same seed gives the same image. */
function imageRegions(seed, regions) {
  const rnd = rng(seed);
  const rand = randomSource(seed);
  const text = textSource(seed + 1);
  const structured = structuredSource(seed + 2);
  const block = Buffer.allocUnsafe(64 << 10);
  rand(block);
  const out = [];
  for (let i = 0; i < regions; i++) {
    const k = rnd() % 100;
    let b;
    if (k < 30) b = Buffer.alloc(MiB);
    else if (k < 40) {
      b = Buffer.allocUnsafe(MiB);
      for (let o = 0; o < MiB; o += block.length) block.copy(b, o);
    } else if (k < 50 && out.length > 8) b = out[rnd() % out.length];
    else if (k < 70) {
      b = Buffer.allocUnsafe(MiB);
      rand(b);
    } else if (k < 85) {
      b = Buffer.allocUnsafe(MiB);
      text(b);
    } else {
      b = Buffer.allocUnsafe(MiB);
      structured(b);
    }
    out.push(b);
  }
  return out;
}

function images(dir, total) {
  mkdirSync(dir, { recursive: true });
  const n = Math.max(16, Math.floor(total / 2 / MiB));
  const regions = imageRegions(7, n);
  let fd = openSync(join(dir, 'vm.img'), 'w');
  for (const r of regions) writeAll(fd, r);
  closeSync(fd);
  // the later snapshot: the first half of the image, with 5% of its regions rewritten
  const rnd = rng(11);
  const rand = randomSource(12);
  const text = textSource(13);
  fd = openSync(join(dir, 'vm-snapshot.img'), 'w');
  for (let i = 0; i < n >> 1; i++) {
    let r = regions[i];
    if (rnd() % 20 === 0) {
      r = Buffer.from(r);
      const at = (rnd() % 16) << 16;
      (rnd() % 2 ? rand : text)(r.subarray(at, at + (64 << 10)));
    }
    writeAll(fd, r);
  }
  closeSync(fd);
  const eighth = Math.max(MiB, Math.floor(total / 8));
  const b = Buffer.allocUnsafe(MiB);
  fd = openSync(join(dir, 'archive.tar.zst'), 'w');
  const ar = randomSource(21);
  for (let o = 0; o < eighth; o += MiB) {
    ar(b);
    writeAll(fd, b.subarray(0, Math.min(MiB, eighth - o)));
  }
  closeSync(fd);
  fd = openSync(join(dir, 'db.sqlite'), 'w');
  const st = structuredSource(22);
  for (let o = 0; o < eighth; o += MiB) {
    st(b);
    writeAll(fd, b.subarray(0, Math.min(MiB, eighth - o)));
  }
  closeSync(fd);
}

const [kind, dir, a, b] = process.argv.slice(2);
if (kind === 'files' && dir && a && b) files(dir, Number(a), Number(b));
else if (kind === 'images' && dir && a) images(dir, Number(a));
else {
  console.error('usage: mkcorpus.mjs files DIR COUNT TOTAL_BYTES | images DIR TOTAL_BYTES');
  process.exit(2);
}

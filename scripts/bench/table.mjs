// Formats the measurements of scripts/bench.sh into one table: printed aligned on stdout,
// and written as markdown (with the machine, the date and the tool versions) to OUT.md.
//
//   node scripts/bench/table.mjs WORKDIR
// reads WORKDIR/results.tsv (tool, op, seconds, peak RSS KiB, bytes, load) and
// WORKDIR/meta.env (key=value lines), writes WORKDIR/results.md.
// MB is 10^6 bytes everywhere; MB/s is the bytes of the input (corpus or big file)
// divided by wall seconds.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
const meta = {};
for (const line of readFileSync(join(dir, 'meta.env'), 'utf8').split('\n')) {
  const i = line.indexOf('=');
  if (i > 0) meta[line.slice(0, i)] = line.slice(i + 1);
}
const rows = readFileSync(join(dir, 'results.tsv'), 'utf8').trim().split('\n')
  .filter(Boolean).map((l) => {
    const [tool, op, secs, rssKiB, bytes, load] = l.split('\t');
    return { tool, op, secs: Number(secs), rssKiB: Number(rssKiB), bytes: Number(bytes), load };
  });
// A step measured more than once (BENCH_CORPUS_RUNS): the median run's time and RSS.
const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const get = (tool, op) => {
  const all = rows.filter((r) => r.tool === tool && r.op === op);
  if (all.length <= 1) return all[0];
  return { ...all[0], secs: median(all.map((r) => r.secs)), rssKiB: median(all.map((r) => r.rssKiB)), runs: all.length };
};

const tools = (meta.tools || 'tsbak restic borg').split(/\s+/).filter(Boolean);
const others = tools.filter((t) => t !== 'tsbak' && tools.includes('tsbak'));
const ops = [
  ['backup1', 'first backup'],
  ['backup2', 'unchanged re-backup'],
  ['backup3', '1% changed re-backup'],
  ['restore', 'full restore'],
  ['big', `${meta.big_label || '2 GiB'} file backup`],
];
const sizes = [
  ['size_corpus', 'repository size, corpus (3 snapshots), MB'],
  ['size_big', `repository size, ${meta.big_label || '2 GiB'} file, MB`],
];

const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const fr = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? f2(a / b) + 'x' : '-');
const mb = (bytes) => bytes / 1e6;

const main = meta.main !== '0';
const header = [''];
for (const t of tools) header.push(`${t} s`, `${t} MB/s`, `${t} RSS MB`);
for (const o of others) header.push(`tsbak/${o} time`, `tsbak/${o} RSS`, `tsbak/${o} size`);
const table = [header];
for (const [op, label] of ops) {
  const line = [label];
  for (const t of tools) {
    const r = get(t, op);
    line.push(r ? f1(r.secs) : '-', r ? f1(mb(r.bytes) / r.secs) : '-', r ? f1((r.rssKiB * 1024) / 1e6) : '-');
  }
  const ts = get('tsbak', op);
  for (const o of others) {
    const r = get(o, op);
    line.push(fr(ts?.secs, r?.secs), fr(ts?.rssKiB, r?.rssKiB), '');
  }
  table.push(line);
}
for (const [op, label] of sizes) {
  const line = [label];
  for (const t of tools) {
    const r = get(t, op);
    line.push(r ? f1(mb(r.bytes)) : '-', '', '');
  }
  const ts = get('tsbak', op);
  for (const o of others) {
    const r = get(o, op);
    line.push('', '', fr(ts?.bytes, r?.bytes));
  }
  table.push(line);
}

// The other corpora (issue 23): one table each.
const corpusInfo = {};
for (const part of (meta.corpora_info || '').split(';').filter(Boolean)) {
  const [name, bytes, files, median] = part.split(':');
  corpusInfo[name] = { bytes: Number(bytes), files: Number(files), median };
}
const corpusOps = [
  ['backup1', 'first backup'],
  ['backup2', 'unchanged re-backup'],
  ['restore-tmpfs', 'restore to tmpfs'],
  ['restore-disk', 'restore to disk'],
];
const corpusTables = [];
for (const c of Object.keys(corpusInfo)) {
  const t = [header];
  for (const [op, label] of corpusOps) {
    const line = [label];
    for (const tool of tools) {
      const r = get(tool, `${c}.${op}`);
      line.push(r ? f1(r.secs) : '-', r ? f1(mb(r.bytes) / r.secs) : '-', r ? f1((r.rssKiB * 1024) / 1e6) : '-');
    }
    const ts = get('tsbak', `${c}.${op}`);
    for (const o of others) {
      const r = get(o, `${c}.${op}`);
      line.push(fr(ts?.secs, r?.secs), fr(ts?.rssKiB, r?.rssKiB), '');
    }
    t.push(line);
  }
  const line = ['repository size (2 snapshots), MB'];
  for (const tool of tools) {
    const r = get(tool, `${c}.size`);
    line.push(r ? f1(mb(r.bytes)) : '-', '', '');
  }
  const ts = get('tsbak', `${c}.size`);
  for (const o of others) line.push('', '', fr(ts?.bytes, get(o, `${c}.size`)?.bytes));
  t.push(line);
  corpusTables.push([c, t]);
}

const describe = {
  files: () => `${meta.files_corpus}: medium-size files of mixed compressibility (scripts/bench/mkcorpus.mjs files)`,
  images: () => `${meta.images_corpus}: a raw VM image, a later snapshot of it, an archive and a database-like file (mkcorpus.mjs images)`,
  srcgit: () => `a source tree with its .git (${meta.git_sources} in three commits)`,
  usr: () => `a copy of ${meta.sources}`,
};
const corpusTitle = (c) => {
  const i = corpusInfo[c];
  const runs = Number(meta.corpus_runs || 1);
  const each = runs > 1 ? `; each step run ${runs} times, the tools' order alternating: the median run` : '';
  return `corpus ${c}: ${describe[c]?.() ?? c} (${f1(mb(i.bytes))} MB, ${i.files.toLocaleString('en-US')} files, median file ${i.median}${each})`;
};

// aligned text for the terminal
const aligned = (tbl) => {
  const widths = tbl[0].map((_, c) => Math.max(...tbl.map((l) => l[c].length)));
  return tbl.map((l) => l.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
};
if (main) process.stdout.write(aligned(table) + '\n');
for (const [c, t] of corpusTables) process.stdout.write(`\n${corpusTitle(c)}\n${aligned(t)}\n`);

// markdown
const md = [];
md.push(`### Benchmark: tsbak vs ${others.join(' and ') || '(no other tools)'} (${meta.date})`);
md.push('');
md.push(`Machine: ${meta.nproc} cores (${meta.cpu}), ${meta.mem} RAM, ${meta.kernel}; ` +
  `load average (1/5/15 min) ${meta.load_start} at the start, ${meta.load_end} at the end.`);
md.push(`Versions: ${meta.versions}.`);
if (main) md.push(`Corpus: a copy of ${meta.sources} (${f1(mb(Number(meta.corpus_bytes)))} MB, ` +
  `${Number(meta.corpus_files).toLocaleString('en-US')} files, median file ${meta.median_file}), ` +
  `warm page cache; the 1% change appends a line to every 100th file in sorted order ` +
  `(${meta.changed_files} files). Big file: ${meta.big_label} of alternating 4 MiB blocks of ` +
  `random and text data, fresh repository per tool.`);
md.push(`Settings: ${meta.settings}.`);
md.push('Seconds are wall time; MB/s is input bytes / seconds (the corpus, or the big file); ' +
  'peak RSS from /usr/bin/time; repository size from du -sb (caches excluded); MB = 10^6 bytes.');
md.push('');
if (corpusTables.length) md.push(`Other corpora: restores to ${meta.restore_dirs}.`);
const mdTable = (tbl) => {
  md.push('| ' + tbl[0].join(' | ') + ' |');
  md.push('|' + tbl[0].map((_, c) => (c === 0 ? '---' : '---:')).join('|') + '|');
  for (const l of tbl.slice(1)) md.push('| ' + l.join(' | ') + ' |');
  md.push('');
};
if (main) mdTable(table);
for (const [c, t] of corpusTables) {
  md.push(`${corpusTitle(c)}:`);
  md.push('');
  mdTable(t);
}
md.push('<details><summary>per-measurement load average (1 min) at the start of each step</summary>');
md.push('');
md.push('| tool | step | load |');
md.push('|---|---|---:|');
for (const r of rows) if (r.load) md.push(`| ${r.tool} | ${r.op} | ${r.load} |`);
md.push('');
md.push('</details>');
writeFileSync(join(dir, 'results.md'), md.join('\n') + '\n');

// The table of scripts/bench-s3.sh, in markdown, from its results-s3.tsv
// (latency tool step seconds rss_kb requests gets, one step a line).
//   node scripts/bench/s3-table.mjs results-s3.tsv CORPUS_BYTES CORPUS_FILES CORPUS_NAME
import { readFileSync } from 'node:fs';
import os from 'node:os';

const [file, bytesArg, filesArg, corpusName] = process.argv.slice(2);
const corpusBytes = Number(bytesArg);
const rows = readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => {
  const [lat, tool, step, secs, rss, req, gets] = l.split('\t');
  return { lat, tool, step, secs: Number(secs), rss: rss ? Number(rss) * 1024 : null, req: Number(req), gets: Number(gets) };
});
const find = (lat, tool, step) => rows.find((r) => r.lat === lat && r.tool === tool && r.step === step);
const latencies = [...new Set(rows.map((r) => r.lat))].filter((l) => l !== 'local');
const STEPS = ['backup', 'restore', 'mount-ls', 'mount-cp', 'check', 'ls-cold', 'ls-warm'];
const NAMES = { backup: 'backup', restore: 'restore', 'mount-ls': 'mount ls -lR', 'mount-cp': 'mount cp -a', check: 'check --read-data', 'ls-cold': 'ls -l (cold cache)', 'ls-warm': 'ls -l (warm cache)' };
const MOVES_DATA = new Set(['backup', 'restore', 'mount-cp', 'check']);

const f1 = (x) => (x === null || x === undefined || Number.isNaN(x) ? '' : x.toFixed(1));
const f2 = (x) => (x === null || x === undefined || Number.isNaN(x) ? '' : x.toFixed(2));
const mb = (n) => (n === null ? '' : String(Math.round(n / 1e6)));

const out = [];
out.push(`## tsbak and restic over S3 (scripts/bench-s3.sh)`);
out.push('');
out.push(`${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), load ${os.loadavg()[0].toFixed(1)} at the end.`);
out.push(`Corpus: a copy of ${corpusName}, ${(corpusBytes / 1e6).toFixed(1)} MB in ${filesArg} files. S3: scripts/s3-dev-server.mjs on loopback, the latency added before each request.`);
out.push('Seconds of wall time; requests = all S3 requests of the step (GETs in parentheses); MB/s = corpus bytes per second; "x 0 ms" = time against the same step at 0 ms; t/r = tsbak time / restic time. Every step starts with an empty client cache except ls -l (warm cache); the mounts are timed from when snapshots/latest appears (what a mount loads up front is not counted), each of ls -lR and cp -a on a mount of its own.');
out.push('');
out.push('| step | latency | tsbak s | requests | MB/s | x 0 ms | restic s | requests | MB/s | x 0 ms | t/r |');
out.push('|---|---|---|---|---|---|---|---|---|---|---|');
for (const step of STEPS) {
  for (const lat of latencies) {
    const t = find(lat, 'tsbak', step);
    const r = find(lat, 'restic', step);
    if (!t && !r) continue;
    const cell = (x, tool) => {
      if (!x) return ['', '', '', ''];
      const base = find('0', tool, step);
      return [f2(x.secs), `${x.req} (${x.gets})`, MOVES_DATA.has(step) ? f1(corpusBytes / 1e6 / x.secs) : '', base && lat !== '0' ? f2(x.secs / base.secs) : lat === '0' ? '1.00' : ''];
    };
    out.push(`| ${NAMES[step]} | ${lat} ms | ${cell(t, 'tsbak').join(' | ')} | ${cell(r, 'restic').join(' | ')} | ${t && r ? f2(t.secs / r.secs) : ''} |`);
  }
}
out.push('');

const restores = latencies.map((lat) => [lat, find(lat, 'tsbak', 'restore'), find(lat, 'restic', 'restore')]).filter(([, t, r]) => t || r);
if (restores.length) {
  out.push('Peak RSS of the restores (MB): ' + restores.map(([lat, t, r]) => `${lat} ms: tsbak ${t ? mb(t.rss) : '-'}, restic ${r ? mb(r.rss) : '-'}`).join('; ') + '.');
}
const localRefs = latencies.map((lat) => [lat, find(lat, 'tsbak', 'mount-cp'), find(lat, 'tsbak', 'mount-cp-local')]).filter(([, s, l]) => s && l);
if (localRefs.length) {
  const parts = localRefs.map(([lat, s, l]) => `${lat} ms ${f2(s.secs)} s / ${f2(l.secs)} s = ${f2(s.secs / l.secs)}x`);
  out.push(`S3 mount cp -a against cp -a out of a mount of a local-disk repository of the corpus, timed right before it: ${parts.join('; ')} (target at 100 ms: within 2x).`);
}
const lastLat = latencies.at(-1);
const tr = find(lastLat, 'tsbak', 'restore');
const t0 = find('0', 'tsbak', 'restore');
if (tr && t0 && lastLat !== '0') out.push(`Restore at ${lastLat} ms against 0 ms: ${f2(tr.secs / t0.secs)}x time, ${t0.rss ? f2(tr.rss / t0.rss) : '?'}x peak RSS (targets: within 1.5x and 1.2x).`);
console.log(out.join('\n'));

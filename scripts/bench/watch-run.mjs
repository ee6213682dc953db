// One watcher run of bench-watch.sh. Usage: node watch-run.mjs <tsbak> <repo> <tree> <idle seconds> <label>
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
const [bin, repo, tree, idleArg, label] = process.argv.slice(2);
const idle = Number(idleArg);
const t0 = performance.now();
const w = spawn(bin, ['watch', repo, tree, '--quiet-for', '1s', '--interval', '30s', '--json-lines'], { stdio: ['ignore', 'pipe', 'inherit'] });
const events = [];
let waiter = null;
let buf = '';
w.stdout.on('data', (d) => {
  buf += d;
  let nl;
  while ((nl = buf.indexOf('\n')) >= 0) {
    events.push(JSON.parse(buf.slice(0, nl)));
    buf = buf.slice(nl + 1);
  }
  waiter?.();
});
let seen = 0;
async function next(kind) {
  for (;;) {
    while (seen < events.length) if (events[seen++].event === kind) return events[seen - 1];
    if (w.exitCode !== null) throw new Error(`watcher exited waiting for ${kind}`);
    await new Promise((r) => (waiter = r));
  }
}
const cpu = () => {
  const f = readFileSync(`/proc/${w.pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
};
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${w.pid}/status`, 'utf8'))[1]) * 1024;
const mb = (b) => (b / 1048576).toFixed(1) + ' MB';
// bin/tsbak is a shell that execs node: same pid.
const ready = await next('watching');
console.log(`${label}: watching ${ready.watches} directories, ${ready.unwatched.length} subtrees unwatched, set up in ${ready.seconds.toFixed(2)} s (${((performance.now() - t0) / 1000).toFixed(2)} s from start), RSS then ${mb(ready.rss_bytes)}`);
if (label === 'fallback') {
  const lim = events.find((e) => e.event === 'watch_limit');
  console.log(`${label}: watch_limit said once: ${events.filter((e) => e.event === 'watch_limit').length === 1} (limit ${lim?.limit})`);
}
const first = await next('snapshot');
console.log(`${label}: first snapshot (full check): ${first.dirs} dirs, ${first.files} files in ${first.seconds.toFixed(2)} s; watcher RSS ${mb(rss())}`);
if (idle > 0) {
  // In windows of 10 s: a cost right after the snapshot (the GC shrinking the heap) shows apart from the steady one.
  const c0 = cpu();
  const windows = [];
  for (let i = 0; i < Math.ceil(idle / 10); i++) {
    const c = cpu();
    await new Promise((r) => setTimeout(r, Math.min(10, idle - i * 10) * 1000));
    windows.push((cpu() - c).toFixed(2));
  }
  const c1 = cpu();
  console.log(`${label}: CPU over ${idle} idle seconds: ${(c1 - c0).toFixed(2)} s (target < 0.1 s; per 10 s: ${windows.join(' ')}); snapshots meanwhile: ${events.slice(seen).filter((e) => e.event === 'snapshot').length}; RSS at its end ${mb(rss())}`);
}
const target = label === 'fallback' ? ready.unwatched[ready.unwatched.length - 1] : `${tree}/d7/e7`;
writeFileSync(`${target}/changed`, 'changed\n');
const s = await next('snapshot');
console.log(`${label}: one file changed in ${target}: snapshot ${s.short_id} ${s.seconds_since_change.toFixed(2)} s after the change, took ${s.seconds.toFixed(2)} s, ${s.dirs - s.dirs_unchanged} dirs re-read, ${s.dirs_unchanged} taken from the parent; RSS ${mb(rss())}`);
w.kill('SIGTERM');

#!/usr/bin/env node
// An HTTP proxy in front of an S3 server (scripts/s3-dev-server.mjs) that records every
// request (method and path) and can wait before passing each one on, like a WAN would. For
// tests that count requests by object (test/lib/counting-proxy.ts) and for measuring reads
// at a latency by hand.
//
//   node scripts/s3-count-proxy.mjs --target http://127.0.0.1:4568 [--port 0] [--latency-ms 0]
//       [--exit-on-stdin-close]
//
// Prints "s3-count-proxy listening on http://127.0.0.1:PORT" when ready. Point the client at
// it (AWS_ENDPOINT_URL_S3): path-style requests and their signatures pass unchanged.
//   GET  /__proxy/requests        JSON [[method, path], ...] since the last reset
//   POST /__proxy/reset           forgets them
//   POST /__proxy/latency?ms=N    changes the wait
//   GET  /__proxy/timeline        JSON [{ method, path, range, start, end, status, bytes }]
//                                 since the last reset, times in ms since then (measuring)
//   POST /__proxy/hold            holds every request from now on (recorded, not passed on):
//                                 whatever arrives while held was sent without waiting for
//                                 any answer, so a test sees what a client sends at once
//   POST /__proxy/release         passes the held requests on, and stops holding
//   GET  /__proxy/await?count=N[&timeout_ms=T]
//                                 answers the timeline once N requests have come since the
//                                 last reset (at once if they have), or after T ms (default
//                                 60000) with what came: a test waits for requests as events
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    target: { type: 'string' },
    port: { type: 'string', default: '0' },
    'latency-ms': { type: 'string', default: '0' },
    'exit-on-stdin-close': { type: 'boolean', default: false },
  },
  strict: true,
});
if (!args.target) {
  console.error('usage: node scripts/s3-count-proxy.mjs --target URL [--port N] [--latency-ms MS] [--exit-on-stdin-close]');
  process.exit(2);
}
const target = new URL(args.target);
let latency = Number(args['latency-ms']);
let requests = [];
let timeline = [];
let epoch = performance.now();
/** Requests held (POST /__proxy/hold), each a function that passes it on; null: not holding. */
let held = null;
/** Waiters of /__proxy/await: each answered once `timeline` has `count` entries. */
let waiters = [];

function wakeWaiters() {
  const ready = waiters.filter((w) => timeline.length >= w.count);
  waiters = waiters.filter((w) => timeline.length < w.count);
  for (const w of ready) w.answer();
}
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/__proxy/')) {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/__proxy/requests') return res.end(JSON.stringify(requests));
    if (u.pathname === '/__proxy/timeline') return res.end(JSON.stringify(timeline));
    if (u.pathname === '/__proxy/await') {
      const count = Number(u.searchParams.get('count') ?? 1);
      const answer = () => {
        clearTimeout(timer);
        res.end(JSON.stringify(timeline));
      };
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w.answer !== answer);
        answer();
      }, Number(u.searchParams.get('timeout_ms') ?? 60_000));
      waiters.push({ count, answer });
      return wakeWaiters();
    }
    if (u.pathname === '/__proxy/reset') {
      requests = [];
      timeline = [];
      epoch = performance.now();
      return res.end('{}');
    }
    if (u.pathname === '/__proxy/hold') {
      held ??= [];
      return res.end('{}');
    }
    if (u.pathname === '/__proxy/release') {
      const go = held ?? [];
      held = null;
      for (const f of go) f();
      return res.end('{}');
    }
    if (u.pathname === '/__proxy/latency') {
      latency = Number(u.searchParams.get('ms') ?? 0);
      return res.end('{}');
    }
    res.statusCode = 404;
    return res.end();
  }
  requests.push([req.method, decodeURIComponent(req.url.split('?')[0])]);
  const entry = { method: req.method, path: decodeURIComponent(req.url), range: req.headers.range ?? null, start: Math.round(performance.now() - epoch), end: null, status: null, bytes: 0 };
  timeline.push(entry);
  wakeWaiters();
  req.pause();
  const pass = () => setTimeout(() => {
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent }, (r) => {
      entry.status = r.statusCode;
      r.on('data', (c) => (entry.bytes += c.length));
      r.on('end', () => (entry.end = Math.round(performance.now() - epoch)));
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
    req.resume();
  }, latency);
  if (held) held.push(pass);
  else pass();
});
server.keepAliveTimeout = 60_000;
server.listen(Number(args.port), '127.0.0.1', () => {
  console.log(`s3-count-proxy listening on http://127.0.0.1:${server.address().port}`);
});
if (args['exit-on-stdin-close']) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

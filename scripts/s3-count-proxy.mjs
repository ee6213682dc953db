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
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/__proxy/')) {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/__proxy/requests') return res.end(JSON.stringify(requests));
    if (u.pathname === '/__proxy/reset') {
      requests = [];
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
  req.pause();
  setTimeout(() => {
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
    req.resume();
  }, latency);
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

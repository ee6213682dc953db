#!/usr/bin/env node
// Local S3 server with Glacier semantics, for development, the demo and tests.
// See scripts/s3-dev-server-lib.mjs for what it does and how closely it follows AWS.
//
//   node scripts/s3-dev-server.mjs [--port 4568] [--host 127.0.0.1] [--dir ./.s3-dev-data]
//       [--restore-delay-ms 2000] [--day-ms 86400000] [--bucket NAME]... [--verbose]
//       [--exit-on-stdin-close] [--latency-ms 0] [--manual-clock]
//
// Prints one line "s3-dev-server listening on http://127.0.0.1:PORT" on stdout when ready
// (--port 0 picks a free port). Use it with:
//   AWS_ENDPOINT_URL_S3=http://127.0.0.1:PORT AWS_REGION=us-east-1 \
//   AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER tsbak init s3://BUCKET/prefix
// --latency-ms waits that long before handling each S3 request (POST /__dev/latency?ms=N
// changes it while running). With --manual-clock restores complete only when POST
// /__dev/complete-restores says so; POST /__dev/advance?ms=N moves the server's clock
// (restore expiry) forward. Counters: GET /__dev/stats, POST /__dev/reset-stats.
// Stops on SIGINT/SIGTERM (and, with --exit-on-stdin-close, when its stdin closes, so a
// test runner that dies does not leave it behind).

import { parseArgs } from 'node:util';
import { startS3DevServer } from './s3-dev-server-lib.mjs';

const usage = `usage: node scripts/s3-dev-server.mjs [--port N] [--host ADDR] [--dir DIR]
       [--restore-delay-ms MS] [--day-ms MS] [--bucket NAME]... [--verbose] [--exit-on-stdin-close]
       [--latency-ms MS] [--manual-clock]`;

let args;
try {
  args = parseArgs({
    options: {
      port: { type: 'string', default: '4568' },
      host: { type: 'string', default: '127.0.0.1' },
      dir: { type: 'string', default: '.s3-dev-data' },
      'restore-delay-ms': { type: 'string', default: '2000' },
      'day-ms': { type: 'string', default: '86400000' },
      'latency-ms': { type: 'string', default: '0' },
      'manual-clock': { type: 'boolean', default: false },
      bucket: { type: 'string', multiple: true, default: [] },
      verbose: { type: 'boolean', default: false },
      'exit-on-stdin-close': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }).values;
} catch (e) {
  console.error(`s3-dev-server: ${e.message}\n${usage}`);
  process.exit(2);
}
if (args.help) {
  console.log(usage);
  process.exit(0);
}

const num = (name) => {
  const v = Number(args[name]);
  if (!Number.isFinite(v) || v < 0) {
    console.error(`s3-dev-server: --${name} must be a number >= 0, got ${args[name]}`);
    process.exit(2);
  }
  return v;
};

let server;
try {
  server = await startS3DevServer({
    port: num('port'),
    host: args.host,
    dir: args.dir,
    restoreDelayMs: num('restore-delay-ms'),
    dayMs: num('day-ms') || 86_400_000,
    buckets: args.bucket,
    verbose: args.verbose,
    latencyMs: num('latency-ms'),
    manualClock: args['manual-clock'],
  });
} catch (e) {
  console.error(`s3-dev-server: cannot start: ${e.code === 'EADDRINUSE' ? `port ${args.port} is in use (try --port 0)` : e.message}`);
  process.exit(1);
}
console.log(`s3-dev-server listening on ${server.url}`);
if (args.verbose) console.error(`s3-dev-server: data in ${server.dir}; credentials S3RVER/S3RVER`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await server.stop();
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
if (args['exit-on-stdin-close']) {
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
}

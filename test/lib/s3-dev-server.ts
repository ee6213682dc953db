// Start scripts/s3-dev-server.mjs (s3rver + our Glacier proxy) as a child process on a free
// loopback port, for tests. Always stop it: withDevServer(t) does (or t.teardown(() =>
// server.stop())). The child also exits if this process dies (it watches its stdin). A data
// directory it made itself is removed when it stops.

import { spawn } from 'node:child_process';
import * as http from 'node:http';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { makeTempDir, removeDir, type HasTeardown } from './temp.js';

/**
 * A request to the dev server on a connection of its own (no keep-alive): fetch's pooled
 * sockets race the server closing idle ones (UND_ERR_SOCKET), and a test must not fail on that.
 */
export function devFetch(url: string, init: { method?: string } = {}): Promise<{ ok: boolean; status: number; text(): Promise<string>; json(): Promise<unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? 'GET', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        const status = res.statusCode ?? 0;
        resolve({ ok: status >= 200 && status < 300, status, text: async () => body, json: async () => JSON.parse(body) });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

export const DEV_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface DevServerOptions {
  /** Data directory (default: a new temporary directory, removed on stop()). Reuse it to test a restart. */
  dir?: string;
  /** Default 0: a free port. */
  port?: number;
  restoreDelayMs?: number;
  dayMs?: number;
  buckets?: string[];
  verbose?: boolean;
  /** Waited before each S3 request (default 0); setLatency changes it. */
  latencyMs?: number;
  /** Restores complete only by completeRestores(), never by their delay. */
  manualClock?: boolean;
}

export interface DevStats {
  total: number;
  requests: Record<string, number>;
  /** By HTTP method. */
  methods: Record<string, number>;
  /** GetObject requests with a Range header. */
  rangedGets: number;
  /** GetObject requests by bucket/key. */
  getsByKey: Record<string, number>;
  /** Requests whose aws-chunked body was decoded. */
  awsChunked: number;
  errors: Record<string, number>;
  restores: Record<string, number>;
  bytesIn: number;
  bytesOut: number;
}

export interface DevServer {
  url: string;
  port: number;
  dir: string;
  pid: number;
  /** Request counters. Like resetStats, tried a second time if the first attempt fails. */
  stats(): Promise<DevStats>;
  resetStats(): Promise<void>;
  setLatency(ms: number): Promise<void>;
  /** Moves the server's clock forward. */
  advance(ms: number): Promise<void>;
  /** Completes every ongoing restore now; resolves to how many. */
  completeRestores(): Promise<number>;
  /** Create a bucket (an anonymous CreateBucket; s3rver allows it). */
  createBucket(name: string): Promise<void>;
  /**
   * Holds requests of `kind` whose `bucket/key` starts with `prefix` unanswered (with
   * `after`, only once a request of that kind and prefix was answered; with `limit`, the
   * first `limit` of them only) until openGate.
   */
  armGate(kind: string, prefix?: string, after?: { kind: string; prefix: string }, limit?: number): Promise<void>;
  /** Resolves when the gate holds a request (an event: no polling). */
  gateHeld(): Promise<{ kind: string; key: string }>;
  /** Lets held requests go on and disarms the gate; resolves to how many were held. */
  openGate(): Promise<number>;
  stop(): Promise<void>;
}

export function repoRoot(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(d, 'scripts', 's3-dev-server.mjs')) && existsSync(path.join(d, 'package.json'))) return d;
    const up = path.dirname(d);
    if (up === d) throw new Error('cannot find scripts/s3-dev-server.mjs above ' + fileURLToPath(import.meta.url));
    d = up;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A kept-alive connection to the dev server may have been closed by it: try again once.
async function retryOnce<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch {
    await sleep(100);
    return fn();
  }
}

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? makeTempDir('tsbak-s3dev-');
  try {
    return await launch(dir, opts, ownDir);
  } catch (e) {
    if (ownDir) removeDir(dir);
    throw e;
  }
}

/** startDevServer, stopped when `t` ends. */
export async function withDevServer(t: HasTeardown, opts: DevServerOptions = {}): Promise<DevServer> {
  const server = await startDevServer(opts);
  t.teardown(() => server.stop());
  return server;
}

/** Environment for the executables to reach `server` (endpoint, region, credentials), plus `extra`. */
export function devServerEnv(server: DevServer, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_S3: server.url,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: DEV_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: DEV_CREDENTIALS.secretAccessKey,
    ...extra,
  };
}

/**
 * Environment that moves a program's wall clock forward by `ms` (test/lib/clock-shift-preload),
 * to match a dev server advanced by as much: programs judge restore expiry by their clock.
 */
export function shiftedClockEnv(ms: number): Record<string, string> {
  if (ms === 0) return {};
  const preload = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), 'clock-shift-preload.js')).href;
  return { NODE_OPTIONS: `--import=${preload}`, TSBAK_TEST_CLOCK_SHIFT_MS: String(ms) };
}

async function launch(dir: string, opts: DevServerOptions, ownDir: boolean): Promise<DevServer> {
  const args = [
    path.join(repoRoot(), 'scripts', 's3-dev-server.mjs'),
    '--port', String(opts.port ?? 0),
    '--dir', dir,
    '--restore-delay-ms', String(opts.restoreDelayMs ?? 2000),
    '--day-ms', String(opts.dayMs ?? 86_400_000),
    '--exit-on-stdin-close',
    '--latency-ms', String(opts.latencyMs ?? 0),
    ...(opts.manualClock ? ['--manual-clock'] : []),
    ...(opts.verbose ? ['--verbose'] : []),
    ...(opts.buckets ?? []).flatMap((b) => ['--bucket', b]),
  ];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    if (opts.verbose) process.stderr.write(d);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`s3-dev-server did not start within 30 s: ${stderr}`));
    }, 30_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /s3-dev-server listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3-dev-server exited with ${code} before it was ready: ${stderr}`));
    });
  });
  const port = Number(new URL(url).port);

  // Not retried: advancing the clock twice would be wrong.
  async function devPost(route: string): Promise<unknown> {
    const r = await devFetch(`${url}/__dev/${route}`, { method: 'POST' });
    const body = await r.text();
    if (!r.ok) throw new Error(`s3-dev-server: POST /__dev/${route}: HTTP ${r.status} ${body}`);
    return JSON.parse(body);
  }

  let stopping: Promise<void> | null = null;
  return {
    url,
    port,
    dir,
    pid: child.pid!,
    stats: () =>
      retryOnce(async () => {
        const r = await devFetch(`${url}/__dev/stats`);
        return (await r.json()) as DevStats;
      }),
    resetStats: () =>
      retryOnce(async () => {
        await devFetch(`${url}/__dev/reset-stats`, { method: 'POST' });
      }),
    setLatency: (ms: number) => devPost(`latency?ms=${ms}`).then(() => undefined),
    advance: (ms: number) => devPost(`advance?ms=${ms}`).then(() => undefined),
    completeRestores: () => devPost('complete-restores').then((j) => Number((j as { completed: number }).completed)),
    async armGate(kind: string, prefix = '', after?: { kind: string; prefix: string }, limit?: number) {
      const q = new URLSearchParams({ kind, prefix, ...(after ? { after: `${after.kind}:${after.prefix}` } : {}), ...(limit ? { limit: String(limit) } : {}) });
      await devPost(`gate?${q}`);
    },
    async gateHeld() {
      const r = await devFetch(`${url}/__dev/gate/held`);
      if (!r.ok) throw new Error(`s3-dev-server: GET /__dev/gate/held: HTTP ${r.status}`);
      return (await r.json()) as { kind: string; key: string };
    },
    openGate: () => devPost('gate/open').then((j) => Number((j as { released: number }).released)),
    async createBucket(name: string) {
      const r = await devFetch(`${url}/${name}`, { method: 'PUT' });
      const body = await r.text();
      if (!r.ok) throw new Error(`cannot create bucket ${name}: HTTP ${r.status} ${body}`);
    },
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        if (ownDir) removeDir(dir);
      })();
      return stopping;
    },
  };
}

// scripts/s3-count-proxy.mjs as a child process in front of the S3 dev server: tests count
// the requests the executables make, by object. Stopped when `t` ends.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { repoRoot, type DevServer } from './s3-dev-server.js';
import type { HasTeardown } from './temp.js';

export interface CountingProxy {
  url: string;
  /** [method, path] of each request since the last reset (path-style: /bucket/key). */
  requests(): Promise<Array<[string, string]>>;
  reset(): Promise<void>;
  /** Each request since the last reset with its query (lists show their prefix), in the order they came. */
  timeline(): Promise<Array<{ method: string; path: string; range: string | null }>>;
  /** The timeline once `count` requests have come since the last reset, or what came within `timeoutMs`. */
  awaitRequests(count: number, timeoutMs?: number): Promise<Array<{ method: string; path: string; range: string | null }>>;
  /** Holds requests from now on: what arrives while held was sent without waiting for an answer. */
  hold(): Promise<void>;
  /** Passes the held requests on and stops holding. */
  release(): Promise<void>;
}

export async function withCountingProxy(t: HasTeardown, server: DevServer): Promise<CountingProxy> {
  const child = spawn(process.execPath, [path.join(repoRoot(), 'scripts', 's3-count-proxy.mjs'), '--target', server.url, '--exit-on-stdin-close'], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`s3-count-proxy exited with ${code} before it was ready`)));
  });
  return {
    url,
    requests: async () => (await (await fetch(`${url}/__proxy/requests`)).json()) as Array<[string, string]>,
    reset: async () => {
      await (await fetch(`${url}/__proxy/reset`, { method: 'POST' })).arrayBuffer();
    },
    timeline: async () => (await (await fetch(`${url}/__proxy/timeline`)).json()) as Array<{ method: string; path: string; range: string | null }>,
    awaitRequests: async (count, timeoutMs = 60_000) =>
      (await (await fetch(`${url}/__proxy/await?count=${count}&timeout_ms=${timeoutMs}`)).json()) as Array<{ method: string; path: string; range: string | null }>,
    hold: async () => {
      await (await fetch(`${url}/__proxy/hold`, { method: 'POST' })).arrayBuffer();
    },
    release: async () => {
      await (await fetch(`${url}/__proxy/release`, { method: 'POST' })).arrayBuffer();
    },
  };
}

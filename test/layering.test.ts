// The dependency rules of docs/DESIGN.md, checked on the sources rather than remembered.
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './lib/cli.js';

const SRC = path.join(ROOT, 'src');

function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = path.join(dir, e);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

interface Src {
  rel: string; // e.g. format/pack.ts
  layer: string; // e.g. format
  imports: string[]; // resolved: 'ours:<layer>/<file>' or the package specifier
  text: string;
}

const sources: Src[] = files(SRC).map((f) => {
  const text = readFileSync(f, 'utf8');
  const rel = path.relative(SRC, f);
  const imports: string[] = [];
  for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    const spec = (m[1] ?? m[2])!;
    if (spec.startsWith('.')) imports.push('ours:' + path.relative(SRC, path.resolve(path.dirname(f), spec)));
    else imports.push(spec);
  }
  return { rel, layer: rel.includes('/') ? rel.split('/')[0]! : rel.replace(/\.ts$/, ''), imports, text };
});

const ours = (s: Src) => s.imports.filter((i) => i.startsWith('ours:')).map((i) => i.slice(5));
const layerOf = (p: string) => (p.includes('/') ? p.split('/')[0]! : p.replace(/\.js$/, ''));
const IO = ['node:fs', 'fs', 'node:net', 'node:child_process', 'node:http', 'node:https', 'node:worker_threads'];

t.test('format and crypto are pure: no I/O, nothing above them', async (t) => {
  for (const s of sources.filter((s) => s.layer === 'format' || s.layer === 'crypto')) {
    for (const i of s.imports) t.notOk(IO.includes(i), `${s.rel} imports ${i}`);
    const allowed = s.layer === 'crypto' ? ['crypto'] : ['crypto', 'format', 'backend', 'errors'];
    for (const o of ours(s)) {
      // format may name backend *types* (StorageClass) only
      if (layerOf(o) === 'backend') t.match(s.text, /import type \{[^}]*\} from '\.\.\/backend\/backend\.js'/, `${s.rel}: type-only import of backend`);
      t.ok(allowed.includes(layerOf(o)), `${s.rel} imports ${o}`);
    }
  }
});

t.test('backend imports nothing of ours but errors', async (t) => {
  for (const s of sources.filter((s) => s.layer === 'backend')) {
    for (const o of ours(s)) t.ok(['backend', 'errors'].includes(layerOf(o)), `${s.rel} imports ${o}`);
  }
});

t.test('only backend and glacier import the AWS SDK', async (t) => {
  for (const s of sources) {
    if (s.imports.some((i) => i.startsWith('@aws-sdk/'))) t.ok(['backend', 'glacier'].includes(s.layer), `${s.rel} imports the AWS SDK`);
  }
});

t.test('only backend imports ssh2', async (t) => {
  for (const s of sources) {
    if (s.imports.some((i) => i === 'ssh2' || i.startsWith('ssh2/'))) t.equal(s.layer, 'backend', `${s.rel} imports ssh2`);
  }
});

t.test('fuse never imports glacier; nothing below cli imports cli', async (t) => {
  for (const s of sources) {
    if (s.layer === 'fuse') for (const o of ours(s)) t.not(layerOf(o), 'glacier', `${s.rel} imports ${o}`);
    if (s.layer !== 'cli') for (const o of ours(s)) t.not(layerOf(o), 'cli', `${s.rel} imports ${o}`);
  }
});

/**
 * What each folder may import of ours (besides itself): the layers of docs/DESIGN.md, cli on
 * top, then writer/restore/fuse/glacier, repo, format/backend, platform/crypto. writer,
 * restore and fuse reach storage only through repo (never backend); repo imports nothing above it.
 */
const MAY_IMPORT: Record<string, string[]> = {
  cli: ['writer', 'restore', 'fuse', 'glacier', 'repo', 'format', 'backend', 'platform', 'crypto', 'errors'],
  writer: ['glacier', 'repo', 'format', 'platform', 'crypto', 'errors'],
  restore: ['repo', 'format', 'platform', 'crypto', 'errors'],
  fuse: ['repo', 'format', 'platform', 'crypto', 'errors'],
  glacier: ['repo', 'format', 'backend', 'platform', 'crypto', 'errors'],
  repo: ['format', 'backend', 'platform', 'crypto', 'errors'],
  format: ['backend', 'crypto', 'errors'],
  backend: ['errors'],
  platform: [],
  crypto: [],
  errors: [],
};

t.test('every folder imports only the layers below it', async (t) => {
  for (const s of sources) {
    const allowed = MAY_IMPORT[s.layer];
    if (!allowed) {
      t.fail(`${s.rel}: folder ${s.layer} is not in the layering table (test/layering.test.ts, docs/DESIGN.md)`);
      continue;
    }
    for (const o of ours(s)) if (layerOf(o) !== s.layer) t.ok(allowed.includes(layerOf(o)), `${s.rel} imports ${o}`);
  }
});

/** The cycles of a graph (its strongly connected components of more than one node, or a node importing itself). */
function cycles(edges: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || edges.get(v)?.has(v)) found.push(scc.sort());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return found;
}

t.test('no import cycles between folders or between files', async (t) => {
  const folders = new Map<string, Set<string>>();
  const fileEdges = new Map<string, Set<string>>();
  for (const s of sources) {
    const from = s.rel.replace(/\.ts$/, '');
    for (const o of ours(s)) {
      if (layerOf(o) !== s.layer) (folders.get(s.layer) ?? folders.set(s.layer, new Set()).get(s.layer)!).add(layerOf(o));
      (fileEdges.get(from) ?? fileEdges.set(from, new Set()).get(from)!).add(o.replace(/\.js$/, ''));
    }
  }
  t.same(cycles(folders), [], 'folders');
  t.same(cycles(fileEdges), [], 'files');
  // The check itself finds a cycle.
  t.same(cycles(new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a'])], ['d', new Set(['a'])]])), [['a', 'b', 'c']]);
});

t.test('only cli calls process.exit', async (t) => {
  for (const s of sources.filter((s) => s.layer !== 'cli')) t.notMatch(s.text, /process\.exit\(/, `${s.rel} calls process.exit`);
});

t.test('the parts of an open repository are reached through the Repository facade', async (t) => {
  const parts = ['context', 'opening', 'key-store', 'index-store', 'blob-writer', 'blob-reader', 'snapshot-store', 'cold-facade', 'locks'].map((p) => `repo/${p}`);
  const wrong: string[] = [];
  for (const s of sources) {
    const self = s.rel.replace(/\.ts$/, '');
    for (const o of ours(s).map((o) => o.replace(/\.js$/, ''))) {
      if (s.layer !== 'repo' && parts.includes(o)) wrong.push(`${s.rel} imports ${o}: use repo/repository.ts`);
      if (parts.includes(self) && o === 'repo/repository') wrong.push(`${s.rel} imports the facade it is part of`);
    }
  }
  t.same(wrong, []);
});

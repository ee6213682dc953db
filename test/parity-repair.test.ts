// Parity across packs end to end, through the real programs: random whole-pack deletions
// and byte flips, M per group, across seeds: every snapshot restores identical after
// `repair packs`; M+1 losses in a group: a clear report of what cannot be rebuilt.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { decodeParityHeader, PARITY_PREFIX } from '../src/format/parity.js';
import { openBackend } from '../src/backend/open.js';
import { Repository } from '../src/repo/repository.js';
import { lastJson, run } from './lib/cli.js';
import { tempDir } from './lib/temp.js';

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, n);
    if (statSync(p).isFile()) out.set(n, createHash('sha256').update(readFileSync(p)).digest('hex'));
  }
  return out;
}

async function groups(repoDir: string): Promise<string[][]> {
  const repo = await Repository.open(await openBackend(repoDir), { password: 'correct horse' });
  const seen = new Map<string, string[]>();
  const dir = path.join(repoDir, 'packs', 'parity');
  for (const sub of readdirSync(dir)) for (const f of readdirSync(path.join(dir, sub))) {
    const bytes = readFileSync(path.join(dir, sub, f)).subarray(0, PARITY_PREFIX);
    const { header } = decodeParityHeader(repo.secrets.indexKey, bytes);
    const names = header.members.map((m) => path.join(repoDir, 'packs', m.kind, m.id.toString('hex').slice(0, 2), m.id.toString('hex')));
    seen.set(names.join(), names);
  }
  return [...seen.values()];
}

function makeRepo(t: any, k: number, m: number): { repo: string; src: string } {
  const src = tempDir(t);
  for (let i = 0; i < 24; i++) writeFileSync(path.join(src, `f${i}`), randomBytes(200_000 + i * 1000));
  const repo = path.join(tempDir(t), 'repo');
  t.equal(run('tsbak', ['init', repo, '--pack-size', '1', '--parity', `${k}+${m}`]).code, 0);
  t.equal(run('tsbak', ['backup', repo, src]).code, 0);
  writeFileSync(path.join(src, 'later'), randomBytes(500_000));
  t.equal(run('tsbak', ['backup', repo, src]).code, 0);
  return { repo, src };
}

function restoresIdentical(t: any, repo: string, src: string): void {
  const snaps = JSON.parse(run('tsbak', ['snapshots', repo, '--json']).stdout);
  t.equal(snaps.snapshots?.length ?? snaps.length, 2);
  const list: any[] = snaps.snapshots ?? snaps;
  for (const s of list) {
    const out = tempDir(t);
    const r = run('tsbak', ['restore', repo, s.id, '-t', out]);
    t.equal(r.code, 0, r.stderr);
    const got = files(path.join(out, src));
    const want = files(src);
    if (!list.indexOf(s)) want.delete('later');
    t.same(got, want, `snapshot ${s.id.slice(0, 8)} restores identical`);
  }
}

for (const seed of [1, 2, 3, 4]) {
  t.test(`seed ${seed}: M losses per group (deletions and byte flips) are rebuilt`, async (t) => {
    const [k, m] = seed % 2 ? [4, 2] : [3, 1];
    const { repo, src } = makeRepo(t, k, m);
    const r = rng(seed);
    const gs = await groups(repo);
    t.ok(gs.length >= 2, `${gs.length} groups`);
    for (const g of gs) {
      const victims = [...g].sort(() => r() - 0.5).slice(0, Math.min(m, g.length));
      for (const v of victims) {
        if (r() < 0.5) rmSync(v);
        else {
          const b = readFileSync(v);
          b[Math.floor(r() * b.length)]! ^= 1 + Math.floor(r() * 255);
          writeFileSync(v, b);
        }
      }
    }
    const check = run('tsbak', ['check', repo, '--read-data']);
    t.equal(check.code, 14, 'check finds the damage');
    t.match(check.stderr + check.stdout, /repairable: run tsbak repair packs/);
    const dry = run('tsbak', ['repair', 'packs', repo, '--dry-run']);
    t.equal(dry.code, 14, 'dry run reports damage');
    t.match(dry.stdout, /repairable: run tsbak repair packs/);
    const fix = run('tsbak', ['repair', 'packs', repo, '--json']);
    t.equal(fix.code, 0, fix.stderr);
    const rep = lastJson(fix.stdout);
    t.ok(rep.packs.length > 0 && rep.packs.every((p: any) => p.state === 'rebuilt'));
    restoresIdentical(t, repo, src);
    t.equal(run('tsbak', ['repair', 'packs', repo, '--dry-run']).code, 0, 'nothing left to repair');
  });
}

t.test('M+1 losses in a group: reported as lost, other groups rebuilt', async (t) => {
  const { repo } = makeRepo(t, 3, 1);
  const gs = (await groups(repo)).filter((g) => g.length >= 2);
  const [bad, other] = gs;
  rmSync(bad![0]!);
  rmSync(bad![1]!);
  rmSync(other![0]!);
  const fix = run('tsbak', ['repair', 'packs', repo, '--json']);
  t.equal(fix.code, 14);
  const rep = lastJson(fix.stdout);
  const state = (f: string) => rep.packs.find((p: any) => f.endsWith(p.name))?.state;
  t.equal(state(bad![0]!), 'unrepairable');
  t.equal(state(bad![1]!), 'unrepairable');
  t.equal(state(other![0]!), 'rebuilt');
  const text = run('tsbak', ['repair', 'packs', repo]);
  t.match(text.stdout, /cannot be rebuilt/);
});

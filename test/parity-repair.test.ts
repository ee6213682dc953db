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

/** Each file of each snapshot (by its path in the snapshot) with the packs its blobs are in. */
async function filePacks(repoDir: string): Promise<Map<string, Map<string, Set<string>>>> {
  const repo = await Repository.open(await openBackend(repoDir), { password: 'correct horse' });
  await repo.loadIndex();
  const out = new Map<string, Map<string, Set<string>>>();
  for (const s of await repo.listSnapshots()) {
    const files = new Map<string, Set<string>>();
    const walk = async (tree: Buffer, at: string): Promise<void> => {
      for (const n of (await repo.loadTree(tree)).nodes) {
        const p = `${at}/${n.name.toString()}`;
        if (n.type === 'dir' && n.subtree) await walk(n.subtree, p);
        else if (n.type === 'file') {
          const packs = new Set<string>();
          for (const id of n.content ?? []) {
            const loc = repo.locate(id)!;
            packs.add(path.join(repoDir, 'packs', loc.pack.kind, loc.pack.id.toString('hex').slice(0, 2), loc.pack.id.toString('hex')));
          }
          files.set(p, packs);
        }
      }
    };
    await walk(Buffer.from(s.info.tree, 'hex'), '');
    out.set(s.id, files);
  }
  return out;
}

t.test('M+1 losses in a group: reported as lost, other groups rebuilt, every other file restores', async (t) => {
  const { repo } = makeRepo(t, 3, 1);
  const dataOf = (g: string[]) => g.filter((p) => p.includes(`${path.sep}packs${path.sep}data${path.sep}`));
  const gs = (await groups(repo)).filter((g) => dataOf(g).length >= 2);
  t.ok(gs.length >= 2, `${gs.length} groups with two data packs`);
  const [bad, other] = gs;
  const lostPacks = dataOf(bad!).slice(0, 2);
  const byFile = await filePacks(repo);
  for (const p of lostPacks) rmSync(p);
  rmSync(dataOf(other!)[0]!);
  const fix = run('tsbak', ['repair', 'packs', repo, '--json']);
  t.equal(fix.code, 14);
  const rep = lastJson(fix.stdout);
  const state = (f: string) => rep.packs.find((p: any) => f.endsWith(p.name))?.state;
  t.equal(state(lostPacks[0]!), 'unrepairable');
  t.equal(state(lostPacks[1]!), 'unrepairable');
  t.equal(state(dataOf(other!)[0]!), 'rebuilt');
  const text = run('tsbak', ['repair', 'packs', repo]);
  t.match(text.stdout, /cannot be rebuilt/);

  // Every snapshot: the files whose blobs are all in surviving or rebuilt packs restore
  // identical; the others are named, with a non-zero exit, and not left behind half written.
  const lost = new Set(lostPacks);
  let named = 0;
  for (const [id, files] of byFile) {
    const target = tempDir(t);
    const r = run('tsbak', ['restore', repo, id, '-t', target, '--json']);
    const broken = [...files].filter(([, packs]) => [...packs].some((p) => lost.has(p))).map(([f]) => f);
    t.ok(broken.length > 0 && broken.length < files.size, `snapshot ${id.slice(0, 8)}: ${broken.length} of ${files.size} files have blobs in the lost packs`);
    t.equal(r.code, 3, `snapshot ${id.slice(0, 8)}: partial restore, exit 3`);
    const summary = lastJson(r.stdout);
    t.same(summary.errors.map((e: any) => e.path).sort(), broken.map((f) => path.join(target, f)).sort(), 'exactly the files with lost blobs are reported, by name');
    t.comment(r.stderr.split('\n')[0]!);
    for (const f of broken) t.match(r.stderr, f, `stderr names ${f}`);
    t.equal(summary.files, files.size - broken.length, 'the summary counts only the files restored');
    for (const [f] of files) {
      const at = path.join(target, f);
      if (broken.includes(f)) t.throws(() => statSync(at), `${f} is not left half written`);
      else t.equal(createHash('sha256').update(readFileSync(at)).digest('hex'), createHash('sha256').update(readFileSync(f)).digest('hex'), `${f} restores identical`);
    }
    named += broken.length;
  }
  t.ok(named > 0);
});

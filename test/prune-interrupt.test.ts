// A prune killed at any step (TSBAK_PRUNE_EXIT_AT makes it SIGKILL itself there: no
// cleanup runs, its lock stays) leaves a repository where check --read-data passes and every kept
// snapshot restores identical; a second prune then finishes the work.
import t, { type Test } from 'tap';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { lastJson, run } from './lib/cli.js';
import { listFiles } from './lib/files.js';
import { tempDir } from './lib/temp.js';
import { compareTrees, walkTree } from './lib/tree-compare.js';

const dir = tempDir(t, 'tsbak-prune-int-');
const base = path.join(dir, 'base');
const src = path.join(dir, 'src');
mkdirSync(src);
t.equal(run('tsbak', ['init', base]).code, 0);
writeFileSync(path.join(src, 'stays'), randomBytes(300_000));
for (let i = 0; i < 5; i++) {
  writeFileSync(path.join(src, 'changes'), randomBytes(400_000));
  writeFileSync(path.join(src, `small${i}`), `small ${i}\n`.repeat(50));
  t.equal(run('tsbak-write', [base, src, '-q']).code, 0);
}
t.equal(run('tsbak', ['forget', base, '--keep-last', '2']).code, 0);
const kept = (JSON.parse(run('tsbak', ['snapshots', base, '--json']).stdout) as Array<{ id: string }>).map((s) => s.id);
t.equal(kept.length, 2);
const expected = new Map<string, ReturnType<typeof walkTree>>();
for (const id of kept) {
  const target = path.join(dir, 'expected', id);
  t.equal(run('tsbak', ['restore', base, id, '--target', target]).code, 0);
  expected.set(id, walkTree(path.join(target, src)));
}
const plan = lastJson(run('tsbak', ['prune', base, '--dry-run', '--json']).stdout);
t.ok(plan.packs.delete_packs >= 2 && plan.packs.repack_packs >= 1, 'there is work at every step');

function sound(t: Test, repo: string, label: string): void {
  const check = run('tsbak', ['check', repo, '--read-data']);
  t.equal(check.code, 0, `${label}: check --read-data passes\n${check.stdout}${check.stderr}`);
  for (const id of kept) {
    const target = path.join(dir, 'out', `${path.basename(repo)}-${label}-${id}`);
    const r = run('tsbak', ['restore', repo, id, '--target', target]);
    t.equal(r.code, 0, `${label}: restore ${id.slice(0, 8)}: ${r.stderr}`);
    t.same(compareTrees(expected.get(id)!, walkTree(path.join(target, src)), { skip: ['atimeNs'] }), [], `${label}: ${id.slice(0, 8)} identical`);
  }
}

const steps = ['repacked', 'index-written', 'old-index-deleted', 'old-index-deleted:2', 'pack-deleted', 'pack-deleted:2', 'packs-deleted'];
for (const step of steps) {
  t.test(`stopped after ${step}`, async (t) => {
    const repo = path.join(dir, `r-${step.replace(':', '-')}`);
    cpSync(base, repo, { recursive: true });
    const r = run('tsbak', ['prune', repo], { TSBAK_PRUNE_EXIT_AT: step });
    t.equal(r.code, -1, `killed there: ${r.stderr}`);
    sound(t, repo, 'stopped');
    // The lock it left belongs to a process of this host that is gone: stale, not in the way.
    const again = run('tsbak', ['prune', repo, '--json']);
    t.equal(again.code, 0, again.stderr);
    const after = listFiles(repo).filter((f) => f.startsWith('packs/')).length;
    const done = lastJson(run('tsbak', ['prune', repo, '--dry-run', '--json']).stdout);
    t.equal(done.packs.delete_packs + done.packs.repack_packs, 0, `nothing left to do (${after} packs)`);
    sound(t, repo, 'finished');
  });
}

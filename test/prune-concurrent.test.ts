// A backup and a prune, each in its own process, started together, several rounds: the
// locks let one through (or neither), never both at once. The prune either ran or exited
// 13, the backup either completed or exited 13, and every snapshot that completed and was
// not forgotten restores identical to what it backed up.
import t from 'tap';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { lastJson, run, start } from './lib/cli.js';
import { tempDir } from './lib/temp.js';
import { compareTrees, walkTree } from './lib/tree-compare.js';

const dir = tempDir(t, 'tsbak-prune-conc-');
const repo = path.join(dir, 'repo');
const src = path.join(dir, 'src');
mkdirSync(src);
t.equal(run('tsbak', ['init', repo]).code, 0);

function finish(p: ChildProcess): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  p.stdout!.on('data', (d) => (stdout += d));
  p.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

/** What each completed snapshot backed up (a copy of the source as it was). */
const backedUp = new Map<string, string>();
const ROUNDS = 5;
const outcomes: string[] = [];
t.test('rounds of a backup and a prune started together', async (t) => {
  for (let round = 0; round < ROUNDS; round++) {
    writeFileSync(path.join(src, 'changes'), randomBytes(600_000));
    writeFileSync(path.join(src, `small${round}`), `round ${round}\n`.repeat(100));
    const ref = path.join(dir, 'ref', String(round));
    cpSync(src, ref, { recursive: true });
    // Something for prune to delete: keep the two newest.
    if (round >= 2) {
      const f = run('tsbak', ['forget', repo, '--keep-last', '2', '--json']);
      t.equal(f.code, 0, f.stderr);
      for (const id of lastJson(f.stdout).removed) backedUp.delete(id);
    }
    const [b, p] = await Promise.all([finish(start('tsbak-write', [repo, src, '--json'])), finish(start('tsbak', ['prune', repo, '--json']))]);
    t.ok(b.code === 0 || b.code === 13, `round ${round}: backup exits 0 or 13 (${b.code}): ${b.stderr}`);
    t.ok(p.code === 0 || p.code === 13, `round ${round}: prune exits 0 or 13 (${p.code}): ${p.stderr}`);
    if (b.code === 13) t.match(b.stderr, /lock/i, 'backup says it met a lock');
    if (p.code === 13) t.match(p.stderr, /lock/i, 'prune says it met a lock');
    if (b.code === 0) backedUp.set(lastJson(b.stdout).snapshot_id, ref);
    outcomes.push(`backup ${b.code}, prune ${p.code}`);
  }
  t.comment(outcomes.join('; '));
});

t.test('every completed snapshot not forgotten restores identical; check passes', async (t) => {
  // One more prune alone, to leave nothing half done.
  const p = run('tsbak', ['prune', repo]);
  t.equal(p.code, 0, p.stderr);
  const check = run('tsbak', ['check', repo, '--read-data']);
  t.equal(check.code, 0, check.stdout + check.stderr);
  const listed = new Set((JSON.parse(run('tsbak', ['snapshots', repo, '--json']).stdout) as Array<{ id: string }>).map((s) => s.id));
  for (const [id, ref] of backedUp) {
    t.ok(listed.has(id), `snapshot ${id.slice(0, 8)} is there`);
    const target = path.join(dir, 'out', id);
    const r = run('tsbak', ['restore', repo, id, '--target', target]);
    t.equal(r.code, 0, r.stderr);
    t.same(compareTrees(walkTree(ref), walkTree(path.join(target, src)), { skip: ['atimeNs', 'mtimeNs'] }), [], `${id.slice(0, 8)} identical`);
  }
});

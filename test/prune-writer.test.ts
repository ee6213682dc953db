// Prune with a writer key's data: the master does not re-sign another key's index entries
// (dedup would then trust them), so a writer's index file is kept as it is, with its packs,
// while any of them is in use, and goes once none is. Every kept snapshot restores.
import t from 'tap';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { lastJson, run } from './lib/cli.js';
import { tempDir } from './lib/temp.js';
import { compareTrees, walkTree } from './lib/tree-compare.js';

const dir = tempDir(t, 'tsbak-prune-writer-');
const repo = path.join(dir, 'repo');
const key = path.join(dir, 'laptop.key');
const wsrc = path.join(dir, 'wsrc');
const msrc = path.join(dir, 'msrc');
mkdirSync(wsrc);
mkdirSync(msrc);
t.equal(run('tsbak', ['init', repo]).code, 0);
t.equal(run('tsbak', ['key', 'add-writer', repo, '--name', 'laptop', '--out', key]).code, 0);

t.test("a writer's index files are kept whole while used, and go when not", async (t) => {
  writeFileSync(path.join(wsrc, 'a'), randomBytes(300_000));
  const w1 = lastJson(run('tsbak-write', [repo, wsrc, '--key-file', key, '--json']).stdout).snapshot_id;
  writeFileSync(path.join(msrc, 'm'), randomBytes(300_000));
  t.equal(run('tsbak-write', [repo, msrc, '-q']).code, 0);
  rmSync(path.join(wsrc, 'a'));
  writeFileSync(path.join(wsrc, 'b'), randomBytes(300_000));
  const w2 = lastJson(run('tsbak-write', [repo, wsrc, '--key-file', key, '--json']).stdout).snapshot_id;
  const ref = walkTree(wsrc);

  const dry = lastJson(run('tsbak', ['prune', repo, '--dry-run', '--json']).stdout);
  const writerFiles = (dry.index_files.kept as Array<{ name: string; signer: string }>).filter((f) => f.signer !== 'master');
  t.ok(writerFiles.length >= 2, "the writer's index files are kept as they are");
  t.same(dry.index_files.deleted, [], 'none unused yet');

  const f = run('tsbak', ['forget', repo, '--keep-last', '1', '--prune', '--json']);
  t.equal(f.code, 0, f.stderr);
  const j = lastJson(f.stdout);
  t.same(j.removed, [w1], "the writer's older snapshot is forgotten (one per host and paths kept)");
  const kept = (j.prune.index_files.kept as Array<{ name: string }>).map((x) => x.name);
  for (const n of kept) t.ok(existsSync(path.join(repo, n)), `${n} kept as it was`);
  t.ok(kept.length < writerFiles.length, `the file only the forgotten snapshot used is gone (${writerFiles.length} -> ${kept.length})`);
  t.same([...j.prune.index_files.deleted, ...kept].sort(), writerFiles.map((w) => w.name).sort(), 'each writer file kept or deleted');
  for (const w of writerFiles) if (!kept.includes(w.name)) t.notOk(existsSync(path.join(repo, w.name)), `${w.name.slice(0, 16)} deleted`);

  const check = run('tsbak', ['check', repo, '--read-data']);
  t.equal(check.code, 0, check.stdout + check.stderr);
  const target = path.join(dir, 'out');
  t.equal(run('tsbak', ['restore', repo, w2, '--target', target]).code, 0);
  t.same(compareTrees(ref, walkTree(path.join(target, wsrc)), { skip: ['atimeNs'] }), [], "the writer's kept snapshot restores identical");
  t.ok(readdirSync(path.join(repo, 'index')).length >= 2, 'a compact file of the master, and the writer file');
});

// The --json of find, diff, stats, tag, forget, prune, unlock, repair, recover, config show,
// check and cost, through the real CLI on a small local repository: one document on stdout,
// every field snake_case and in its section of docs/JSON.md. The repository is made so that
// the arrays hold elements (two snapshots that differ, a forget that removes one, a prune
// that repacks, a lost pack, a stale lock, an unfinished write), whose fields are checked too.
import t, { type Test } from 'tap';
import { cpSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { newRepo, run, start } from './lib/cli.js';
import { checkAgainstDoc } from './lib/json-doc.js';
import { tempDir } from './lib/temp.js';

/** Runs `tsbak args`, expects exit `code`, parses all of stdout as one document and checks it against `section`. */
function jsonOf(t: Test, section: string, args: string[], code = 0): any {
  const r = run('tsbak', args);
  t.equal(r.code, code, `tsbak ${args.join(' ')}: exit ${code} (${r.stderr})`);
  const j = JSON.parse(r.stdout); // one document: the whole of stdout
  checkAgainstDoc(t, section, j);
  return j;
}

/** Files of a directory, recursively, by modification time (oldest first). */
function byMtime(dir: string): string[] {
  const all = (readdirSync(dir, { recursive: true }) as string[]).map((f) => path.join(dir, f)).filter((f) => statSync(f).isFile());
  return all.sort((a, b) => Number(statSync(a, { bigint: true }).mtimeNs - statSync(b, { bigint: true }).mtimeNs));
}

/** Two snapshots that differ: a file changed, one removed, one added, a symlink. */
function twoSnapshots(t: Test): { repo: string; src: string } {
  const src = tempDir(t);
  writeFileSync(path.join(src, 'a'), 'first a\n');
  writeFileSync(path.join(src, 'b'), 'b, removed later\n');
  mkdirSync(path.join(src, 'd'));
  writeFileSync(path.join(src, 'd', 'c'), 'c stays\n');
  symlinkSync('a', path.join(src, 'link-a'));
  const repo = newRepo(t);
  t.equal(run('tsbak-write', [repo, src]).code, 0);
  writeFileSync(path.join(src, 'a'), 'second a, longer\n');
  rmSync(path.join(src, 'b'));
  writeFileSync(path.join(src, 'n'), 'new\n');
  t.equal(run('tsbak-write', [repo, src, '--tag', 'second']).code, 0);
  return { repo, src };
}

const copyRepo = (t: Test, repo: string) => {
  const to = path.join(tempDir(t), 'repo');
  cpSync(repo, to, { recursive: true });
  return to;
};

t.test('find, diff, stats, tag, config show, check, cost', async (t) => {
  const { repo } = twoSnapshots(t);
  const snaps = JSON.parse(run('tsbak', ['snapshots', repo, '--json']).stdout);
  t.equal(snaps.length, 2);

  const find = jsonOf(t, '`tsbak find --json`', ['find', repo, 'a', 'link-*', '--json']);
  t.equal(find.snapshots.length, 2);
  t.ok(find.snapshots[0].matches.some((m: any) => m.type === 'symlink' && m.target === 'a'), 'a symlink match with its target');
  const none = jsonOf(t, '`tsbak find --json`', ['find', repo, 'nosuch', '--json']);
  t.same(none.snapshots, []);

  const diff = jsonOf(t, '`tsbak diff --json`', ['diff', repo, snaps[0].id, snaps[1].id, '--json']);
  t.same(new Set(diff.changes.map((c: any) => c.modifier)), new Set(['+', '-', 'M', 'U']));
  t.equal(diff.stats.files.added, 1);

  for (const mode of ['restore-size', 'files-by-contents', 'raw-data']) {
    const s = jsonOf(t, '`tsbak stats --json`', ['stats', repo, '--mode', mode, '--json']);
    t.equal(s.mode, mode);
  }

  const tag = jsonOf(t, '`tsbak tag --json`', ['tag', repo, '--add', 'x', '--json']);
  t.equal(tag.changed.length, 2);
  t.equal(tag.unchanged, 0);

  const config = jsonOf(t, '`tsbak config show --json`', ['config', 'show', repo, '--json']);
  t.equal(config.settings_seq, 0);

  const full = jsonOf(t, '`tsbak check --json`', ['check', repo, '--read-data', '--json']);
  t.ok(full.packs_read > 0);
  t.same(full.cold_not_read, { packs: 0, bytes: 0 });
  const subset = jsonOf(t, '`tsbak check --json`', ['check', repo, '--read-data-subset', '1/2', '--json']);
  t.ok(subset.packs_read <= full.packs_read);
  const plain = jsonOf(t, '`tsbak check --json`', ['check', repo, '--json']);
  t.notOk('packs_read' in plain, 'packs_read only with --read-data(-subset)');

  const cost = jsonOf(t, '`tsbak cost --json`', ['cost', repo, '--json']);
  t.equal(cost.prices.local, true);
  t.ok(cost.by_host.length >= 1 && cost.what_if.length >= 1);
  t.equal(cost.restore.days, 7);
  t.notOk('forget_policy' in cost);
  const policy = jsonOf(t, '`tsbak cost --json`', ['cost', repo, '--keep-last', '1', '--json']);
  t.equal(policy.forget_policy.removed_snapshots.length, 1);
  t.equal(policy.forget_policy.kept_snapshots, 1);
});

t.test('forget, prune, unlock', async (t) => {
  const { repo } = twoSnapshots(t);
  // What a killed writer leaves: prune removes it and says so.
  writeFileSync(path.join(repo, 'packs', 'data', '.tmp-killed'), 'partial');
  const dry = jsonOf(t, '`tsbak forget --json`', ['forget', repo, '--keep-last', '1', '--dry-run', '--prune', '--json']);
  t.equal(dry.dry_run, true);
  t.equal(dry.groups[0].remove.length, 1);
  t.equal(dry.prune.result, null, 'a dry run does nothing');

  const other = copyRepo(t, repo);
  // --max-unused 0%: the few hundred unused bytes are near the default 5% of these tiny packs (their size varies with the temp path's trees).
  const withPrune = jsonOf(t, '`tsbak forget --json`', ['forget', other, '--keep-last', '1', '--prune', '--max-unused', '0%', '--json']);
  t.equal(withPrune.removed.length, 1);
  t.ok(withPrune.prune.result.packs_deleted >= 1);

  const forget = jsonOf(t, '`tsbak forget --json`', ['forget', repo, '--keep-last', '1', '--json']);
  t.equal(forget.prune, null, 'without --prune');
  const named = jsonOf(t, '`tsbak forget --json`', ['forget', other, withPrune.groups[0].keep[0].id, '--dry-run', '--json']);
  t.same(named.groups, []);

  const plan = jsonOf(t, '`tsbak prune --json`', ['prune', repo, '--dry-run', '--max-unused', '0%', '--json']);
  t.equal(plan.result, null);
  t.equal(plan.unfinished.length, 1, 'the unfinished write');
  t.ok(plan.decisions.some((d: any) => d.fate !== 'keep'), 'something to delete or repack');
  const done = jsonOf(t, '`tsbak prune --json`', ['prune', repo, '--max-unused', '0%', '--json']);
  t.equal(done.result.unfinished_removed, 1);
  t.ok(done.result.packs_deleted >= 1);

  // A stale lock: its process (of this host) is gone.
  const gone = start('tsbak', ['--version']);
  await new Promise((r) => gone.on('exit', r));
  mkdirSync(path.join(repo, 'locks'), { recursive: true });
  writeFileSync(path.join(repo, 'locks', 'ab'.repeat(16)), JSON.stringify({ host: hostname(), pid: gone.pid, time: new Date().toISOString(), exclusive: true, operation: 'prune' }));
  const unlock = jsonOf(t, '`tsbak unlock --json`', ['unlock', repo, '--json']);
  t.equal(unlock.removed.length, 1);
  t.ok(unlock.removed[0].stale);
});

t.test('repair index, repair snapshots, recover', async (t) => {
  const { repo } = twoSnapshots(t);
  const recoverFrom = copyRepo(t, repo);
  // The second backup's data pack is lost.
  const lost = byMtime(path.join(repo, 'packs', 'data')).pop()!;
  rmSync(lost);
  const index = jsonOf(t, '`tsbak repair index --json`', ['repair', 'index', repo, '--json']);
  t.ok(index.index_files_removed.length >= 1, 'the index file that lists the lost pack');
  t.ok(index.index_files_written.length >= 1);
  const dryIndex = jsonOf(t, '`tsbak repair index --json`', ['repair', 'index', repo, '--dry-run', '--read-data', '--json']);
  t.equal(dryIndex.dry_run, true);
  t.equal(typeof dryIndex.blobs_verified, 'number');

  const snaps = jsonOf(t, '`tsbak repair snapshots --json`', ['repair', 'snapshots', repo, '--json']);
  t.equal(snaps.repaired.length, 1);
  t.ok(snaps.repaired[0].affected.length >= 1);

  rmSync(path.join(recoverFrom, 'index'), { recursive: true });
  const target = path.join(tempDir(t), 'out');
  const rec = jsonOf(t, '`tsbak recover --json`', ['recover', recoverFrom, '--target', target, '--json']);
  t.equal(rec.restored.length, 2);
  t.ok(rec.restored.every((r: any) => r.kind === 'snapshot' && r.files > 0));
});

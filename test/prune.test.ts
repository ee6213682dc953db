// forget and prune end to end on a local repository, with the real programs: a dry run
// changes nothing; forget removes exactly the snapshots it lists; after prune every kept
// snapshot restores identical to what it restored before, check --read-data passes, the
// repository is smaller, partly used packs were repacked, and an orphan pack and a temp
// file are gone. A write-only key is refused.
import t from 'tap';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { lastJson, run } from './lib/cli.js';
import { listFiles } from './lib/files.js';
import { tempDir } from './lib/temp.js';
import { compareTrees, walkTree } from './lib/tree-compare.js';

const dir = tempDir(t, 'tsbak-prune-');
const repo = path.join(dir, 'repo');
const src = path.join(dir, 'src');
mkdirSync(src);
t.equal(run('tsbak', ['init', repo]).code, 0);

/** Every object of the repository with its size: what "nothing changed" compares. */
function objects(): string[] {
  return listFiles(repo)
    .filter((f) => !f.startsWith('locks/'))
    .map((f) => `${f} ${statSync(path.join(repo, f)).size}`)
    .sort();
}
function repoBytes(): number {
  return listFiles(repo).reduce((s, f) => s + statSync(path.join(repo, f)).size, 0);
}

// Six backups: a file that stays, one replaced each time (its own pack), small files that
// accumulate (sharing packs with the replaced ones: those packs become partly used).
writeFileSync(path.join(src, 'stays'), randomBytes(700_000));
for (let i = 0; i < 6; i++) {
  writeFileSync(path.join(src, 'changes'), randomBytes(2_000_000));
  writeFileSync(path.join(src, `small${i}`), `small file ${i}\n`.repeat(100));
  const w = run('tsbak-write', [repo, src, '--json', '--tag', i % 2 ? 'odd' : 'even']);
  t.equal(w.code, 0, w.stderr);
}
const snaps = JSON.parse(run('tsbak', ['snapshots', repo, '--json']).stdout) as Array<{ id: string; time: string; tags: string[] }>;
t.equal(snaps.length, 6);

// What each snapshot restores to now.
const before = new Map<string, ReturnType<typeof walkTree>>();
for (const s of snaps) {
  const target = path.join(dir, 'before', s.id);
  const r = run('tsbak', ['restore', repo, s.id, '--target', target]);
  t.equal(r.code, 0, r.stderr);
  before.set(s.id, walkTree(path.join(target, src)));
}

t.test('refusals', async (t) => {
  const none = run('tsbak', ['forget', repo]);
  t.equal(none.code, 2, 'no policy: usage error');
  t.match(none.stderr, /no policy given/);
  t.equal(run('tsbak', ['forget', repo, '--keep-within', '3 days']).code, 2);
  t.match(run('tsbak', ['prune', repo, '--max-unused', 'lots']).stderr, /--max-unused/);
  const keyFile = path.join(dir, 'writer.key');
  t.equal(run('tsbak', ['key', 'add-writer', repo, '--name', 'w', '--out', keyFile]).code, 0);
  for (const cmd of [['forget', repo, '--keep-last', '1'], ['prune', repo], ['cost', repo, '--keep-last', '1']]) {
    const r = run('tsbak', [...cmd, '--key-file', keyFile]);
    t.equal(r.code, 12, `${cmd[0]} with a write-only key exits 12`);
    t.match(r.stderr, /needs the full key/);
  }
});

let removed: string[] = [];
t.test('forget: a dry run changes nothing; the run removes exactly what it listed', async (t) => {
  const objs = objects();
  const dry = run('tsbak', ['forget', repo, '--keep-last', '2', '--keep-tag', 'even', '--dry-run', '--json']);
  t.equal(dry.code, 0, dry.stderr);
  const plan = lastJson(dry.stdout);
  t.equal(plan.dry_run, true);
  t.equal(plan.groups.length, 1);
  const keep = plan.groups[0].keep as Array<{ id: string; reasons: string[] }>;
  // Snapshots 0..5: even tags on 0, 2, 4; the last two are 4 and 5.
  const byId = (i: number) => snaps[i]!.id;
  t.same(keep.map((k) => k.id).sort(), [byId(0), byId(2), byId(4), byId(5)].sort());
  t.same(keep.find((k) => k.id === byId(4))!.reasons, ['last', 'tag even']);
  t.same(keep.find((k) => k.id === byId(0))!.reasons, ['tag even']);
  t.same([...plan.removed].sort(), [byId(1), byId(3)].sort());
  t.same(objects(), objs, 'the dry run changed nothing');

  const real = run('tsbak', ['forget', repo, '--keep-last', '2', '--keep-tag', 'even']);
  t.equal(real.code, 0, real.stderr);
  t.match(real.stdout, /remove 2 snapshots/);
  t.match(real.stdout, /last, tag even/);
  removed = [byId(1), byId(3)];
  const left = (JSON.parse(run('tsbak', ['snapshots', repo, '--json']).stdout) as Array<{ id: string }>).map((s) => s.id).sort();
  t.same(left, snaps.map((s) => s.id).filter((id) => !removed.includes(id)).sort(), 'exactly the listed ones are gone');
  const again = run('tsbak', ['forget', repo, '--keep-last', '1', '--host', 'no-such-host', '--json']);
  t.same(lastJson(again.stdout).removed, [], 'a filter selecting nothing removes nothing');
  t.same(JSON.parse(run('tsbak', ['snapshots', repo, '--json']).stdout).length, 4);
});

t.test('prune: orphans and temp files removed, packs repacked, kept snapshots identical, smaller', async (t) => {
  // An orphan pack (as a backup that died before its index left it) and a temp file.
  const somePack = listFiles(repo).find((f) => f.startsWith('packs/data/'))!;
  const orphanId = randomBytes(32).toString('hex');
  const orphan = path.join(repo, 'packs', 'data', orphanId.slice(0, 2), orphanId);
  mkdirSync(path.dirname(orphan), { recursive: true });
  copyFileSync(path.join(repo, somePack), orphan);
  const tmp = path.join(repo, '.tmp-0123456789abcdef');
  writeFileSync(tmp, randomBytes(5000));
  const tmp2 = path.join(repo, 'index', '.tmp-00aa00aa00aa00aa');
  writeFileSync(tmp2, 'partial');
  const objs = objects();
  const size0 = repoBytes();

  const dry = run('tsbak', ['prune', repo, '--dry-run', '--json']);
  t.equal(dry.code, 0, dry.stderr);
  const p = lastJson(dry.stdout);
  t.equal(p.packs.unindexed_packs, 1, 'the orphan is found');
  t.ok(p.packs.repack_packs > 0, 'partly used packs to repack');
  t.ok(p.packs.delete_packs >= 1);
  t.equal(p.unfinished.length, 2, 'two temp files');
  t.ok(p.monthly_savings_usd > 0);
  t.equal(p.early_deletion_usd, 0, 'STANDARD: no minimum duration');
  t.same(objects(), objs, 'the dry run changed nothing');
  t.ok(existsSync(tmp));
  const human = run('tsbak', ['prune', repo, '--dry-run']);
  t.match(human.stdout, /monthly savings: \$/);
  t.match(human.stdout, /one-time costs: \$.*early deletion \$0, restores \$0, requests \$/);
  t.match(human.stdout, /break-even: /);

  const r = run('tsbak', ['prune', repo, '--json']);
  t.equal(r.code, 0, r.stderr);
  const res = lastJson(r.stdout).result;
  t.ok(res.packs_repacked > 0, 'repacked');
  t.ok(res.blobs_repacked > 0);
  t.equal(res.unfinished_removed, 2);
  t.notOk(existsSync(orphan), 'orphan pack deleted');
  t.notOk(existsSync(tmp), 'temp file deleted');
  t.notOk(existsSync(tmp2), 'temp file next to an object deleted');
  t.ok(repoBytes() < size0 - 2 * 2_000_000, `smaller: ${size0} -> ${repoBytes()}`);
  t.equal(readdirSync(path.join(repo, 'locks')).length, 0, 'no lock left');

  const check = run('tsbak', ['check', repo, '--read-data']);
  t.equal(check.code, 0, check.stdout + check.stderr);
  t.notMatch(check.stdout + check.stderr, /not in any index/);

  for (const s of snaps.filter((s) => !removed.includes(s.id))) {
    const target = path.join(dir, 'after', s.id);
    const rr = run('tsbak', ['restore', repo, s.id, '--target', target]);
    t.equal(rr.code, 0, rr.stderr);
    t.same(compareTrees(before.get(s.id)!, walkTree(path.join(target, src)), { skip: ['atimeNs'] }), [], `snapshot ${s.id.slice(0, 8)} restores identical`);
  }

  // Nothing left to do: a second prune deletes and repacks nothing, and keeps the index as it is.
  const idx = readdirSync(path.join(repo, 'index')).sort();
  const second = lastJson(run('tsbak', ['prune', repo, '--json']).stdout);
  t.equal(second.packs.delete_packs, 0);
  t.equal(second.packs.repack_packs, 0);
  t.same(readdirSync(path.join(repo, 'index')).sort(), idx, 'index unchanged');
  rmSync(path.join(dir, 'after'), { recursive: true, force: true });
});

t.test('forget --prune --dry-run counts only the snapshots it keeps', async (t) => {
  const objs = objects();
  const r = run('tsbak', ['forget', repo, '--keep-last', '1', '--prune', '--dry-run', '--json']);
  t.equal(r.code, 0, r.stderr);
  const j = lastJson(r.stdout);
  t.equal(j.removed.length, 3);
  t.equal(j.prune.snapshots, 1, 'prune counted the one kept');
  t.ok(j.prune.packs.delete_packs + j.prune.packs.repack_packs > 0, 'and found data to free');
  t.same(objects(), objs, 'nothing changed');
  // tsbak cost --keep-*: the same policy, the same savings.
  const c = run('tsbak', ['cost', repo, '--keep-last', '1', '--json']);
  t.equal(c.code, 0, c.stderr);
  const w = lastJson(c.stdout).forget_policy;
  t.equal(w.removed_snapshots.length, 3);
  t.equal(w.monthly_savings_usd, j.prune.monthly_savings_usd, 'cost --keep-last 1 shows the savings of forget --keep-last 1 --prune');
  t.equal(w.packs.delete_packs, j.prune.packs.delete_packs);
  t.match(run('tsbak', ['cost', repo, '--keep-last', '1']).stdout, /with this forget policy: 3 of 4 snapshots removed[^]*monthly savings: \$/);
  t.same(objects(), objs, 'cost changed nothing');
});

t.test('a snapshot that cannot be read stops prune; forget <id> removes it', async (t) => {
  const bytes = Buffer.from('{"v":1,"signer":"master","sealed":"AAAA","sig":"AAAA"}');
  const id = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(path.join(repo, 'snapshots', id), bytes);
  const objs = objects();
  const p = run('tsbak', ['prune', repo]);
  t.equal(p.code, 14, 'prune stops: damage');
  t.match(p.stderr, new RegExp(`snapshot ${id.slice(0, 8)} cannot be read.*forget it`));
  t.same(objects(), objs, 'nothing deleted');
  t.equal(run('tsbak', ['forget', repo, id.slice(0, 10), '--keep-last', '1']).code, 2, 'ids or a policy, not both');
  t.equal(run('tsbak', ['forget', repo, 'ffffffffff']).code, 16, 'an id that is not there');
  const dry = run('tsbak', ['forget', repo, id.slice(0, 10), '--dry-run', '--json']);
  t.same(lastJson(dry.stdout).removed, [id]);
  t.ok(existsSync(path.join(repo, 'snapshots', id)), 'a dry run removes nothing');
  const f = run('tsbak', ['forget', repo, id.slice(0, 10), '--prune']);
  t.equal(f.code, 0, f.stderr);
  t.notOk(existsSync(path.join(repo, 'snapshots', id)), 'removed by its id');
  t.equal(run('tsbak', ['check', repo]).code, 0);
});

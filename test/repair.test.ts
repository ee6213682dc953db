// repair index, repair snapshots and recover, through the real programs, on repositories
// damaged the way they get damaged: an index file deleted, a pack header damaged, a data
// pack deleted, index/ and snapshots/ gone. What is left must restore identical to the
// source and pass check --read-data.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, watch, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { parseTar } from '../src/format/tar.js';
import type { TreeNode } from '../src/format/tree.js';
import { openBackend } from '../src/backend/open.js';
import { packName } from '../src/repo/layout.js';
import { Repository } from '../src/repo/repository.js';
import { lastJson, newRepo, run, start, testEnv } from './lib/cli.js';
import { compareTrees, walkTree, type Entry } from './lib/tree-compare.js';
import { tempDir } from './lib/temp.js';
import { asWriter, repoWithWriter } from './lib/hostile.js';

/** A small tree: files of one and several chunks, an empty one, a symlink, nested directories. */
function sourceTree(t: Test): string {
  const src = tempDir(t);
  writeFileSync(path.join(src, 'small.txt'), randomBytes(20_000));
  writeFileSync(path.join(src, 'large.bin'), randomBytes(3 << 20));
  writeFileSync(path.join(src, 'empty'), '');
  mkdirSync(path.join(src, 'sub', 'deeper'), { recursive: true });
  writeFileSync(path.join(src, 'sub', 'note'), 'hello\n');
  writeFileSync(path.join(src, 'sub', 'deeper', 'more.bin'), randomBytes(100_000));
  symlinkSync('../small.txt', path.join(src, 'sub', 'link'));
  return src;
}

function backup(t: Test, repo: string, src: string): string {
  const r = run('tsbak', ['backup', repo, src, '--json']);
  t.equal(r.code, 0, `backup: ${r.stderr}`);
  return lastJson(r.stdout).snapshot_id;
}

/** Restores `snap` and returns the walk of the source's place in it. */
function restored(t: Test, repo: string, snap: string, src: string, what: string): Map<string, Entry> {
  const target = tempDir(t);
  const r = run('tsbak', ['restore', repo, snap, '--target', target]);
  t.equal(r.code, 0, `${what}: restore exits 0: ${r.stderr}`);
  return walkTree(path.join(target, src));
}

function check(t: Test, repo: string, what: string): void {
  const r = run('tsbak', ['check', repo, '--read-data']);
  t.equal(r.code, 0, `${what}: check --read-data passes: ${r.stdout}${r.stderr}`);
}

const files = (repo: string, dir: string): string[] => readdirSync(path.join(repo, dir)).sort();
const filesIfAny = (repo: string, dir: string): string[] => (existsSync(path.join(repo, dir)) ? files(repo, dir) : []);
function packs(repo: string, kind: 'data' | 'tree'): string[] {
  const base = path.join(repo, 'packs', kind);
  return readdirSync(base).flatMap((d) => readdirSync(path.join(base, d)).map((f) => `packs/${kind}/${d}/${f}`));
}

/** The two backups every test starts from; the second adds late.bin (its own data pack). */
function twoBackups(t: Test): { repo: string; src: string; before1: Map<string, Entry>; before2: Map<string, Entry>; lateIndex: string; latePack: string; lateTreePack: string } {
  const repo = newRepo(t);
  const src = sourceTree(t);
  const before1 = walkTree(src, { preserveAtime: true });
  backup(t, repo, src);
  const index1 = files(repo, 'index');
  const data1 = packs(repo, 'data');
  const tree1 = packs(repo, 'tree');
  writeFileSync(path.join(src, 'late.bin'), randomBytes(300_000));
  const before2 = walkTree(src, { preserveAtime: true });
  backup(t, repo, src);
  const lateIndex = files(repo, 'index').find((f) => !index1.includes(f))!;
  const latePack = packs(repo, 'data').find((p) => !data1.includes(p))!;
  const lateTreePack = packs(repo, 'tree').find((p) => !tree1.includes(p))!;
  t.ok(lateIndex && latePack && lateTreePack, 'the second backup wrote an index file, a data pack and a tree pack of its own');
  return { repo, src, before1, before2, lateIndex, latePack, lateTreePack };
}

t.test('repair index: a deleted index file, rebuilt from the pack headers', async (t) => {
  const { repo, src, before2, lateIndex } = twoBackups(t);
  rmSync(path.join(repo, 'index', lateIndex));
  const broken = run('tsbak', ['restore', repo, 'latest', '--target', tempDir(t)]);
  t.equal(broken.code, 14, `without the index file the latest snapshot does not restore: ${broken.stderr}`);

  const dry = run('tsbak', ['repair', 'index', repo, '--dry-run', '--json']);
  t.equal(dry.code, 0, dry.stderr);
  const d = lastJson(dry.stdout);
  t.equal(d.packs_listed, 2, 'dry run: the two packs the lost file listed would be listed');
  t.same(files(repo, 'index').length, 1, 'dry run: nothing written');

  // A backup at work (its shared lock): repair waits for it to end.
  const lockFile = path.join(repo, 'locks', randomBytes(16).toString('hex'));
  mkdirSync(path.dirname(lockFile), { recursive: true });
  writeFileSync(lockFile, JSON.stringify({ host: hostname(), pid: process.pid, time: new Date().toISOString(), exclusive: false, operation: 'backup' }));
  const locked = run('tsbak', ['repair', 'index', repo]);
  t.equal(locked.code, 13, `a backup's lock keeps repair index out: ${locked.stderr}`);
  t.same(files(repo, 'index').length, 1, 'nothing written while locked out');
  rmSync(lockFile);

  const r = run('tsbak', ['repair', 'index', repo, '--json']);
  t.equal(r.code, 0, r.stderr);
  t.same(readdirSync(path.join(repo, 'locks')), [], 'its lock is gone when it is done');
  const j = lastJson(r.stdout);
  t.equal(j.packs, packs(repo, 'data').length + packs(repo, 'tree').length, 'every pack counted');
  t.equal(j.indexed_already, j.packs - 2, 'packs of the sound index file left as they are');
  t.equal(j.headers_read, 2, 'only the unlisted packs are read');
  t.same(j.damaged_packs, [], 'no damage');
  t.equal(j.index_files_written.length, 1);
  t.same(j.index_files_removed, [], 'the sound index file stays');

  t.same(compareTrees(before2, restored(t, repo, 'latest', src, 'after repair')), [], 'the latest snapshot restores identical');
  check(t, repo, 'after repair index');
  const again = lastJson(run('tsbak', ['repair', 'index', repo, '--json']).stdout);
  t.equal(again.headers_read, 0, 'a second run finds nothing to do');
  t.same(again.index_files_written, []);
});

t.test('repair index: a damaged pack header is named, the other packs are listed', async (t) => {
  const { repo, src, before1, latePack, lateTreePack } = twoBackups(t);
  // Damage the sealed part of the late pack's header member, then lose every index file.
  const file = path.join(repo, latePack);
  const bytes = readFileSync(file);
  const header = parseTar(bytes).at(-1)!;
  bytes[header.dataOffset + header.size - 20]! ^= 0x40;
  writeFileSync(file, bytes);
  // A pack cut short (inside its header member) too.
  const treeFile = path.join(repo, lateTreePack);
  writeFileSync(treeFile, readFileSync(treeFile).subarray(0, statSync(treeFile).size - 1536));
  for (const f of files(repo, 'index')) rmSync(path.join(repo, 'index', f));

  const r = run('tsbak', ['repair', 'index', repo, '--json']);
  t.equal(r.code, 14, `damage found: exit 14: ${r.stderr}`);
  const j = lastJson(r.stdout);
  const damaged = new Map(j.damaged_packs.map((d: any) => [d.pack, d.reason]));
  t.same([...damaged.keys()].sort(), [latePack, lateTreePack].sort(), 'the damaged packs are named');
  t.match(damaged.get(latePack), /authentication/, 'a header that does not open');
  t.match(damaged.get(lateTreePack), /zero blocks|header/, 'a pack cut short');
  t.equal(j.packs_listed, j.packs - 2, 'every other pack is listed');

  const snaps = JSON.parse(run('tsbak', ['snapshots', repo, '--json']).stdout);
  const first = snaps.sort((a: any, b: any) => (a.time < b.time ? -1 : 1))[0];
  t.same(compareTrees(before1, restored(t, repo, first.id, src, 'first snapshot')), [], 'the snapshot whose data is intact restores identical');
});

t.test('repair snapshots: a deleted data pack, the files it held dropped', async (t) => {
  const { repo, src, before2, latePack } = twoBackups(t);
  rmSync(path.join(repo, latePack));

  const early = run('tsbak', ['repair', 'snapshots', repo]);
  t.equal(early.code, 2, 'refused while the index lists the lost pack');
  t.match(early.stderr, /repair index' first/);
  t.equal(run('tsbak', ['repair', 'index', repo]).code, 0, 'repair index drops the listing of the lost pack');

  const writerKey = path.join(tempDir(t), 'w.key');
  t.equal(run('tsbak', ['key', 'add-writer', repo, '--name', 'w', '--out', writerKey]).code, 0);
  const ro = run('tsbak', ['repair', 'snapshots', repo, '--key-file', writerKey], { TSBAK_PASSWORD: '' });
  t.equal(ro.code, 12, `a write-only key cannot repair snapshots: ${ro.stderr}`);

  const dry = lastJson(run('tsbak', ['repair', 'snapshots', repo, '--dry-run', '--json']).stdout);
  t.equal(dry.repaired.length, 1, 'dry run: one snapshot needs repair');
  const before = files(repo, 'snapshots');

  const r = run('tsbak', ['repair', 'snapshots', repo, '--forget', '--json']);
  t.equal(r.code, 0, r.stderr);
  const j = lastJson(r.stdout);
  t.equal(j.repaired.length, 1, 'one snapshot repaired');
  const rep = j.repaired[0];
  t.same(rep.affected.map((a: any) => a.path), [path.join(src, 'late.bin')], 'the lost file is named');
  t.match(rep.affected[0].what, /dropped/);
  t.ok(rep.forgotten, 'the original removed (--forget)');
  t.notOk(files(repo, 'snapshots').includes(rep.id), 'its object is gone');
  t.equal(files(repo, 'snapshots').length, before.length, 'one snapshot replaced by one');

  const snaps = JSON.parse(run('tsbak', ['snapshots', repo, '--json']).stdout);
  const repaired = snaps.find((s: any) => s.id === rep.new_id);
  t.ok(repaired, 'the repaired snapshot is listed');
  t.ok(repaired.tags.includes('repaired'), 'tagged repaired');
  t.equal(repaired.signer.id, 'master', 'signed by the master');

  const expected = new Map(before2);
  expected.delete('late.bin');
  t.same(compareTrees(expected, restored(t, repo, rep.new_id, src, 'repaired')), [], 'everything else restores identical');
  check(t, repo, 'after repair snapshots');
  const again = lastJson(run('tsbak', ['repair', 'snapshots', repo, '--json']).stdout);
  t.same(again.repaired, [], 'nothing left to repair');
});

t.test('recover: index/ and snapshots/ deleted, every backup restored from the packs', async (t) => {
  const { repo, src, before1, before2 } = twoBackups(t);
  rmSync(path.join(repo, 'index'), { recursive: true });
  rmSync(path.join(repo, 'snapshots'), { recursive: true });
  mkdirSync(path.join(repo, 'index'));
  mkdirSync(path.join(repo, 'snapshots'));
  const target = tempDir(t);
  const r = run('tsbak', ['recover', repo, '--target', target, '--json', '--no-cache']);
  t.equal(r.code, 0, r.stderr);
  const j = lastJson(r.stdout);
  t.equal(j.headers_read, j.packs, 'every pack header read');
  t.equal(j.restored.length, 2, 'two roots: the two backups');
  t.ok(j.restored.every((x: any) => x.kind === 'tree' && x.errors === 0));
  const walks = j.restored.map((x: any) => walkTree(path.join(x.target, src)));
  const matches = (w: Map<string, Entry>, b: Map<string, Entry>) => compareTrees(b, w).length === 0;
  t.ok(walks.some((w: Map<string, Entry>) => matches(w, before1)), 'the first backup is restored identical');
  t.ok(walks.some((w: Map<string, Entry>) => matches(w, before2)), 'the second backup is restored identical');
  t.ok(statSync(path.join(repo, 'index')).isDirectory() && files(repo, 'index').length === 0, 'recover writes nothing to the repository');
});

t.test('recover: snapshot objects present, restored under their ids', async (t) => {
  const { repo, src, before2 } = twoBackups(t);
  rmSync(path.join(repo, 'index'), { recursive: true });
  mkdirSync(path.join(repo, 'index'));
  const target = tempDir(t);
  const r = run('tsbak', ['recover', repo, '--target', target, '--json']);
  t.equal(r.code, 0, r.stderr);
  const j = lastJson(r.stdout);
  t.same(j.restored.map((x: any) => x.kind), ['snapshot', 'snapshot']);
  t.same(j.restored.map((x: any) => path.basename(x.target)).sort(), files(repo, 'snapshots'), 'one folder per snapshot id');
  const latest = j.restored.sort((a: any, b: any) => (a.time < b.time ? 1 : -1))[0];
  t.same(compareTrees(before2, walkTree(path.join(latest.target, src))), [], 'the latest snapshot restores identical');
});

t.test('repair snapshots: a damaged directory tree becomes an empty directory; --read-data finds a damaged file', async (t) => {
  const repo = newRepo(t);
  const src = sourceTree(t);
  const before = walkTree(src, { preserveAtime: true });
  const snap = backup(t, repo, src);

  // Flip a byte inside the tree blob of sub/ and inside the one chunk of small.txt.
  const r0 = await Repository.open(await openBackend(repo), { password: testEnv().TSBAK_PASSWORD! });
  await r0.loadIndex();
  let tree = await r0.loadTree(Buffer.from((await r0.loadSnapshot(snap)).info.tree, 'hex'));
  let dir: TreeNode | undefined;
  for (const comp of [...src.split('/').filter(Boolean)]) {
    dir = tree.nodes.find((n) => n.name.toString() === comp)!;
    tree = await r0.loadTree(dir.subtree!);
  }
  const damage = (id: Buffer) => {
    const loc = r0.locate(id)!;
    const file = path.join(repo, packName(loc.pack.kind, loc.pack.id.toString('hex')));
    const bytes = readFileSync(file);
    bytes[loc.offset + 20]! ^= 1;
    writeFileSync(file, bytes);
  };
  damage(tree.nodes.find((n) => n.name.toString() === 'sub')!.subtree!);
  damage(tree.nodes.find((n) => n.name.toString() === 'small.txt')!.content![0]!);

  const plain = lastJson(run('tsbak', ['repair', 'snapshots', repo, '--json']).stdout);
  t.same(plain.repaired[0].affected.map((a: any) => a.path), [path.join(src, 'sub')], 'without --read-data: the unreadable directory only');
  t.match(plain.repaired[0].affected[0].what, /empty directory/);

  const r = run('tsbak', ['repair', 'snapshots', repo, '--read-data', '--forget', '--json']);
  t.equal(r.code, 0, r.stderr);
  const rep = lastJson(r.stdout).repaired;
  t.equal(rep.length, 2, 'the original and the first repair both name the damaged file');
  const newest = rep.find((x: any) => x.affected.length === 1);
  t.same(newest.affected.map((a: any) => a.path), [path.join(src, 'small.txt')]);
  t.match(newest.affected[0].what, /missing or damaged/);

  const snaps = JSON.parse(run('tsbak', ['snapshots', repo, '--json']).stdout);
  // The original and the first repair, each repaired to the same tree, the two forgotten.
  t.equal(snaps.length, 2, 'two snapshots left');
  t.equal(snaps[0].tree, snaps[1].tree, 'with the same tree');
  t.notOk(snaps.some((s: any) => s.id === snap), 'the original is gone');
  const expected = new Map([...before].filter(([rel]) => rel !== 'small.txt' && !rel.startsWith('sub/')));
  t.same(
    compareTrees(expected, restored(t, repo, snaps[0].id, src, 'repaired twice'), { ignore: { sub: ['nlink'] }, hardlinks: false }),
    [],
    'the rest restores identical, sub/ empty with its metadata',
  );
});

/** Runs tsbak and kills it (SIGKILL) as soon as an object appears in `dir`; resolves with whether the kill came first. */
function killWhenWritten(args: string[], dir: string): Promise<{ killed: boolean; code: number | null }> {
  const seen = new Set(readdirSync(dir));
  const child = start('tsbak', args);
  let killed = false;
  const watcher = watch(dir, () => {
    if (!killed && readdirSync(dir).some((f) => !seen.has(f) && !f.startsWith('.tmp-'))) {
      killed = child.kill('SIGKILL');
    }
  });
  return new Promise((resolve) => {
    child.once('close', (code, signal) => {
      watcher.close();
      resolve({ killed: killed && signal === 'SIGKILL', code });
    });
  });
}

t.test('killed (SIGKILL) once its first object is written, a repair leaves a valid repository and a rerun finishes', async (t) => {
  const { repo, src, before2, lateIndex, latePack } = twoBackups(t);
  rmSync(path.join(repo, 'index', lateIndex));
  const k1 = await killWhenWritten(['repair', 'index', repo], path.join(repo, 'index'));
  t.comment(`repair index ${k1.killed ? 'killed' : `ended first (exit ${k1.code})`}`);
  t.same(compareTrees(before2, restored(t, repo, 'latest', src, 'after the kill')), [], 'the latest snapshot restores identical after the kill');
  const again = run('tsbak', ['repair', 'index', repo, '--json']);
  t.equal(again.code, 0, again.stderr);
  check(t, repo, 'after the rerun');

  rmSync(path.join(repo, latePack));
  t.equal(run('tsbak', ['repair', 'index', repo]).code, 0);
  const k2 = await killWhenWritten(['repair', 'snapshots', repo, '--forget'], path.join(repo, 'snapshots'));
  t.comment(`repair snapshots ${k2.killed ? 'killed' : `ended first (exit ${k2.code})`}`);
  const rerun = run('tsbak', ['repair', 'snapshots', repo, '--forget', '--json']);
  t.equal(rerun.code, 0, rerun.stderr);
  const rep = lastJson(rerun.stdout).repaired;
  if (k2.killed && rep.length) t.ok(rep[0].existing, 'the rerun finds the repaired snapshot the killed run wrote');
  // (A temp file the killed run left next to them is no snapshot: prune removes it.)
  t.equal(files(repo, 'snapshots').filter((f) => !f.startsWith('.tmp-')).length, 2, 'two snapshots: the first backup and the repaired one');
  // A lock the killed runs left: stale (its pid is gone), so nothing above was kept out; unlock removes it.
  t.equal(run('tsbak', ['unlock', repo]).code, 0);
  check(t, repo, 'after repair snapshots');
});

t.test('repair index with write-only keys about: a writer\'s garbage under another file\'s id is left out of the master\'s index', async (t) => {
  const repo = newRepo(t);
  const src = sourceTree(t);
  const keyFile = path.join(tempDir(t), 'w.key');
  t.equal(run('tsbak', ['key', 'add-writer', repo, '--name', 'w', '--out', keyFile]).code, 0);
  const indexBefore = filesIfAny(repo, 'index');
  // The writer stores garbage under the id of small.txt, in a pack of its own, and its index file is lost.
  const w = await Repository.open(await openBackend(repo), { keyFile: { path: keyFile, content: JSON.parse(readFileSync(keyFile, 'utf8')) } });
  const small = readFileSync(path.join(src, 'small.txt'));
  const id = w.blobId(small);
  t.ok((await w.saveBlob('data', randomBytes(small.length), id)).added);
  await w.flush();
  await w.closeWriter();
  for (const f of files(repo, 'index')) if (!indexBefore.includes(f)) rmSync(path.join(repo, 'index', f));

  // No --read-data: implied, since a write-only key exists.
  const r = run('tsbak', ['repair', 'index', repo, '--json']);
  t.equal(r.code, 14, `damage found: ${r.stderr}`);
  t.match(r.stderr, /write-only keys exist: reading the packs/);
  const j = lastJson(r.stdout);
  t.same(j.damaged_blobs.map((b: any) => b.blob), [id.toString('hex')], 'the garbage is named');
  t.match(j.damaged_blobs[0].reason, /does not match its id/);
  t.equal(j.packs_listed, 0, 'its pack lists nothing else: not listed');

  const before = walkTree(src, { preserveAtime: true });
  backup(t, repo, src);
  t.same(compareTrees(before, restored(t, repo, 'latest', src, 'a backup after the repair')), [], 'a backup after the repair stores its own copy and restores identical');
});

t.test('repair snapshots: entries no reader may trust are left out, and check passes', async (t) => {
  const { repo, key } = repoWithWriter(t);
  await asWriter(repo, key, async (e) => e.snapshot([await e.dir('d', [await e.file('ok', 'fine\n'), await e.file('..', 'up\n'), await e.file('x/y', 'slash\n')])]));
  t.equal(run('tsbak', ['check', repo]).code, 14, 'check reports the refused entries');
  const r = run('tsbak', ['repair', 'snapshots', repo, '--forget', '--json']);
  t.equal(r.code, 0, r.stderr);
  const rep = lastJson(r.stdout).repaired;
  t.equal(rep.length, 1);
  t.same(rep[0].affected.map((a: any) => a.path).sort(), ['/d/..', '/d/x/y'], 'the refused entries are named');
  const target = tempDir(t);
  t.equal(run('tsbak', ['restore', repo, rep[0].new_id, '--target', target]).code, 0, 'the repaired snapshot restores without complaint');
  t.equal(readFileSync(path.join(target, 'd', 'ok'), 'utf8'), 'fine\n');
  check(t, repo, 'after the repair');
});

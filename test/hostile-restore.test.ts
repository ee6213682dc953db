// Hostile snapshots, made as a thief of a writer key could (test/lib/hostile.ts: the key
// file and the public Repository API the CLI uses), and hostile targets: a
// restore never writes outside --target, restores the rest, and says the snapshot is
// damaged (exit 14); check says so too.
import t, { type Test } from 'tap';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { newRepo, run } from './lib/cli.js';
import { BASE, asWriter, repoWithWriter, type Evil } from './lib/hostile.js';
import { tempDir } from './lib/temp.js';
import type { TreeNode } from '../src/format/tree.js';

/** Everything under `dir` but `skip`: path, type, mode, size, link target; what a restore must leave alone. */
function survey(dir: string, skip: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = path.join(d, e);
      if (p === skip) continue;
      const st = lstatSync(p);
      out.push(`${path.relative(dir, p)} ${st.mode.toString(8)} ${st.size}${st.isSymbolicLink() ? ' -> ' + readlinkSync(p) : ''}`);
      if (st.isDirectory()) walk(p);
    }
  };
  out.push(`. ${statSync(dir).mode.toString(8)}`);
  walk(dir);
  return out;
}

/**
 * A place to restore to, deep enough that '../../../x' stays inside `base`, and a sentinel
 * directory `out` (0700, empty) that hostile symlinks point at. check() asserts that
 * nothing under `base` but the target changed.
 */
function place(t: Test): { base: string; out: string; target: string; untouched: () => void } {
  const base = tempDir(t);
  const out = path.join(base, 'outside');
  mkdirSync(out, { mode: 0o700 });
  writeFileSync(path.join(out, 'victim'), 'victim data\n', { mode: 0o600 });
  const target = path.join(base, 'a', 'b', 'c', 'target');
  mkdirSync(target, { recursive: true });
  const before = survey(base, target);
  return { base, out, target, untouched: () => t.same(survey(base, target), before, 'nothing outside the target changed (entries, modes, sizes)') };
}

function restore(repo: string, snap: string, target: string, extra: string[] = []) {
  return run('tsbak', ['restore', repo, snap, '--target', target, ...extra]);
}

t.test('hostile names: each refused and named, the rest restored, nothing written outside, exit 14', async (t) => {
  const { repo, key } = repoWithWriter(t);
  const probe = place(t);
  const cases: Array<{ what: string; shown: RegExp; nodes: (e: Evil) => Promise<TreeNode[]> }> = [
    { what: "'../../../x'", shown: /"\.\.\/\.\.\/\.\.\/x".*a name holding '\/'/, nodes: async (e) => [await e.file('../../../x', 'evil\n', { mode: 0o4755 })] },
    {
      what: "nested '..' directories",
      shown: /"\.\.".*the name '\.\.'/,
      nodes: async (e) => [await e.dir('..', [await e.dir('..', [await e.file('x', 'evil\n')])]), await e.dir('sub', [await e.dir('..', [await e.file('y', 'evil\n')]), await e.file('kept', 'kept\n')])],
    },
    { what: "a name with '/'", shown: /"outside\/planted".*a name holding '\//, nodes: async (e) => [await e.file('outside/planted', 'evil\n')] },
    { what: "'.'", shown: /"\.".*the name '\.'/, nodes: async (e) => [await e.dir('.', [await e.file('dot', 'evil\n')], 0o777)] },
    { what: 'an empty name', shown: /"".*an empty name/, nodes: async (e) => [await e.file('', 'evil\n')] },
    {
      what: 'a symlink to outside, then a directory of the same name holding a file',
      shown: /"escape".*a duplicate name/,
      nodes: async (e) => [e.symlink('escape', probe.out), await e.dir('escape', [await e.file('planted', 'evil\n')], 0o777)],
    },
    {
      what: 'a symlink to outside, then a file of the same name',
      shown: /"victim".*a duplicate name/,
      nodes: async (e) => [e.symlink('victim', path.join(probe.out, 'victim')), await e.file('victim', 'evil\n', { mode: 0o777 })],
    },
  ];
  const snaps = await asWriter(repo, key, async (e) => {
    const ids: string[] = [];
    for (const c of cases) ids.push(await e.snapshot([...(await c.nodes(e)), await e.file('ok.txt', 'honest\n')]));
    return ids;
  });

  for (const [i, c] of cases.entries()) {
    const r = restore(repo, snaps[i]!, probe.target);
    t.equal(r.code, 14, `${c.what}: restore exits 14 (damage): ${r.stderr}`);
    t.match(r.stderr, c.shown, `${c.what}: the refused entry is named`);
    t.equal(r.stderr.trim().split('\n').length >= 1 && !/at .*\.js:\d+/.test(r.stderr), true, `${c.what}: no stack trace`);
    t.equal(readFileSync(path.join(probe.target, 'ok.txt'), 'utf8'), 'honest\n', `${c.what}: the rest is restored`);
    probe.untouched();
  }
  t.equal(readFileSync(path.join(probe.target, 'sub', 'kept'), 'utf8'), 'kept\n', "a directory holding a '..' keeps its other entries");
  t.notOk(existsSync(path.join(probe.target, 'escape')), 'neither of two entries of one name is restored');
  t.same(readdirSync(probe.out).sort(), ['victim']);

  const c = run('tsbak', ['check', repo]);
  t.equal(c.code, 14, 'check exits 14');
  for (const x of cases) t.match(c.stdout, x.shown, `check names ${x.what}`);
  t.match(c.stdout, /tree [0-9a-f]{16} \(\/sub\): entry "\.\."/, 'check names the tree and its path');

  const l = run('tsbak', ['ls', repo, snaps[1]!]);
  t.equal(l.code, 14, 'ls exits 14 on a tree with refused entries');
  t.match(l.stderr, /\/sub: entry "\.\." of tree [0-9a-f]{16} refused \(the name '\.\.'\)/, 'ls names the entry on stderr');
  t.same(l.stdout.trim().split('\n'), ['/ok.txt', '/sub', '/sub/kept'], 'ls lists the rest');

  // all dated 9999: a snapshot dated more than a day ahead is never `latest`
  const latest = place(t);
  t.equal(restore(repo, 'latest', latest.target).code, 16, 'latest passes over future-dated snapshots (none is left)');
  latest.untouched();
});

t.test('a hardlink group whose first name is refused: the other names are restored, as one inode', async (t) => {
  const { repo, key } = repoWithWriter(t);
  const probe = place(t);
  const snap = await asWriter(repo, key, async (e) => {
    const hl = { hardlink: '7:7', nlink: 3 };
    return e.snapshot([await e.file('..', 'shared\n', hl), await e.file('also', 'shared\n', hl), await e.file('good', 'shared\n', hl)]);
  });
  const r = restore(repo, snap, probe.target);
  t.equal(r.code, 14, r.stderr);
  t.match(r.stderr, /entry "\.\."/);
  const a = statSync(path.join(probe.target, 'also'));
  const g = statSync(path.join(probe.target, 'good'));
  t.equal(readFileSync(path.join(probe.target, 'good'), 'utf8'), 'shared\n');
  t.equal(a.ino, g.ino, 'the names left are one inode');
  t.equal(a.nlink, 2);
  probe.untouched();
  const c = run('tsbak', ['check', repo]);
  t.equal(c.code, 14, 'check exits 14');
  t.match(c.stdout, /tree [0-9a-f]{16} \(\/\): entry "\.\." refused: the name '\.\.'/);
});

t.test('a hardlink whose first name is in a directory long done links through handles opened again', async (t) => {
  const { repo, key } = repoWithWriter(t);
  const probe = place(t);
  const snap = await asWriter(repo, key, async (e) => {
    // Empty, so that the first name is done at once, and its directories soon after.
    const hl = { hardlink: '9:9', nlink: 2, size: 0, content: [] };
    const fillers: TreeNode[] = [];
    for (let i = 0; i < 40; i++) fillers.push(await e.dir(`m${String(i).padStart(2, '0')}`, [await e.file('f', `${i}\n`)]));
    return e.snapshot([await e.dir('a', [await e.dir('deep', [await e.file('first', '', hl)])]), ...fillers, await e.dir('z', [await e.file('second', '', hl)])]);
  });
  const r = restore(repo, snap, probe.target);
  t.equal(r.code, 0, r.stderr);
  const a = statSync(path.join(probe.target, 'a', 'deep', 'first'));
  const z = statSync(path.join(probe.target, 'z', 'second'));
  t.equal(a.ino, z.ino, 'one inode');
  t.equal(a.nlink, 2);
  probe.untouched();
});

t.test('a symlink the restore made is never followed: a later restore into the same target refuses a directory there, replaces a file', async (t) => {
  const { repo, key } = repoWithWriter(t);
  const probe = place(t);
  const [first, second] = await asWriter(repo, key, async (e) => [
    await e.snapshot([e.symlink('escape', probe.out), e.symlink('victim', path.join(probe.out, 'victim'))]),
    await e.snapshot([await e.dir('escape', [await e.file('planted', 'evil\n', { mode: 0o4755 })], 0o777), await e.file('victim', 'overwritten\n', { mode: 0o666 })]),
  ]);
  t.equal(restore(repo, first!, probe.target).code, 0);
  t.equal(readlinkSync(path.join(probe.target, 'escape')), probe.out);
  const r = restore(repo, second!, probe.target);
  t.equal(r.code, 3, `a symlink at a directory's place fails that directory: ${r.stderr}`);
  t.match(r.stderr, /escape: a symlink is in the place of this directory: not followed and not replaced/, 'named, with what to do');
  t.equal(readlinkSync(path.join(probe.target, 'escape')), probe.out, 'the symlink is left as it was');
  t.ok(lstatSync(path.join(probe.target, 'victim')).isFile(), 'the symlink at a file place was replaced by the file');
  t.equal(readFileSync(path.join(probe.out, 'victim'), 'utf8'), 'victim data\n');
  probe.untouched();
  t.equal(run('tsbak', ['check', repo]).code, 0, 'these trees are sound: the danger was only in the target');
});

t.test('an honest snapshot into a target holding symlinks at a directory and a file place', async (t) => {
  const repo = newRepo(t);
  const src = tempDir(t);
  mkdirSync(path.join(src, 'd', 'sub'), { recursive: true });
  writeFileSync(path.join(src, 'd', 'sub', 'file.txt'), 'data\n');
  writeFileSync(path.join(src, 'd', 'f.txt'), 'f\n');
  t.equal(run('tsbak-write', [repo, src]).code, 0);
  const probe = place(t);
  // `ln -s /elsewhere T/tmp`: the snapshot's first directory (src is under /tmp)
  const first = src.split('/').filter(Boolean)[0]!;
  symlinkSync(probe.out, path.join(probe.target, first));
  const r0 = restore(repo, 'latest', probe.target);
  t.equal(r0.code, 3, 'the symlink at a directory place fails that directory');
  t.match(r0.stderr, /not followed and not replaced/);
  t.equal(readlinkSync(path.join(probe.target, first)), probe.out, `T/${first} is left a symlink`);
  probe.untouched();
  rmSync(path.join(probe.target, first));
  const r = restore(repo, 'latest', probe.target);
  t.equal(r.code, 0, r.stderr);
  t.equal(readFileSync(path.join(probe.target, src, 'd', 'sub', 'file.txt'), 'utf8'), 'data\n');

  // a symlink at a file's place (and one at a directory's place deeper down)
  const fileAt = path.join(probe.target, src, 'd', 'f.txt');
  const subAt = path.join(probe.target, src, 'd', 'sub');
  for (const p of [fileAt, subAt]) rmSync(p, { recursive: true });
  symlinkSync(path.join(probe.out, 'victim'), fileAt);
  symlinkSync(probe.out, subAt);
  const before = survey(probe.base, probe.target);
  const r2 = restore(repo, 'latest', probe.target);
  t.equal(r2.code, 3, 'partial: the directory behind a symlink is refused');
  t.ok(lstatSync(fileAt).isFile(), 'the file replaced the symlink');
  t.equal(readFileSync(fileAt, 'utf8'), 'f\n');
  t.ok(lstatSync(subAt).isSymbolicLink(), 'the symlink at a directory place is left alone');
  t.same(survey(probe.base, probe.target), before, 'outside: the victim file and the sentinel directory are untouched');
  rmSync(subAt);

  // a directory at a file's place is not removed: the file fails, named by its path in the target
  rmSync(fileAt);
  mkdirSync(path.join(fileAt, 'keep'), { recursive: true });
  const r3 = restore(repo, 'latest', probe.target);
  t.equal(r3.code, 3, 'partial');
  t.match(r3.stderr, new RegExp(`^tsbak: ${fileAt}: .*EISDIR`), 'the failure names the file');
  t.notMatch(r3.stderr, /\/proc\/self\/fd/, 'and not the handle path it went through');
  t.ok(existsSync(path.join(fileAt, 'keep')));
});

t.test('restore --include of a path not in the snapshot exits 16, writing nothing', async (t) => {
  const repo = newRepo(t);
  const src = tempDir(t);
  writeFileSync(path.join(src, 'here'), 'x');
  t.equal(run('tsbak-write', [repo, src]).code, 0);
  const target = path.join(tempDir(t), 'target');
  const r = restore(repo, 'latest', target, ['--include', '/nope']);
  t.equal(r.code, 16, r.stderr);
  t.match(r.stderr, /^tsbak: \/nope is not in snapshot [0-9a-f]{8}/);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  t.notOk(existsSync(target) && readdirSync(target).length, 'nothing restored');
  const ok = restore(repo, 'latest', target, ['--include', path.join(src, 'here')]);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(readFileSync(path.join(target, src, 'here'), 'utf8'), 'x');
});

t.test('files whose chunks do not fit their extents: refused and named by restore, check and dump; short ones read as zeros', async (t) => {
  const { repo, key } = repoWithWriter(t);
  const probe = place(t);
  const snap = await asWriter(repo, key, async (e) => {
    const a = (await e.repo.saveBlob('data', Buffer.from('aaaa'))).id;
    const b = (await e.repo.saveBlob('data', Buffer.from('bbbb'))).id;
    const file = (name: string, size: number, content: Buffer[], extents?: Array<[number, number]>): TreeNode => ({ ...BASE, name: Buffer.from(name), type: 'file', size, content, ...(extents ? { extents } : {}) });
    return e.snapshot([
      file('overrun', 5, [a, b]), // the second chunk would reach past the size
      file('spill', 6, [a, b], [[0, 2], [4, 2]]), // each chunk past its extent, into the hole and past the size
      file('extra', 4, [a, b]), // a chunk left over
      file('short', 12, [a, b]), // chunks end early, as a file that shrank while read is stored: zeros after
      file('holes', 10, [a, b], [[0, 4], [6, 4]]),
      await e.file('ok.txt', 'honest\n'),
    ]);
  });
  const r = restore(repo, snap, probe.target);
  const at = (n: string) => path.join(probe.target, n);
  t.equal(r.code, 14, 'exit 14: the snapshot holds files no restore may trust');
  for (const [name, why] of [['overrun', 'reach beyond its extents'], ['spill', 'reach beyond its extents'], ['extra', 'more chunks than its extents hold']] as const) {
    t.match(r.stderr, new RegExp(`/${name}: [^\\n]*${why}; the snapshot is damaged or was made to attack`), `${name}: named, with why`);
    t.notOk(existsSync(at(name)), `${name}: not restored`);
  }
  t.equal(readFileSync(at('short'), 'latin1'), 'aaaabbbb\0\0\0\0', 'chunks that end early: the rest of the size is a hole');
  t.equal(readFileSync(at('holes'), 'latin1'), 'aaaa\0\0bbbb');
  t.equal(readFileSync(at('ok.txt'), 'utf8'), 'honest\n');
  probe.untouched();

  const c = run('tsbak', ['check', repo]);
  t.equal(c.code, 14, 'check exits 14');
  for (const name of ['overrun', 'spill', 'extra']) t.match(c.stdout, new RegExp(`\\(/\\): file "${name}": it`), `check names ${name}`);
  t.notMatch(c.stdout, /"short"|"holes"/, 'chunks that end early are not damage');
  const d = run('tsbak', ['dump', repo, snap, '/overrun']);
  t.not(d.code, 0, 'dump refuses it too');
  t.match(d.stderr, /reach beyond its extents/);
});

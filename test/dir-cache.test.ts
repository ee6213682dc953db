// The writer's directory cache (src/writer/dir-cache.ts): a directory listed as in the last
// run reuses its tree id without the parent tree. It must give exactly the trees a backup
// without the cache gives, whatever changed, and be dropped when it may be stale.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { appendFileSync, linkSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { DirCache, subdirsHash } from '../src/writer/dir-cache.js';
import { zstdCompress } from '../src/format/compress.js';
import { lsetxattr } from '../src/platform/native.js';
import { lastJson, newRepo, run } from './lib/cli.js';
import { tempDir } from './lib/temp.js';
import { subtreeIds } from './lib/tree-ids.js';


t.test('with the cache, every change gives the tree a backup without it gives', async (t) => {
  const src = tempDir(t, 'tsbak-dircache-src-');
  const cache = tempDir(t, 'tsbak-dircache-cache-');
  for (const d of ['a/b/c', 'a/d', 'e']) mkdirSync(path.join(src, d), { recursive: true });
  for (let i = 0; i < 30; i++) writeFileSync(path.join(src, ['a', 'a/b', 'a/b/c', 'a/d', 'e'][i % 5]!, `f${i}`), `file ${i}\n`.repeat(i));
  symlinkSync('f1', path.join(src, 'a/link'));
  const repo = newRepo(t);
  const specDirs = src.split('/').filter(Boolean).length; // '/' and those above src: never cached
  // Listing a directory moves its atime once after a change (relatime), and trees record
  // atimes: settle them before each pair of backups compared.
  // (readlink moves a symlink's atime the same way).
  const settle = () => execFileSync('find', [src, '-type', 'l', '-exec', 'readlink', '{}', '+'], { stdio: 'ignore' });
  settle();
  const withCache = () => {
    const r = run('tsbak-write', [repo, src, '--json', '--cache-dir', cache]);
    t.equal(r.code, 0, r.stderr);
    return lastJson(r.stdout);
  };
  // Under another host name: these snapshots are not the parents of the runs with the cache
  // (a cache is only used when the parent is the snapshot it was written with).
  const withoutCache = () => t.equal(run('tsbak-write', [repo, src, '--json', '--no-cache', '--host', 'other']).code, 0);

  const first = withCache(); // records every directory
  t.equal(first.dirs_unchanged, 0);
  const second = withCache(); // every directory comes from the cache
  t.equal(second.dirs_unchanged, 6, 'src and its 5 directories come from the cache');
  t.equal(second.files, first.files, 'and their files are counted');
  withoutCache();
  let ids = await subtreeIds(repo, src);
  t.equal(ids[1], ids[0], 'unchanged: the same tree from the cache');
  t.equal(ids[2], ids[0], 'and the same as without the cache');

  const changes: Array<[string, () => void]> = [
    ['a file changed deep down', () => appendFileSync(path.join(src, 'a/b/c/f2'), 'more\n')],
    ['an xattr set', () => lsetxattr(path.join(src, 'a/d/f3'), 'user.tag', Buffer.from('x'))],
    ['a file added', () => writeFileSync(path.join(src, 'e/new'), 'new')],
    ['a directory removed', () => rmSync(path.join(src, 'a/b/c'), { recursive: true })],
    ['a directory added', () => mkdirSync(path.join(src, 'a/d/sub'))],
  ];
  for (const [what, change] of changes) {
    change();
    settle();
    const r = withCache(); // its parent is the previous backup with the cache: the cache applies
    t.ok(r.dirs_unchanged > 0 && r.dirs_unchanged < 6, `${what}: some directories from the cache (${r.dirs_unchanged})`);
    withoutCache();
    ids = await subtreeIds(repo, src);
    t.not(ids[ids.length - 2], ids[ids.length - 3], `${what}: a new tree`);
    t.equal(ids[ids.length - 2], ids[ids.length - 1], `${what}: the same tree as without the cache`);
    const again = withCache(); // and now unchanged again
    t.equal(again.dirs_unchanged, again.dirs - specDirs, `${what}: then all from the cache (all but the directories above src)`);
    ids = await subtreeIds(repo, src);
    t.equal(ids[ids.length - 1], ids[ids.length - 2], `${what}: then unchanged`);
  }

  // A directory that is never reused (a hardlinked file) under one that is: its files are
  // still compared with the parent snapshot's, not read again.
  linkSync(path.join(src, 'e/f4'), path.join(src, 'e/hardlink'));
  settle();
  withCache();
  const quiet = withCache();
  t.equal(quiet.bytes_read, 0, 'a directory with a hardlink under an unchanged one: nothing read again');
  t.equal(quiet.dirs_unchanged, quiet.dirs - specDirs - 1, 'and all but that directory from the cache');

  // Other exclude rules: the cache does not apply (its trees were made without them).
  const r = run('tsbak-write', [repo, src, '--json', '--cache-dir', cache, '--exclude', 'f1*']);
  t.equal(r.code, 0, r.stderr);
  t.equal(lastJson(r.stdout).dirs_unchanged, 0, 'new exclude rules: nothing from the cache');
  t.equal(run('tsbak-write', [repo, src, '--json', '--no-cache', '--host', 'other', '--exclude', 'f1*']).code, 0);
  ids = await subtreeIds(repo, src);
  t.equal(ids[ids.length - 2], ids[ids.length - 1], 'new exclude rules: the same tree as without the cache');
  t.not(ids[ids.length - 2], ids[ids.length - 3], 'and not the cached one');
});

t.test('DirCache files: stale or damaged ones are not used', async (t) => {
  const dir = tempDir(t, 'tsbak-dircache-file-');
  const file = path.join(dir, DirCache.fileName('host', ['/x']));
  const c = new DirCache();
  const rec = { files: 7, fingerprint: Buffer.alloc(32, 1), subdirs: subdirsHash([{ name: Buffer.from('s'), subtree: Buffer.alloc(32, 2) }]), tree: Buffer.alloc(32, 3) };
  c.set(Buffer.from('/x/\xff', 'latin1'), rec);
  await c.save(file, 'snap1', 'settings', ['i1', 'i2']);
  const ok = await DirCache.load(file, 'snap1', 'settings', ['i1', 'i2', 'i3']);
  t.same(ok.get(Buffer.from('/x/\xff', 'latin1')), rec, 'a record comes back (index files added since are fine)');
  t.equal((await DirCache.load(file, 'snap2', 'settings', ['i1', 'i2'])).size, 0, 'another parent snapshot: none');
  t.equal((await DirCache.load(file, 'snap1', 'other', ['i1', 'i2'])).size, 0, 'other settings: none');
  t.equal((await DirCache.load(file, 'snap1', 'settings', ['i2', 'i3'])).size, 0, 'an index file gone (prune): none');
  writeFileSync(file, 'garbage');
  t.equal((await DirCache.load(file, 'snap1', 'settings', ['i1', 'i2'])).size, 0, 'a damaged file: none');
  t.equal((await DirCache.load(path.join(dir, 'missing'), 'snap1', 'settings', [])).size, 0, 'no file: none');
});

t.test('DirCache in one buffer: set replaces, grows, copies subtrees, finds unreusable records', async (t) => {
  const dir = tempDir(t, 'tsbak-dircache-mem-');
  const file = path.join(dir, 'dirs');
  const rec = (i: number, fp = i) => ({ files: i, fingerprint: Buffer.alloc(32, fp), subdirs: Buffer.alloc(32, i + 1), tree: Buffer.alloc(32, i + 2) });
  const c = new DirCache();
  // Enough directories to grow the buffer and the table several times.
  const paths: string[] = [];
  for (let i = 0; i < 5000; i++) paths.push(`/r/d${i % 50}/e${i}`);
  paths.push('/r', '/r/d7', '/r/d8', '/', '/other', '/other/x');
  paths.forEach((p, i) => c.set(Buffer.from(p, 'latin1'), rec(i % 200)));
  c.set(Buffer.from('/r/d7/e7', 'latin1'), rec(99, 0)); // replaced, not added
  t.equal(c.size, paths.length, 'one record per path');
  t.same(c.get(Buffer.from('/r/d7/e7', 'latin1')), rec(99, 0), 'the last set wins');
  t.same(c.get(Buffer.from('/r/d3/e3', 'latin1')), rec(3), 'others as set');
  t.equal(c.get(Buffer.from('/r/d3/e', 'latin1')), undefined, 'a prefix is not a record');
  await c.save(file, 's', 'x', []);
  const back = await DirCache.load(file, 's', 'x', []);
  t.equal(back.size, paths.length, 'all of them back');
  for (const [i, p] of paths.entries()) if (p !== '/r/d7/e7' && !back.get(Buffer.from(p, 'latin1'))?.tree.equals(rec(i % 200).tree)) t.fail(`record of ${p}`);
  const zeroFp = paths.filter((p, i) => i % 200 === 0 || p === '/r/d7/e7');
  t.same(back.pathsWithFingerprint(Buffer.alloc(32, 0)).sort(), zeroFp.sort(), 'records by fingerprint');

  const into = new DirCache();
  const n = back.copyBelow(new Set(['/r/d7', '/r/d8']), into);
  const below = paths.filter((p) => p.startsWith('/r/d7/') || p.startsWith('/r/d8/'));
  t.equal(n.dirs, below.length, 'the directories below the roots, not the roots');
  t.equal(into.size, below.length);
  t.equal(into.get(Buffer.from('/r/d7', 'latin1')), undefined, 'a root itself is not copied');
  t.same(into.get(Buffer.from('/r/d7/e7', 'latin1')), rec(99, 0), 'copied as recorded');
  t.equal(n.files, below.reduce((s, p) => s + (p === '/r/d7/e7' ? 99 : paths.indexOf(p) % 200), 0), 'their files counted');
  t.equal(back.copyBelow(new Set(['/']), new DirCache()).dirs, paths.length - 1, 'below "/": everything but "/"');
  t.equal(back.copyBelow(new Set(['/r/d']), new DirCache()).dirs, 0, 'a name prefix is not a directory above');
});

t.test('DirCache files: a path recorded twice counts once, the later record', async (t) => {
  const dir = tempDir(t, 'tsbak-dircache-dup-');
  const file = path.join(dir, 'dirs');
  const record = (p: string, b: number) => {
    const n = Buffer.alloc(4);
    n.writeUInt32LE(p.length);
    const files = Buffer.alloc(4);
    files.writeUInt32LE(b);
    return Buffer.concat([n, Buffer.from(p, 'latin1'), Buffer.alloc(96, b), files]);
  };
  const header = Buffer.from(JSON.stringify({ v: 1, snapshot: 's', settings: 'x', indexes: [] }) + '\n');
  writeFileSync(file, zstdCompress(Buffer.concat([header, record('/a', 1), record('/b', 2), record('/a', 3)]), 3));
  const c = await DirCache.load(file, 's', 'x', []);
  t.equal(c.size, 2);
  t.equal(c.get(Buffer.from('/a'))?.files, 3, 'the later record');
  t.same(c.pathsWithFingerprint(Buffer.alloc(32, 1)), [], 'the earlier one is gone');
  await c.save(file, 's', 'x', []);
  const again = await DirCache.load(file, 's', 'x', []);
  t.equal(again.size, 2, 'saved once');
  t.equal(again.get(Buffer.from('/a'))?.files, 3);
  t.equal(again.get(Buffer.from('/b'))?.files, 2);
});

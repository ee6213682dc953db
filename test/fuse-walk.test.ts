// A walk of the mount (`ls -lR`, `cp -a`) with the listings built ahead (fuse/listings-ahead.ts,
// native/fuse_ll.c fuseSetListing): the session thread answers nearly every listing and
// symlink itself (fuseSetLinkTargets),
// every directory still shows exactly its entries (names, types, sizes), and an entry
// without xattrs answers "no such attribute" for every name but security.* (no snapshot
// has labels: "not supported", fuse-xattr-kinds.test.ts) and real xattrs their values.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { newRepo } from './lib/cli.js';
import { backupAndMount, waitFor } from './lib/fuse-helpers.js';
import { tempDir } from './lib/temp.js';

const canRun = process.getuid?.() === 0 && existsSync('/dev/fuse');

t.test('a walk lists every directory, answered by the session thread', { skip: canRun ? false : 'needs root and /dev/fuse' }, async (t) => {
  const dir = tempDir(t, 'tsbak-fuse-walk-');
  const src = path.join(dir, 'src');
  // 3 levels of 4 directories (84 in all), each with a few files and a symlink.
  const make = (at: string, depth: number) => {
    mkdirSync(at, { recursive: true });
    for (let i = 0; i < 3; i++) writeFileSync(path.join(at, `f${i}.txt`), `${at} ${i}\n`.repeat(i + 1));
    symlinkSync('f0.txt', path.join(at, 'link'));
    if (depth < 3) for (let i = 0; i < 4; i++) make(path.join(at, `d${i}`), depth + 1);
  };
  make(src, 0);
  writeFileSync(path.join(src, 'with-xattr'), 'x');
  spawnSync('setfattr', ['-n', 'user.note', '-v', 'kept', path.join(src, 'with-xattr')]);

  const repo = newRepo(t);
  const { mnt, inMount } = backupAndMount(t, src, dir, repo);
  const stats = () => JSON.parse(spawnSync('getfattr', ['--only-values', '-n', 'user.tsbak.stats', mnt], { encoding: 'utf8' }).stdout);

  // ls -lR prints paths; drop the lines that differ by where the tree is (headers, totals).
  const listing = (root: string) => {
    const r = spawnSync('ls', ['-lR', '--time-style=+%s', root], { encoding: 'utf8', maxBuffer: 64 << 20 });
    t.equal(r.status, 0, r.stderr);
    return r.stdout.split('\n').map((l) => (l.startsWith(root) ? l.slice(root.length) : l));
  };
  // Listing the top asks JavaScript, which builds the next two levels' listings (4 + 16);
  // once handed over, the session thread answers them all.
  const asked = () => stats().requests.readdirplus ?? 0;
  readdirSync(inMount);
  const first = asked();
  t.ok(first >= 1, 'the top was listed by JavaScript');
  await waitFor('the listings of two levels to be built', () => stats().listingsAhead >= 20, 60_000);
  const level2: string[] = [];
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) level2.push(path.join(`d${i}`, `d${j}`));
  for (const d of [...[0, 1, 2, 3].map((i) => `d${i}`), ...level2]) t.same(readdirSync(path.join(inMount, d)).sort(), readdirSync(path.join(src, d)).sort(), d);
  t.equal(asked(), first, 'the session thread answered the listings of both levels');

  const readlinks = () => stats().requests.readlink ?? 0;
  // The snapshot by name: every path through `latest` (a link of the mount's) reads it.
  const inSnapshot = path.join(mnt, 'snapshots', readlinkSync(path.join(mnt, 'snapshots/latest')), src);
  const linksBefore = readlinks();
  t.same(listing(inSnapshot), listing(src), 'ls -lR of the mount and of the original print the same');
  // 85 symlinks, whose targets came with their listings.
  t.ok(readlinks() - linksBefore < 10, `the session thread read the symlinks (${readlinks() - linksBefore} readlink requests reached JavaScript)`);

  // Every directory, listed again by a fresh walker (the kernel's copy), and by entries.
  const names = (root: string, rel = ''): string[] => {
    const out: string[] = [];
    for (const e of readdirSync(path.join(root, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      out.push(`${rel}/${e.name}:${e.isDirectory() ? 'd' : e.isSymbolicLink() ? 'l' : 'f'}`);
      if (e.isDirectory()) out.push(...names(root, `${rel}/${e.name}`));
    }
    return out;
  };
  t.same(names(inMount), names(src), 'every entry of every directory');

  const out = path.join(dir, 'out');
  const cp = spawnSync('cp', ['-a', inMount, out], { encoding: 'utf8' });
  t.equal(cp.status, 0, cp.stderr);
  t.equal(spawnSync('diff', ['-r', '--no-dereference', src, out]).status, 0, 'cp -a out of the mount copies the tree');

  const getfattr = (name: string, file: string) => spawnSync('getfattr', ['--only-values', '-n', name, path.join(inMount, file)], { encoding: 'utf8' });
  t.match(getfattr('security.selinux', 'f0.txt').stderr, /Operation not supported/, 'no label in any snapshot: not supported');
  t.match(getfattr('user.other', 'f0.txt').stderr, /No such attribute/, 'other names: no such attribute');
  t.equal(getfattr('user.note', 'with-xattr').stdout, 'kept', 'an xattr the snapshot holds');
  t.match(getfattr('security.selinux', 'with-xattr').stderr, /Operation not supported/, 'an entry with xattrs answers for itself');
});

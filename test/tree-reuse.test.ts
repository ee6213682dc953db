// An unchanged directory reuses its parent snapshot's tree id without encoding it again
// (writer/backup.ts saveDir). That is only right if the id is the one encoding would give:
// sameNode must never call two nodes alike that encode differently.
import t from 'tap';
import { mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { encodeTree, decodeTree, sameNode, type TreeNode } from '../src/format/tree.js';
import { run } from './lib/cli.js';
import { tempDir } from './lib/temp.js';
import { subtreeIds } from './lib/tree-ids.js';

const base = (): TreeNode => ({
  name: Buffer.from('f'),
  type: 'file',
  mode: 0o644,
  uid: 1,
  gid: 2,
  user: 'u',
  group: 'g',
  mtimeNs: 1n,
  atimeNs: 2n,
  ctimeNs: 3n,
  btimeNs: 0n,
  size: 5,
  ino: 7n,
  dev: 8n,
  nlink: 1,
  xattrs: [['user.a', Buffer.from('1')]],
  content: [Buffer.alloc(32, 1)],
});

t.test('sameNode agrees with the encoding', async (t) => {
  const changes: Array<[string, (n: TreeNode) => void]> = [
    ['name', (n) => (n.name = Buffer.from('g'))],
    ['type', (n) => (n.type = 'symlink')],
    ['mode', (n) => (n.mode = 0o600)],
    ['uid', (n) => (n.uid = 9)],
    ['gid', (n) => (n.gid = 9)],
    ['user', (n) => (n.user = 'v')],
    ['group', (n) => (n.group = 'h')],
    ['mtime', (n) => (n.mtimeNs = 9n)],
    ['atime', (n) => (n.atimeNs = 9n)],
    ['ctime', (n) => (n.ctimeNs = 9n)],
    ['btime', (n) => (n.btimeNs = 9n)],
    ['size', (n) => (n.size = 9)],
    ['ino', (n) => (n.ino = 9n)],
    ['dev', (n) => (n.dev = 9n)],
    ['nlink', (n) => (n.nlink = 2)],
    ['hardlink', (n) => (n.hardlink = '8:7')],
    ['rdev', (n) => ((n.rdevMajor = 1), (n.rdevMinor = 3))],
    ['target', (n) => (n.target = Buffer.from('x'))],
    ['xattr value', (n) => (n.xattrs = [['user.a', Buffer.from('2')]])],
    ['no xattrs', (n) => delete n.xattrs],
    ['content', (n) => (n.content = [Buffer.alloc(32, 2)])],
    ['no content', (n) => delete n.content],
    ['empty content', (n) => (n.content = [])],
    ['extents', (n) => (n.extents = [[0, 5]])],
    ['subtree', (n) => (n.subtree = Buffer.alloc(32, 3))],
  ];
  const a = base();
  const decoded = decodeTree(encodeTree({ nodes: [a] })).nodes[0]!;
  t.ok(sameNode(a, decoded), 'a node and its decoded encoding');
  for (const [what, change] of changes) {
    const b = base();
    change(b);
    const same = encodeTree({ nodes: [a] }).equals(encodeTree({ nodes: [b] }));
    t.equal(sameNode(a, b), same, what);
    t.equal(sameNode(b, a), same, `${what} (swapped)`);
  }
  const e = base();
  e.xattrs = [];
  const n = base();
  delete n.xattrs;
  t.ok(sameNode(e, n), 'an empty xattr list encodes as none');
  const r1 = base();
  r1.rdevMajor = 1;
  const r2 = base();
  r2.rdevMajor = 1;
  r2.rdevMinor = 0;
  t.ok(sameNode(r1, r2), 'a missing rdev minor encodes as 0');
});


t.test('an unchanged tree reuses exactly the ids that encoding gives', async (t) => {
  const src = tempDir(t, 'tsbak-reuse-src-');
  mkdirSync(path.join(src, 'a/b'), { recursive: true });
  for (let i = 0; i < 20; i++) writeFileSync(path.join(src, 'a', `f${i}`), `file ${i}`);
  writeFileSync(path.join(src, 'a/b/deep'), 'deep');
  symlinkSync('f1', path.join(src, 'a/link'));
  const repo = path.join(tempDir(t, 'tsbak-reuse-repo-'), 'repo');
  t.equal(run('tsbak', ['init', repo]).code, 0);
  for (const args of [[], [], ['--force']]) t.equal(run('tsbak-write', [repo, src, '--json', '--no-cache', ...args]).code, 0);
  const [, second, forced] = await subtreeIds(repo, src);
  t.equal(second, forced, 'reused tree ids = encoded tree ids');

  utimesSync(path.join(src, 'a/b/deep'), new Date(1000), new Date(2000)); // changes atime, mtime (and ctime)
  t.equal(run('tsbak-write', [repo, src, '--json', '--no-cache']).code, 0);
  t.equal(run('tsbak-write', [repo, src, '--json', '--no-cache', '--force']).code, 0);
  const ids = await subtreeIds(repo, src);
  t.not(ids[3], second, 'a change deep down gives a new root tree');
  t.equal(ids[3], ids[4], 'and the same one as encoding everything');
});

// Issue 18: the mount shows exactly what was backed up. A tree with every kind of Linux
// metadata (test/lib/linux-tree.ts) is backed up and mounted; the snapshot's copy of the
// tree in the mount is walked and compared with the original entry by entry (names as
// bytes, ns times before 1970 and after 2038, modes, owners, xattrs, ACLs, nlink, hardlinks
// sharing one inode, device numbers), and so is a `cp -a --sparse=always` out of the mount.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { newRepo } from './lib/cli.js';
import { backupAndMount } from './lib/fuse-helpers.js';
import { buildTree, MiB, sanity, setTimes } from './lib/linux-tree.js';
import { tempDir } from './lib/temp.js';
import { compareTrees, walkTree } from './lib/tree-compare.js';

const canRun = process.getuid?.() === 0 && existsSync('/dev/fuse');

t.test('the mount of a snapshot equals the tree it was made from', { skip: canRun ? false : 'needs root (devices, owners, trusted.* xattrs) and /dev/fuse' }, async (t) => {
  const dir = tempDir(t, 'tsbak-fuse-fidelity-');
  const src = path.join(dir, 'src');
  mkdirSync(src);
  // A 256 MiB sparse file: every hole is read through the mount by the walk and by cp.
  buildTree(src, { sparseGiB: 0.25 });
  setTimes(src);
  const before = walkTree(src, { preserveAtime: true });
  sanity(t, before);

  const repo = newRepo(t);
  const { mnt, inMount } = backupAndMount(t, src, dir, repo);

  // The mount is read-only: the walk cannot (and need not) put atimes back.
  const shown = walkTree(inMount, { preserveAtime: false });
  t.same(compareTrees(before, shown), [], 'the mount shows the original tree, every field');
  const sparse = shown.get('sparse.img')!;
  t.equal(sparse.size, 256 * MiB);
  t.ok(sparse.allocated >= 3 * MiB && sparse.allocated < 8 * MiB, `sparse st_blocks: what the data takes (${sparse.allocated} bytes)`);
  t.ok(shown.get('sparse-middle.img')!.allocated <= 16384, 'leading and trailing holes allocate nothing');
  t.equal(shown.get('hl/one')!.ino, shown.get('hl2/three')!.ino, 'hardlinked names share one inode number');
  t.equal(shown.get('hl/one')!.nlink, 3);

  const out = path.join(tempDir(t), 'copy');
  const cp = spawnSync('cp', ['-a', '--sparse=always', inMount, out], { encoding: 'utf8' });
  t.equal(cp.status, 0, `cp -a --sparse=always out of the mount: ${cp.stderr}`);
  const copied = walkTree(out, { preserveAtime: true });
  t.same(compareTrees(before, copied), [], 'cp -a --sparse=always out of the mount gives 0 differences');
  t.ok(copied.get('sparse.img')!.allocated < 8 * MiB, `the copy is sparse again (${copied.get('sparse.img')!.allocated} bytes)`);
});

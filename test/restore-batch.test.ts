// The restore's batches of small files (src/restore/small-files.ts, native/restore.c): the
// same tree comes back whether a file goes through the native batch (owner, mode, times by
// descriptor), applyMeta (xattrs, ACLs), or the one-by-one path (into a target that is not
// empty); with or without worker threads; a damaged blob fails its file only.
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { openBackend } from '../src/backend/open.js';
import { packName } from '../src/repo/layout.js';
import { Repository } from '../src/repo/repository.js';
import { lutimensNs } from '../src/platform/native.js';
import { newRepo, run, testEnv } from './lib/cli.js';
import { tempDir } from './lib/temp.js';
import { compareTrees, walkTree } from './lib/tree-compare.js';

const isRoot = process.getuid?.() === 0;

/** A tree of small files of every sort the batches meet. */
function buildTree(root: string): void {
  for (let d = 0; d < 4; d++) {
    const dir = path.join(root, `dir${d}`);
    mkdirSync(dir);
    for (let i = 0; i < 150; i++) {
      const p = path.join(dir, `f${i}`);
      // incompressible, compressible (zstd in the pack), empty, a few hundred KiB
      const content = i % 4 === 0 ? randomBytes(100 + i * 37) : i % 4 === 1 ? Buffer.from(`line ${i}\n`.repeat(i * 11)) : i % 4 === 2 ? Buffer.alloc(0) : randomBytes(200_000 + i);
      writeFileSync(p, content);
      chmodSync(p, [0o644, 0o600, 0o4755, 0o2750, 0o444, 0o1777][i % 6]!);
      lutimensNs(p, BigInt(i) * 1_000_000_007n, i % 10 === 0 ? -(BigInt(i) * 123_456_789n) - 1n : 1_700_000_000_000_000_000n + BigInt(i));
    }
  }
  const x = path.join(root, 'dir0', 'f5');
  execFileSync('setfattr', ['-n', 'user.note', '-v', 'batched with an xattr', x]);
  execFileSync('setfacl', ['-m', 'u:1234:r', path.join(root, 'dir0', 'f6')]);
  // A directory with a default ACL: files created in it inherit one and must lose it.
  execFileSync('setfacl', ['-d', '-m', 'u:4321:rw', path.join(root, 'dir1')]);
  writeFileSync(path.join(root, 'dir1', 'inherits'), 'acl\n');
  execFileSync('setfacl', ['-x', 'u:4321', path.join(root, 'dir1', 'inherits')]);
  symlinkSync('f1', path.join(root, 'dir2', 'link'));
  linkSync(path.join(root, 'dir2', 'f9'), path.join(root, 'dir3', 'hardlink-to-f9'));
  chmodSync(path.join(root, 'dir2', 'f1'), 0o640);
  execFileSync('chown', ['1234:2345', path.join(root, 'dir3', 'f7')]);
}

function restore(t: Test, repo: string, target: string, env: Record<string, string> = {}): void {
  const r = run('tsbak', ['restore', repo, 'latest', '--target', target], env);
  t.equal(r.code, 0, `restore exits 0: ${r.stderr}`);
  t.equal(r.stderr, '', 'no warnings');
}

t.test('batched small files restore identically, with workers or without, and into a full target', { skip: !isRoot && 'needs root (chown)' }, async (t) => {
  const src = tempDir(t);
  buildTree(src);
  const before = walkTree(src, { preserveAtime: true });
  const repo = newRepo(t);
  const w = run('tsbak-write', [repo, src]);
  t.equal(w.code, 0, w.stderr);

  const a = tempDir(t);
  restore(t, repo, a);
  t.same(compareTrees(before, walkTree(path.join(a, src))), [], 'the same tree');

  const b = tempDir(t);
  restore(t, repo, b, { TSBAK_WORKERS: '0' });
  t.same(compareTrees(before, walkTree(path.join(b, src))), [], 'without worker threads: the same tree');

  // Into the same target again, after changing it: entries there are replaced.
  const target = path.join(a, src);
  writeFileSync(path.join(target, 'dir0', 'f8'), 'changed since');
  chmodSync(path.join(target, 'dir0', 'f8'), 0o666);
  restore(t, repo, a);
  t.same(compareTrees(before, walkTree(target)), [], 'over an earlier restore: the same tree');
});

t.test('a damaged small file fails alone; the rest of its batch is restored', async (t) => {
  const src = tempDir(t);
  for (let i = 0; i < 40; i++) writeFileSync(path.join(src, `f${i}`), randomBytes(2000 + i));
  const repoDir = newRepo(t);
  t.equal(run('tsbak-write', [repoDir, src]).code, 0);

  // Flip a byte inside f17's sealed blob, found through the index.
  const repo = await Repository.open(await openBackend(repoDir, {}), { password: testEnv().TSBAK_PASSWORD });
  await repo.loadIndex();
  const snap = (await repo.listSnapshots())[0]!;
  let tree = await repo.loadTree(Buffer.from(snap.info.tree, 'hex'));
  for (const c of src.split('/').filter(Boolean)) tree = await repo.loadTree(tree.nodes.find((n) => n.name.toString() === c)!.subtree!);
  const victim = tree.nodes.find((n) => n.name.toString() === 'f17')!;
  const loc = repo.locate(victim.content![0]!)!;
  const packFile = path.join(repoDir, packName('data', loc.pack.id.toString('hex')));
  const bytes = readFileSync(packFile);
  bytes[loc.offset + 100]! ^= 0x40;
  chmodSync(packFile, 0o644);
  writeFileSync(packFile, bytes);

  for (const env of [{}, { TSBAK_WORKERS: '0' }] as Array<Record<string, string>>) {
    const target = tempDir(t);
    const r = run('tsbak', ['restore', repoDir, 'latest', '--target', target], env);
    t.equal(r.code, 3, `partial restore (${JSON.stringify(env)})`);
    t.equal(r.stderr.trim().split('\n').length, 1, `one line for the one damaged file: ${r.stderr}`);
    t.match(r.stderr, /f17.*damaged/);
    t.notOk(existsSync(path.join(target, src, 'f17')), 'the damaged file is not created');
    for (let i = 0; i < 40; i++) if (i !== 17) t.ok(readFileSync(path.join(target, src, `f${i}`)).equals(readFileSync(path.join(src, `f${i}`))), `f${i} restored`);
  }
});

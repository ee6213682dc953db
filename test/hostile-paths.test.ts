// Paths that used to back up nothing and exit 0 (issue 16): arguments under a symlinked
// parent (Debian's /lib -> usr/lib), `link/` naming a symlink to a directory, missing
// arguments. Each is backed up through the real CLI, then listed and restored, and the
// restored copy compared with the source.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { BIN, lastJson, newRepo, run, testEnv } from './lib/cli.js';
import { tempDir } from './lib/temp.js';
import { compareTrees, subtree, walkTree, type CompareOptions, type Entry } from './lib/tree-compare.js';

/**
 * src/real/{file, dir/{a, sub/b}}, src/link -> real, src/filelink -> real/file; walked
 * (sources.get(src)) before any backup lists its directories and moves their atimes.
 */
const sources = new Map<string, Map<string, Entry>>();
function makeSource(t: Test): string {
  const src = tempDir(t);
  mkdirSync(path.join(src, 'real/dir/sub'), { recursive: true });
  writeFileSync(path.join(src, 'real/file'), 'a file under a symlinked parent\n');
  writeFileSync(path.join(src, 'real/dir/a'), 'aaa\n');
  writeFileSync(path.join(src, 'real/dir/sub/b'), 'bbbb\n');
  symlinkSync('real', path.join(src, 'link'));
  symlinkSync('real/file', path.join(src, 'filelink'));
  sources.set(src, walkTree(src));
  return src;
}

function write(repo: string, args: string[], cwd?: string) {
  const r = spawnSync(BIN('tsbak-write'), ['--json', repo, ...args], { env: testEnv(), encoding: 'utf8', cwd });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function snapshots(repo: string): any[] {
  const r = run('tsbak', ['snapshots', repo, '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

function restore(t: Test, repo: string, id = 'latest'): string {
  const target = tempDir(t);
  const r = run('tsbak', ['restore', repo, id, '--target', target]);
  t.equal(r.code, 0, `restore: ${r.stderr}`);
  return target;
}

/** Restored `rel` (a path below src) is the same as src's `realRel`. */
function sameAsSource(t: Test, src: string, realRel: string, restored: string, rel: string, opts: CompareOptions = {}): void {
  const a = subtree(sources.get(src)!, realRel);
  const b = subtree(walkTree(path.join(restored, src)), rel);
  t.ok(a.size > 0, `${realRel} walked`);
  t.same(compareTrees(a, b, opts), [], `${rel} restored as ${realRel} is in the source`);
}

t.test('a directory under a symlinked parent is backed up, under the path as given', async (t) => {
  const src = makeSource(t);
  const repo = newRepo(t);
  const given = path.join(src, 'link/dir');
  const w = write(repo, [given]);
  t.equal(w.code, 0, w.stderr);
  t.equal(lastJson(w.stdout).files, 2, 'both files of real/dir saved');
  t.same(snapshots(repo)[0].paths, [given], 'the path recorded is the one given');

  const ls = run('tsbak', ['ls', repo, 'latest']);
  t.equal(ls.code, 0, ls.stderr);
  t.match(ls.stdout, `${given}/sub/b`);

  const target = restore(t, repo);
  sameAsSource(t, src, 'real/dir', target, 'link/dir');
  // The symlinked parent is restored as a directory with the resolved directory's metadata.
  const restoredLink = lstatSync(path.join(target, src, 'link'));
  const real = sources.get(src)!.get('real')!;
  t.ok(restoredLink.isDirectory(), 'link restored as a directory');
  t.equal(restoredLink.mode & 0o7777, real.mode & 0o7777, 'with real/ mode');
  t.equal(lstatSync(path.join(target, src, 'link'), { bigint: true }).mtimeNs, real.mtimeNs, 'and mtime');
});

t.test('a file under a symlinked parent, and the same in an unclean spelling', async (t) => {
  const src = makeSource(t);
  const repo = newRepo(t);
  const w = write(repo, [path.join(src, 'link/file')]);
  t.equal(w.code, 0, w.stderr);
  t.equal(lastJson(w.stdout).files, 1);
  let target = restore(t, repo);
  sameAsSource(t, src, 'real/file', target, 'link/file');

  // Relative, with '//' and '.': cleaned on the text; the same snapshot path.
  const w2 = write(repo, ['.//link/./file'], src);
  t.equal(w2.code, 0, w2.stderr);
  t.equal(lastJson(w2.stdout).files, 1);
  t.same(snapshots(repo)[1].paths, [path.join(src, 'link/file')]);
  target = restore(t, repo);
  sameAsSource(t, src, 'real/file', target, 'link/file');
});

t.test("'.' backs up the working directory", async (t) => {
  const src = makeSource(t);
  const repo = newRepo(t);
  const w = write(repo, ['.'], path.join(src, 'real'));
  t.equal(w.code, 0, w.stderr);
  t.equal(lastJson(w.stdout).files, 3);
  t.same(snapshots(repo)[0].paths, [path.join(src, 'real')]);
  sameAsSource(t, src, 'real', restore(t, repo), 'real');
});

t.test("'link/' saves the directory a symlink leads to; 'link' the symlink", async (t) => {
  const src = makeSource(t);
  const repo = newRepo(t);
  const link = path.join(src, 'link');

  const w = write(repo, [`${link}/`]);
  t.equal(w.code, 0, w.stderr);
  t.equal(lastJson(w.stdout).files, 3, "real/'s three files saved");
  t.same(snapshots(repo)[0].paths, [link], 'recorded without the slash');
  const target = restore(t, repo);
  t.ok(lstatSync(path.join(target, link)).isDirectory(), 'restored as a directory');
  sameAsSource(t, src, 'real', target, 'link');

  const w2 = write(repo, [link]);
  t.equal(w2.code, 0, w2.stderr);
  t.equal(lastJson(w2.stdout).files, 0, 'no slash: the symlink itself');
  const target2 = restore(t, repo);
  t.equal(readlinkSync(path.join(target2, link)), 'real', 'restored as the symlink');
});

t.test('Debian /lib -> usr/lib: /lib/systemd/system is backed up', async (t) => {
  const dir = '/lib/systemd/system';
  if (!lstatSync('/lib').isSymbolicLink() || !existsSync(dir)) {
    t.pass('no symlinked /lib with systemd units here: nothing to check');
    return;
  }
  const repo = newRepo(t);
  const w = write(repo, [dir]);
  t.equal(w.code, 0, w.stderr);
  t.ok(lastJson(w.stdout).files > 0, `${lastJson(w.stdout).files} files`);
  const target = restore(t, repo);
  t.same(compareTrees(walkTree(dir), walkTree(path.join(target, dir)), { skip: ['atimeNs', 'nlink'] }), []);
  t.ok(lstatSync(path.join(target, 'lib')).isDirectory(), '/lib restored as a directory');
});

t.test('a path that cannot be saved fails the run (exit 2), and stores no snapshot', async (t) => {
  const src = makeSource(t);
  const repo = newRepo(t);
  const cases: Array<[string[], RegExp]> = [
    [[path.join(src, 'nope')], /nope: no such file or directory/],
    [[path.join(src, 'link/nope')], /link\/nope: no such file or directory/],
    [[path.join(src, 'real/dir'), path.join(src, 'missing')], /missing: no such file or directory/],
    [[`${path.join(src, 'filelink')}/`], /filelink\/: not a directory/],
    [[`${path.join(src, 'real/file')}/`], /file\/: not a directory/],
    // The inner path would be lost: the outer argument saves link as a symlink.
    [[src, path.join(src, 'link/dir')], /link is a symlink, saved as such/],
  ];
  for (const [args, msg] of cases) {
    const w = write(repo, args);
    t.equal(w.code, 2, `${args.join(' ')}: exit 2`);
    t.match(w.stderr, msg, args.join(' '));
    t.equal(w.stdout, '', 'no summary');
  }
  t.same(snapshots(repo), [], 'no snapshot stored');
});

t.test('nested arguments: a named path inside another is saved once, through a followed link', async (t) => {
  const src = makeSource(t);
  const repo = newRepo(t);
  // link/ is followed, so link/dir (below it) is reached through it.
  const w = write(repo, [`${path.join(src, 'link')}/`, path.join(src, 'link/dir/sub')]);
  t.equal(w.code, 0, w.stderr);
  t.equal(lastJson(w.stdout).files, 3);
  sameAsSource(t, src, 'real', restore(t, repo), 'link');
  // The outer directory with a named symlink-to-follow inside it: the trailing slash wins.
  const src2 = makeSource(t);
  const w2 = write(repo, [src2, `${path.join(src2, 'link')}/`]);
  t.equal(w2.code, 0, w2.stderr);
  const target = restore(t, repo);
  t.ok(lstatSync(path.join(target, src2, 'link')).isDirectory(), 'link saved as the directory it leads to');
  // real/ is listed twice in this run (as real and through link/), the second time with the
  // directory atimes the first listing moved.
  sameAsSource(t, src2, 'real', target, 'link', { skip: ['atimeNs'] });
  t.equal(readlinkSync(path.join(target, src2, 'filelink')), 'real/file', 'other symlinks stay symlinks');
});

t.test('restore --include of a path not in the snapshot: exit 16, nothing restored', async (t) => {
  const src = makeSource(t);
  const repo = newRepo(t);
  t.equal(write(repo, [path.join(src, 'real')]).code, 0);
  for (const inc of ['/nope', path.join(src, 'real/nope'), path.join(src, 'real/file/below-a-file')]) {
    const target = tempDir(t);
    const r = run('tsbak', ['restore', repo, 'latest', '--target', target, '--include', path.join(src, 'real/dir'), '--include', inc]);
    t.equal(r.code, 16, `--include ${inc}: exit 16`);
    t.match(r.stderr, `${inc} is not in snapshot`);
    t.same(readdirSync(target), [], 'nothing restored');
  }
  const target = tempDir(t);
  const ok = run('tsbak', ['restore', repo, 'latest', '--target', target, '--include', path.join(src, 'real/dir/')]);
  t.equal(ok.code, 0, ok.stderr);
  sameAsSource(t, src, 'real/dir', target, 'real/dir');
});

t.test('a followed link inside a backed-up directory: changes behind it are seen on the next run', async (t) => {
  const base = tempDir(t);
  const outside = path.join(base, 'outside');
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'f'), 'first\n');
  const src = path.join(base, 'src');
  mkdirSync(src);
  writeFileSync(path.join(src, 'plain'), 'plain\n');
  symlinkSync('../outside', path.join(src, 'link'));
  const repo = newRepo(t);
  const args = [src, `${path.join(src, 'link')}/`];
  t.equal(write(repo, args).code, 0);
  // src's listing is the same next time; what the link leads to is not.
  writeFileSync(path.join(outside, 'f'), 'second, longer\n');
  writeFileSync(path.join(outside, 'g'), 'new\n');
  const w = write(repo, args);
  t.equal(w.code, 0, w.stderr);
  const target = restore(t, repo);
  t.equal(readFileSync(path.join(target, src, 'link/f'), 'utf8'), 'second, longer\n');
  t.equal(readFileSync(path.join(target, src, 'link/g'), 'utf8'), 'new\n');
  t.equal(readFileSync(path.join(target, src, 'plain'), 'utf8'), 'plain\n');
});

t.test('an argument that cannot be read is an error, never a silent success', async (t) => {
  if (process.getuid?.() !== 0 || spawnSync('setpriv', ['--version']).status !== 0) {
    t.pass('needs root and setpriv to run the backup as another user: nothing to check');
    return;
  }
  const uid = 12345;
  const base = tempDir(t);
  chmodSync(base, 0o755);
  const src = path.join(base, 'src');
  mkdirSync(path.join(src, 'locked'), { recursive: true });
  mkdirSync(path.join(src, 'closed/inner'), { recursive: true });
  writeFileSync(path.join(src, 'secret'), 'root only\n');
  for (const [p, mode] of [['locked', 0o700], ['closed', 0o700], ['secret', 0o600]] as const) chmodSync(path.join(src, p), mode);
  const repo = path.join(base, 'repo'); // reachable by that user (tempDir's are 0700)
  t.equal(run('tsbak', ['init', repo]).code, 0);
  const cache = path.join(base, 'cache');
  mkdirSync(cache);
  spawnSync('chown', ['-R', String(uid), repo, cache]);
  // No tap instrumentation in the child: it would write its records where that user cannot.
  const env = Object.fromEntries(Object.entries(testEnv({ TSBAK_CACHE_DIR: cache, HOME: cache })).filter(([k]) => !/TAP/i.test(k)));
  const writeAs = (arg: string) => {
    const r = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', BIN('tsbak-write'), repo, arg], { env, encoding: 'utf8' });
    return { code: r.status, stderr: r.stderr };
  };
  let r = writeAs(path.join(src, 'locked'));
  t.equal(r.code, 3, 'an unreadable directory: exit 3');
  t.match(r.stderr, /locked: cannot list directory: EACCES/);
  r = writeAs(path.join(src, 'secret'));
  t.equal(r.code, 3, 'an unreadable file: exit 3');
  t.match(r.stderr, /secret: cannot read: EACCES/);
  r = writeAs(path.join(src, 'closed/inner'));
  t.equal(r.code, 2, 'below a directory that cannot be searched: exit 2');
  t.match(r.stderr, /closed\/inner: permission denied/);
});

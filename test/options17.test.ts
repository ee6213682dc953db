// Issue 17's options, through the programs: backup --files-from(-verbatim), --stdin,
// --exclude-if-present, --dry-run, -v; restore --exclude, --dry-run, --verify; snapshots
// --latest; --tag groups; --host/--path/--tag choosing latest; --repo and TSBAK_REPOSITORY;
// the small ones (--compression range, /proc, add-writer --new-password-file, bare names).
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { lastJson, newRepo, run } from './lib/cli.js';
import { tempDir } from './lib/temp.js';

/** Every object of the repository (name and size), to show a command wrote nothing. */
function objects(repo: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(repo, p));
    }
  };
  walk(repo);
  return out.sort();
}

function snapshots(repo: string, ...args: string[]): Array<{ id: string; paths: string[]; tags: string[]; host: string }> {
  const r = run('tsbak', ['snapshots', repo, '--json', ...args]);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

function ok(t: Test, r: { code: number; stderr: string }, what: string): void {
  t.equal(r.code, 0, `${what}: ${r.stderr}`);
}

function tree(t: Test): string {
  const src = path.join(tempDir(t), 'src');
  mkdirSync(path.join(src, 'a'), { recursive: true });
  mkdirSync(path.join(src, 'cache'));
  mkdirSync(path.join(src, 'tagged'));
  writeFileSync(path.join(src, 'a', 'one.txt'), 'one\n');
  writeFileSync(path.join(src, 'a', 'two.log'), 'two\n');
  writeFileSync(path.join(src, 'B.TXT'), 'b\n');
  writeFileSync(path.join(src, 'cache', '.nobackup'), '');
  writeFileSync(path.join(src, 'cache', 'x'), 'x\n');
  writeFileSync(path.join(src, 'tagged', '.marker'), 'keep me out\n');
  writeFileSync(path.join(src, 'tagged', 'y'), 'y\n');
  return src;
}

t.test('backup --files-from: comments and blank lines skipped; --files-from-verbatim: every line a path', async (t) => {
  const repo = newRepo(t);
  const src = tree(t);
  const dir = tempDir(t);
  const list = path.join(dir, 'list');
  writeFileSync(list, `# what to save\n\n  ${src}/a  \n${src}/B.TXT\r\n`);
  ok(t, run('tsbak', ['backup', repo, '--files-from', list]), 'files-from');
  t.same(snapshots(repo)[0]!.paths, [`${src}/B.TXT`, `${src}/a`]);
  // Verbatim: a name starting with '#' and one with spaces are paths.
  writeFileSync(path.join(src, '#hash'), 'h\n');
  writeFileSync(path.join(src, ' spaced'), 's\n');
  const vlist = path.join(dir, 'vlist');
  writeFileSync(vlist, `${src}/#hash\n${src}/ spaced\n`);
  ok(t, run('tsbak-write', [repo, '--files-from-verbatim', vlist, `${src}/a`]), 'verbatim with a path argument');
  t.same(snapshots(repo)[1]!.paths, [`${src}/ spaced`, `${src}/#hash`, `${src}/a`]);
  const empty = path.join(dir, 'empty');
  writeFileSync(empty, '# nothing\n\n');
  const none = run('tsbak', ['backup', repo, '--files-from', empty]);
  t.equal(none.code, 2);
  t.match(none.stderr, /nothing to back up: name paths \(the --files-from lists are empty\)/);
  const missing = run('tsbak', ['backup', repo, '--files-from', path.join(dir, 'nope')]);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /cannot read --files-from .*nope: ENOENT/);
  t.equal(snapshots(repo).length, 2);
});

t.test('backup --exclude-if-present FILE[:CONTENT]: directories holding it are left out', async (t) => {
  const repo = newRepo(t);
  const src = tree(t);
  ok(t, run('tsbak', ['backup', repo, src, '--exclude-if-present', '.nobackup', '--exclude-if-present', '.marker:keep me']), 'backup');
  const ls = run('tsbak', ['ls', repo, 'latest']).stdout.split('\n');
  t.ok(ls.includes(`${src}/a/one.txt`));
  t.notOk(ls.some((l) => l.startsWith(`${src}/cache`)), 'the marked directory is not stored');
  t.notOk(ls.some((l) => l.startsWith(`${src}/tagged`)), 'the marker with matching content');
  ok(t, run('tsbak', ['backup', repo, src, '--exclude-if-present', '.marker:other content']), 'backup 2');
  const ls2 = run('tsbak', ['ls', repo, 'latest']).stdout.split('\n');
  t.ok(ls2.includes(`${src}/tagged/y`), 'content differs: kept');
  const bad = run('tsbak', ['backup', repo, src, '--exclude-if-present', 'a/b']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--exclude-if-present a\/b: give a file name/);
});

t.test('backup --dry-run writes nothing; -v lists new and modified files', async (t) => {
  const repo = newRepo(t);
  const src = tree(t);
  const before = objects(repo);
  const dry = run('tsbak', ['backup', repo, src, '--dry-run', '-v']);
  ok(t, dry, 'dry run');
  t.same(objects(repo), before, 'no object written, no lock left');
  t.match(dry.stdout, new RegExp(`^new      ${src}/a/one.txt$`, 'm'));
  t.match(dry.stdout, /dry run: would store 7 files, \d+ dirs, .* nothing was written/);
  const dj = lastJson(run('tsbak', ['backup', repo, src, '-n', '--json']).stdout);
  t.equal(dj.dry_run, true);
  t.equal(dj.files, 7);
  t.ok(dj.bytes_to_add > 0 && dj.blobs_to_add > 0);
  t.same(objects(repo), before);
  ok(t, run('tsbak', ['backup', repo, src]), 'real backup');
  const after = objects(repo);
  writeFileSync(path.join(src, 'a', 'one.txt'), 'changed\n');
  writeFileSync(path.join(src, 'a', 'three'), '3\n');
  const v = run('tsbak', ['backup', repo, src, '-v']);
  ok(t, v, 'verbose');
  const listed = v.stdout.split('\n').filter((l) => /^(new|modified) /.test(l)).sort();
  t.same(listed, [`modified ${src}/a/one.txt`, `new      ${src}/a/three`], 'only the changed files');
  // A dry run against a parent: only what changed since would be added.
  const after2 = objects(repo);
  const dry2 = lastJson(run('tsbak', ['backup', repo, src, '-n', '--json']).stdout);
  t.equal(dry2.bytes_read, 0, 'nothing read: every file as in the parent');
  t.equal(dry2.files, 8);
  t.same(objects(repo), after2);
  t.not(after.length, before.length);
});

t.test('backup --stdin --stdin-filename: stdin stored as one file, restored byte for byte', async (t) => {
  const repo = newRepo(t);
  const dir = tempDir(t);
  const data = randomBytes(3 << 20).toString('base64'); // several chunks
  const r = run('tsbak-write', [repo, '--stdin', '--stdin-filename', 'db.sql', '--json', '--tag', 'db'], {}, data);
  ok(t, r, 'stdin backup');
  const j = lastJson(r.stdout);
  t.equal(j.files, 1);
  t.equal(j.bytes_read, Buffer.byteLength(data));
  const snap = snapshots(repo)[0]!;
  t.same(snap.paths, ['/db.sql']);
  t.same(snap.tags, ['db']);
  ok(t, run('tsbak', ['restore', repo, 'latest', '--target', path.join(dir, 'out'), '--verify']), 'restore');
  t.equal(readFileSync(path.join(dir, 'out', 'db.sql'), 'utf8'), data);
  const before = objects(repo);
  const dry = run('tsbak', ['backup', repo, '--stdin', '--dry-run', '--json'], {}, 'fresh bytes');
  ok(t, dry, 'stdin dry run');
  t.same([lastJson(dry.stdout).dry_run, lastJson(dry.stdout).bytes_read], [true, 11]);
  t.same(objects(repo), before, 'a dry run of stdin writes nothing');
  const def = run('tsbak', ['backup', repo, '--stdin'], {}, 'hello');
  ok(t, def, 'default name');
  t.same(snapshots(repo)[1]!.paths, ['/stdin']);
  const both = run('tsbak', ['backup', repo, dir, '--stdin'], {}, 'x');
  t.equal(both.code, 2);
  t.match(both.stderr, /--stdin backs up stdin alone/);
  const slash = run('tsbak', ['backup', repo, '--stdin', '--stdin-filename', 'a/b'], {}, 'x');
  t.equal(slash.code, 2);
  t.match(slash.stderr, /--stdin-filename "a\/b": give a file name/);
  const alone = run('tsbak', ['backup', repo, dir, '--stdin-filename', 'x']);
  t.equal(alone.code, 2);
  t.match(alone.stderr, /give --stdin too/);
  t.equal(snapshots(repo).length, 2);
});

t.test('restore --exclude, --iexclude, --dry-run, --verify', async (t) => {
  const repo = newRepo(t);
  const src = tree(t);
  const dir = tempDir(t);
  ok(t, run('tsbak', ['backup', repo, src]), 'backup');
  const target = path.join(dir, 'ex');
  ok(t, run('tsbak', ['restore', repo, 'latest', '-t', target, '--exclude', '*.log', '--exclude', 'cache/', '--iexclude', 'b.txt']), 'restore with excludes');
  t.ok(existsSync(path.join(target, src, 'a', 'one.txt')));
  t.notOk(existsSync(path.join(target, src, 'a', 'two.log')), '*.log');
  t.notOk(existsSync(path.join(target, src, 'cache')), 'cache/');
  t.notOk(existsSync(path.join(target, src, 'B.TXT')), '--iexclude b.txt');
  t.ok(existsSync(path.join(target, src, 'tagged', 'y')));

  const dryTarget = path.join(dir, 'dry');
  const dry = run('tsbak', ['restore', repo, 'latest', '-t', dryTarget, '--dry-run', '--include', `${src}/a`, '--exclude', '*.log']);
  ok(t, dry, 'dry run');
  t.match(dry.stdout, new RegExp(`^would restore ${src}/a/one.txt$`, 'm'));
  t.notMatch(dry.stdout, /two\.log/);
  t.match(dry.stdout, /would restore snapshot \w+ to .*: 1 file, \d+ dirs, 4 B/);
  t.notOk(existsSync(dryTarget), 'nothing written');
  const dj = JSON.parse(run('tsbak', ['restore', repo, 'latest', '-t', dryTarget, '-n', '--json']).stdout);
  t.equal(dj.dry_run, true);
  t.equal(dj.files, 7);
  t.ok(dj.paths.includes(`${src}/cache/x`));

  const good = run('tsbak', ['restore', repo, 'latest', '-t', path.join(dir, 'v'), '--verify', '--json']);
  ok(t, good, 'verify');
  t.same(JSON.parse(good.stdout).verified, { files: 7, bytes: 26, mismatches: [] });
  // A file the restore cannot write (a directory in its place): named by --verify, exit 14.
  const blocked = path.join(dir, 'blocked');
  mkdirSync(path.join(blocked, src, 'a', 'one.txt'), { recursive: true });
  writeFileSync(path.join(blocked, src, 'a', 'one.txt', 'inside'), 'z');
  const bad = run('tsbak', ['restore', repo, 'latest', '-t', blocked, '--verify']);
  t.equal(bad.code, 14, bad.stderr);
  t.match(bad.stderr, new RegExp(`verify: .*${src}/a/one.txt: size \\d+, the snapshot says 4`));
  t.match(bad.stdout, /verified 7 files, .*: 1 differ from the snapshot/);
});

t.test('snapshots --latest N per host and paths, --path; --tag a,b is both, repeated --tag either', async (t) => {
  const repo = newRepo(t);
  const src = tree(t);
  const a = path.join(src, 'a');
  for (const [p, host, tag] of [[src, 'h1', 'x,y'], [src, 'h1', 'x'], [src, 'h1', 'y'], [a, 'h1', 'z'], [src, 'h2', 'x,y']] as const) {
    ok(t, run('tsbak', ['backup', repo, p, '--host', host, '--tag', tag]), `backup ${host} ${tag}`);
  }
  const all = snapshots(repo);
  t.equal(all.length, 5);
  t.same(all[0]!.tags, ['x', 'y'], 'backup --tag x,y gives both tags');
  t.same(snapshots(repo, '--latest', '1').map((s) => s.id), [all[2]!.id, all[3]!.id, all[4]!.id], 'the newest of each host and paths');
  t.same(snapshots(repo, '--latest', '2', '--host', 'h1').map((s) => s.id), [all[1]!.id, all[2]!.id, all[3]!.id]);
  t.same(snapshots(repo, '--path', a).map((s) => s.id), [all[3]!.id]);
  t.same(snapshots(repo, '--tag', 'x,y').map((s) => s.id), [all[0]!.id, all[4]!.id], 'x,y: both');
  t.same(snapshots(repo, '--tag', 'x', '--tag', 'z').map((s) => s.id), [all[0]!.id, all[1]!.id, all[3]!.id, all[4]!.id], 'x or z');
  t.same(snapshots(repo, '--tag', 'x,y', '--tag', 'z', '--host', 'h1').map((s) => s.id), [all[0]!.id, all[3]!.id]);
  const bad = run('tsbak', ['snapshots', repo, '--latest', '0']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--latest 0: give a whole number/);

  // latest for ls, restore, warm and cost: chosen by --host, --path and --tag.
  const header = (args: string[]) => JSON.parse(run('tsbak', ['ls', repo, 'latest', '--json', ...args]).stdout).snapshot.id;
  t.equal(header([]), all[4]!.id);
  t.equal(header(['--host', 'h1']), all[3]!.id);
  t.equal(header(['--host', 'h1', '--path', src]), all[2]!.id);
  t.equal(header(['--tag', 'x']), all[4]!.id);
  t.equal(header(['--tag', 'x', '--host', 'h1']), all[1]!.id);
  t.equal(header(['--tag', 'x,y', '--host', 'h1']), all[0]!.id);
  const target = path.join(tempDir(t), 'r');
  const res = run('tsbak', ['restore', repo, 'latest', '--tag', 'z', '-t', target, '--json']);
  ok(t, res, 'restore --tag');
  t.equal(JSON.parse(res.stdout).snapshot, all[3]!.id);
  const cost = run('tsbak', ['cost', repo, 'latest', '--tag', 'z', '--json']);
  ok(t, cost, 'cost --tag');
  t.match(cost.stdout, all[3]!.id.slice(0, 8));
  const warm = run('tsbak', ['warm', repo, 'latest', '--tag', 'x,y', '--host', 'h1', '--dry-run', '--json']);
  ok(t, warm, 'warm --tag');
  const none = run('tsbak', ['ls', repo, 'latest', '--tag', 'nope']);
  t.equal(none.code, 16, none.stderr);
});

t.test('--repo, -r and TSBAK_REPOSITORY name the repository; the positional is left out', async (t) => {
  const repo = newRepo(t);
  const src = tree(t);
  ok(t, run('tsbak-write', ['--repo', repo, src]), 'tsbak-write --repo');
  ok(t, run('tsbak', ['backup', src], { TSBAK_REPOSITORY: repo }), 'backup with TSBAK_REPOSITORY');
  t.equal(snapshots(repo).length, 2);
  const s = run('tsbak', ['snapshots', '--json'], { TSBAK_REPOSITORY: repo });
  ok(t, s, 'snapshots');
  t.equal(JSON.parse(s.stdout).length, 2);
  const ls = run('tsbak', ['ls', 'latest', `${src}/a`], { TSBAK_REPOSITORY: repo });
  ok(t, ls, 'ls latest dir');
  t.same(ls.stdout.trim().split('\n'), [`${src}/a/one.txt`, `${src}/a/two.log`]);
  ok(t, run('tsbak', ['ls', '-r', repo, 'latest'], { TSBAK_REPOSITORY: '/nonexistent' }), '-r wins over the environment');
  const target = path.join(tempDir(t), 'out');
  ok(t, run('tsbak', ['restore', 'latest', '-t', target], { TSBAK_REPOSITORY: repo }), 'restore');
  t.ok(existsSync(path.join(target, src, 'B.TXT')));
  ok(t, run('tsbak', ['check'], { TSBAK_REPOSITORY: repo }), 'check');
  const other = path.join(tempDir(t), 'other');
  ok(t, run('tsbak', ['init', '-r', other]), 'init -r');
  t.ok(existsSync(path.join(other, 'config')));
  const both = run('tsbak', ['snapshots', repo], { TSBAK_REPOSITORY: repo });
  t.equal(both.code, 2);
  t.match(both.stderr, /unexpected argument .* \(the repository comes from TSBAK_REPOSITORY: name it there or here, not both\)/);
  const missing = run('tsbak', ['snapshots']);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /missing <repo> \(or give --repo, or set TSBAK_REPOSITORY\)/);
  t.match(run('tsbak', ['ls', '--help']).stdout, /<repo> is left out when --repo or TSBAK_REPOSITORY names the repository[\s\S]*-r, --repo <string>/);
});

t.test('small ones: --compression range, /proc paths fail at once, add-writer --protect --new-password-file, bare names', async (t) => {
  const dir = tempDir(t);
  for (const level of ['30', '-1', '2.5']) {
    const r = run('tsbak', ['init', path.join(dir, `c${level}`), `--compression=${level}`]);
    t.equal(r.code, 2, level);
    t.match(r.stderr, /--compression .*: give a zstd level from 1 \(fastest\) to 22 \(smallest\), or 0 for none/);
    t.notOk(existsSync(path.join(dir, `c${level}`)), 'no repository made');
  }
  ok(t, run('tsbak', ['init', path.join(dir, 'c22'), '--compression', '22']), 'level 22');
  ok(t, run('tsbak', ['init', path.join(dir, 'c0'), '--compression', '0']), 'level 0');

  const init = run('tsbak', ['init', '/proc/tsbak-x']);
  t.equal(init.code, 2, init.stderr);
  t.match(init.stderr, /cannot create directory \/proc\/tsbak-x: its file system refuses new directories there/);
  const repo = newRepo(t);
  const src = tree(t);
  ok(t, run('tsbak', ['backup', repo, src]), 'backup');
  const restore = run('tsbak', ['restore', repo, 'latest', '--target', '/proc/tsbak-x/y']);
  t.not(restore.code, 0);
  t.match(restore.stderr, /cannot create directory \/proc\/tsbak-x: its file system refuses new directories there/);
  const cache = run('tsbak', ['snapshots', repo, '--cache-dir', '/proc/tsbak-x']);
  t.equal(cache.code, 2);
  t.match(cache.stderr, /--cache-dir \/proc\/tsbak-x: its file system refuses new directories there; choose another directory/);

  const pw = path.join(dir, 'keypw');
  writeFileSync(pw, 'key secret\n');
  const key = path.join(dir, 'w.key');
  ok(t, run('tsbak', ['key', 'add-writer', repo, '--name', 'w', '--out', key, '--protect', '--new-password-file', pw]), 'add-writer --protect');
  t.ok(JSON.parse(readFileSync(key, 'utf8')).wrapped, 'the key file is protected');
  const wpw = path.join(dir, 'wrong');
  writeFileSync(wpw, 'not it\n');
  t.not(run('tsbak-write', [repo, src, '--key-file', key, '--password-file', wpw], { TSBAK_PASSWORD: '' }).code, 0, 'the wrong passphrase does not open it');
  ok(t, run('tsbak-write', [repo, src, '--key-file', key, '--password-file', pw], { TSBAK_PASSWORD: '' }), 'its passphrase opens it');
  const noTty = run('tsbak', ['key', 'add-writer', repo, '--name', 'w2', '--out', path.join(dir, 'w2.key'), '--protect']);
  t.equal(noTty.code, 2);
  t.match(noTty.stderr, /no passphrase for the key file: give it with --new-password-file/);
  const noProtect = run('tsbak', ['key', 'add-writer', repo, '--name', 'w3', '--out', path.join(dir, 'w3.key'), '--new-password-file', pw]);
  t.equal(noProtect.code, 2);
  t.match(noProtect.stderr, /give --protect too/);

  // A bare name is an S3 bucket, said in one line (the endpoint refuses: nothing is made).
  const bare = run('tsbak', ['snapshots', 'relrepo', '--s3-endpoint', 'http://127.0.0.1:9'], { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', AWS_REGION: 'us-east-1', AWS_MAX_ATTEMPTS: '1' });
  t.not(bare.code, 0);
  t.match(bare.stderr, /^tsbak: 'relrepo' is taken as the S3 bucket s3:\/\/relrepo \(write \.\/relrepo for a local directory, or s3:\/\/relrepo to silence this\)$/m);
  t.match(bare.stderr, /--s3-endpoint/, 'the hint names --s3-endpoint');
});

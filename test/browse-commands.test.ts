// find, diff, dump, stats and tag through the real CLI on real repositories.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { BIN, lastJson, newRepo, run, testEnv } from './lib/cli.js';
import { tempDir } from './lib/temp.js';

function backup(repo: string, src: string, extra: string[] = []): string {
  const r = run('tsbak-write', [repo, src, '--json', ...extra]);
  if (r.code !== 0) throw new Error(`backup exited ${r.code}: ${r.stderr}`);
  return lastJson(r.stdout).snapshot_id;
}

function snapshots(repo: string): any[] {
  const r = run('tsbak', ['snapshots', repo, '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

/** A tree with a file of several chunks, a sparse-ish file of zeros, a symlink, a hardlink and odd names. */
function makeSource(dir: string): string {
  const src = path.join(dir, 'src');
  mkdirSync(path.join(src, 'docs', 'deep'), { recursive: true });
  writeFileSync(path.join(src, 'big.bin'), randomBytes(5 << 20));
  writeFileSync(path.join(src, 'docs', 'Readme.TXT'), 'read me\n');
  writeFileSync(path.join(src, 'docs', 'notes.txt'), 'notes\n'.repeat(1000));
  writeFileSync(path.join(src, 'docs', 'deep', 'notes.txt'), 'deeper\n');
  writeFileSync(path.join(src, 'zeros'), Buffer.alloc(300_000));
  symlinkSync('docs/notes.txt', path.join(src, 'link'));
  linkSync(path.join(src, 'docs', 'notes.txt'), path.join(src, 'hard'));
  writeFileSync(Buffer.from(path.join(src, 'docs') + '/bad\xffname.txt', 'latin1'), 'not utf-8\n');
  writeFileSync(path.join(src, 'docs', 'new\nline.txt'), 'newline\n');
  chmodSync(path.join(src, 'docs', 'Readme.TXT'), 0o640);
  utimesSync(path.join(src, 'docs', 'Readme.TXT'), new Date('2021-05-06T07:08:09.123Z'), new Date('2021-05-06T07:08:09.123Z'));
  return src;
}

t.test('find: names, paths, case, several snapshots, JSON with raw names', async (t) => {
  const repo = newRepo(t);
  const src = makeSource(tempDir(t));
  backup(repo, src, ['--tag', 'first']);
  rmSync(path.join(src, 'docs', 'deep', 'notes.txt'));
  backup(repo, src);

  const byName = run('tsbak', ['find', repo, 'notes.txt', '--json']);
  t.equal(byName.code, 0, byName.stderr);
  const j = JSON.parse(byName.stdout);
  t.equal(j.snapshots_searched, 2);
  t.equal(j.snapshots.length, 2);
  t.same(j.snapshots[0].matches.map((m: any) => m.path), [`${src}/docs/deep/notes.txt`, `${src}/docs/notes.txt`], 'sorted as a walk lists them');
  t.same(j.snapshots[1].matches.map((m: any) => m.path), [`${src}/docs/notes.txt`]);
  const m = j.snapshots[1].matches[0];
  t.equal(m.type, 'file');
  t.equal(m.size, 6000);
  t.equal(m.mode, 0o644);
  t.match(m.mtime_iso, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  t.match(m.mtime, /^-?\d+$/, 'mtime: nanoseconds, as ls --json');
  t.equal(j.hits, 3);

  const tagged = JSON.parse(run('tsbak', ['find', repo, 'notes.txt', '--tag', 'first', '--json']).stdout);
  t.equal(tagged.snapshots_searched, 1, '--tag selects the snapshots searched');
  const one = JSON.parse(run('tsbak', ['find', repo, 'notes.txt', '--snapshot', 'latest', '--json']).stdout);
  t.equal(one.hits, 1);

  const glob = JSON.parse(run('tsbak', ['find', repo, '*.txt', '--snapshot', 'latest', '--json']).stdout);
  t.equal(glob.hits, 3, 'notes.txt, bad\\xffname.txt, new\\nline.txt (Readme.TXT is upper case)');
  const icase = JSON.parse(run('tsbak', ['find', repo, '*.txt', '--snapshot', 'latest', '--ignore-case', '--json']).stdout);
  t.equal(icase.hits, 4);
  const anchored = JSON.parse(run('tsbak', ['find', repo, `${src}/docs/*.txt`, '--snapshot', 'latest', '--json']).stdout);
  t.equal(anchored.hits, 3, 'an absolute path pattern');
  const suffix = JSON.parse(run('tsbak', ['find', repo, 'deep/*', '--json']).stdout);
  t.same(suffix.snapshots.map((s: any) => s.matches.map((x: any) => x.path)), [[`${src}/docs/deep/notes.txt`]], "a relative path pattern matches the path's last components");
  const star2 = JSON.parse(run('tsbak', ['find', repo, 'src/**/notes.txt', '--snapshot', j.snapshots[0].snapshot, '--json']).stdout);
  t.equal(star2.hits, 2, '** spans directories');

  const bad = glob.snapshots[0].matches.find((x: any) => x.name_b64);
  t.ok(bad, 'the name that is not UTF-8 has name_b64');
  t.equal(Buffer.from(bad.name_b64, 'base64').toString('latin1'), 'bad\xffname.txt', 'lossless');
  t.equal(bad.name, 'bad\ufffdname.txt', 'the display form: UTF-8 with U+FFFD, as every JSON name');
  t.equal(Buffer.from(bad.path_b64, 'base64').toString('latin1'), `${src}/docs/bad\xffname.txt`);
  const nl = glob.snapshots[0].matches.find((x: any) => x.name.startsWith('new'));
  t.equal(nl.name, 'new\nline.txt', 'valid UTF-8 is given as is in JSON');
  t.notOk(nl.name_b64);

  const text = run('tsbak', ['find', repo, '*.txt', '--snapshot', 'latest']);
  t.equal(text.code, 0);
  t.match(text.stdout, /new\\nline\.txt/, 'a newline prints escaped');
  t.match(text.stdout, /bad\\xffname\.txt/);
  t.match(text.stdout, /-rw-r--r-- .* 6000 +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC +\S+\/docs\/notes\.txt/);
  t.match(text.stdout, /3 matches in 1 snapshot of 1 searched/);

  const none = run('tsbak', ['find', repo, 'nothing-like-this']);
  t.equal(none.code, 0);
  t.match(none.stdout, /0 matches in 0 snapshots of 2 searched/);
  const badPattern = run('tsbak', ['find', repo, 'a[b']);
  t.equal(badPattern.code, 2);
  t.match(badPattern.stderr, /pattern "a\[b" has '\[' without its '\]'/);
});

t.test('diff: added, removed, content, metadata and type changes, with totals', async (t) => {
  const repo = newRepo(t);
  const src = makeSource(tempDir(t));
  const a = backup(repo, src);
  writeFileSync(path.join(src, 'docs', 'added.txt'), 'a new file\n');
  rmSync(path.join(src, 'docs', 'deep'), { recursive: true });
  writeFileSync(path.join(src, 'docs', 'notes.txt'), 'other notes\n');
  chmodSync(path.join(src, 'zeros'), 0o600);
  rmSync(path.join(src, 'link'));
  mkdirSync(path.join(src, 'link'));
  const b = backup(repo, src);
  const [sa, sb] = snapshots(repo);

  const r = run('tsbak', ['diff', repo, sa.id, sb.id, '--json']);
  t.equal(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout);
  t.equal(d.snapshot_a, sa.id);
  t.equal(d.snapshot_b, sb.id);
  const ch = Object.fromEntries(d.changes.filter((c: any) => c.path.startsWith(src)).map((c: any) => [c.path.slice(src.length) || '/', c.modifier]));
  t.equal(ch['/docs/added.txt'], '+');
  t.equal(ch['/docs/deep'], '-');
  t.equal(ch['/docs/deep/notes.txt'], '-', 'what was below a removed directory is listed too');
  t.equal(ch['/docs/notes.txt'], 'M');
  t.equal(ch['/hard'], 'M', 'the other name of the changed inode');
  t.equal(ch['/zeros'], 'U', 'mode only');
  t.equal(ch['/link'], 'T', 'symlink to directory');
  t.notOk(ch['/big.bin'], 'unchanged files are not listed');
  t.same(d.stats.files, { added: 1, removed: 1, changed: 3 }, 'M, M and U');
  t.equal(d.stats.dirs.removed, 1);
  t.ok(d.stats.bytes_added > 0 && d.stats.bytes_removed > 0);
  t.equal(d.stats.bytes_added, 'a new file\n'.length + 'other notes\n'.length, 'the new chunks of the new and changed files');

  const text = run('tsbak', ['diff', repo, sa.id.slice(0, 8), 'latest']);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /^\+    \S+\/docs\/added\.txt$/m);
  t.match(text.stdout, /^-    \S+\/docs\/deep\/$/m);
  t.match(text.stdout, /^T    \S+\/link\/$/m);
  t.match(text.stdout, /Files: +1 new, +1 removed, +3 changed/);
  const same = JSON.parse(run('tsbak', ['diff', repo, sb.id, sb.id, '--json']).stdout);
  t.same(same.changes, [], 'a snapshot against itself: nothing');
  t.equal(run('tsbak', ['diff', repo, 'ffff', sb.id]).code, 16, 'an unknown snapshot');
  t.ok(a !== undefined && b !== undefined);
});

function dump(repo: string, args: string[]): { code: number; out: Buffer; err: string } {
  const r = spawnSync(BIN('tsbak'), ['dump', repo, ...args], { env: testEnv(), maxBuffer: 256 << 20 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr.toString() };
}

/** Every entry below `dir`: relative path -> [kind, mode, mtime in s, content or target]. */
function listing(dir: string, opts: { mtimeNs?: boolean } = {}): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: Buffer, rel: string) => {
    for (const n of readdirSync(d, { encoding: 'buffer' })) {
      const p = Buffer.concat([d, Buffer.from('/'), n]);
      const r = rel + '/' + n.toString('latin1');
      const st = lstatSync(p, { bigint: true });
      const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'file';
      const body = kind === 'file' ? readFileSync(p).toString('base64').slice(0, 64) + readFileSync(p).length : kind === 'link' ? readlinkSync(p) : '';
      const mtime = kind === 'link' ? '' : opts.mtimeNs ? String(st.mtimeNs) : String(st.mtimeNs / 1_000_000_000n);
      out[r] = `${kind} ${(Number(st.mode) & 0o7777).toString(8)} ${kind === 'dir' ? '' : mtime} ${body}`;
      if (kind === 'dir') walk(p, r);
    }
  };
  walk(Buffer.from(dir), '');
  return out;
}

t.test('dump: a file is its bytes; a directory as tar and zip extracts to the same tree', async (t) => {
  const repo = newRepo(t);
  const tmp = tempDir(t);
  const src = makeSource(tmp);
  backup(repo, src);

  const big = dump(repo, ['latest', `${src}/big.bin`]);
  t.equal(big.code, 0, big.err);
  t.ok(big.out.equals(readFileSync(path.join(src, 'big.bin'))), 'a file of several chunks, byte for byte');
  const zeros = dump(repo, ['latest', `${src}/zeros`]);
  t.ok(zeros.out.equals(readFileSync(path.join(src, 'zeros'))));
  const missing = dump(repo, ['latest', `${src}/nope`]);
  t.equal(missing.code, 16);
  t.match(missing.err, /nope is not in snapshot/);

  const tar = dump(repo, ['latest', src]);
  t.equal(tar.code, 0, tar.err);
  const tx = path.join(tmp, 'tar');
  mkdirSync(tx);
  const x = spawnSync('tar', ['-x', '-C', tx], { input: tar.out });
  t.equal(x.status, 0, x.stderr?.toString());
  t.same(listing(path.join(tx, src.slice(1)), { mtimeNs: true }), listing(src, { mtimeNs: true }), 'content, modes, mtimes to the ns, symlinks');
  t.equal(lstatSync(path.join(tx, src.slice(1), 'hard')).ino, lstatSync(path.join(tx, src.slice(1), 'docs', 'notes.txt')).ino, 'the hardlink is one inode again');

  const sub = dump(repo, ['latest', `${src}/docs`, '--archive', 'tar']);
  const list = spawnSync('tar', ['-t'], { input: sub.out }).stdout.toString();
  t.match(list, new RegExp(`^${src.slice(1)}/docs/$`, 'm'), 'named by the path in the snapshot');
  t.notMatch(list, /big\.bin/);

  const zip = dump(repo, ['latest', src, '--archive', 'zip']);
  t.equal(zip.code, 0, zip.err);
  const zx = path.join(tmp, 'zip');
  mkdirSync(zx);
  writeFileSync(path.join(tmp, 'a.zip'), zip.out);
  const u = spawnSync('unzip', ['-q', path.join(tmp, 'a.zip')], { cwd: zx });
  t.equal(u.status, 0, u.stderr?.toString());
  const got = listing(path.join(zx, src.slice(1)));
  const want = listing(src);
  // unzip sets no directory mtimes it cannot order, and the hardlink comes back as a second file: compare files and links
  for (const k of Object.keys(want)) if (want[k]!.startsWith('dir')) delete want[k], delete got[k];
  // unzip drops control characters and bytes it cannot show from the names it writes: those two are checked in the archive itself
  for (const m of [got, want]) for (const k of Object.keys(m)) if (/new.?line|bad.?name/s.test(k)) delete m[k];
  t.same(got, want, 'zip: content, modes, mtimes (to the second), symlinks');
  const py = spawnSync('python3', ['-c', "import zipfile,sys\nfor i in zipfile.ZipFile(sys.argv[1]).infolist(): print((i.filename.encode('utf-8') if i.flag_bits & 0x800 else i.filename.encode('cp437')).hex(), i.CRC)", path.join(tmp, 'a.zip')]);
  t.equal(py.status, 0, py.stderr?.toString());
  const names = py.stdout.toString().trim().split('\n').map((l) => Buffer.from(l.split(' ')[0]!, 'hex').toString('latin1'));
  t.ok(names.includes(`${src.slice(1)}/docs/bad\xffname.txt`), 'a name that is not UTF-8: its bytes');
  t.ok(names.includes(Buffer.from(`${src.slice(1)}/docs/new\nline.txt`).toString('latin1')), 'a name with a newline: as it is');
  t.equal(spawnSync('unzip', ['-tq', path.join(tmp, 'a.zip')]).status, 0, 'unzip -t: every CRC checks');
});

t.test('dump into a pipe nobody reads yet: the archive arrives whole once it is read', async (t) => {
  const repo = newRepo(t);
  const tmp = tempDir(t);
  const src = path.join(tmp, 'src');
  mkdirSync(src);
  // 72 KB of tar (34 files, each a pax header, a header and a block) in small writes: the 64 KiB pipe fills, and the rest waits in the process's
  // stream (under its 16 KiB high-water mark, so the writer never waits for it). An exit that
  // did not wait for it would drop the archive's end.
  const files = Array.from({ length: 34 }, (_, i) => [`f${String(i).padStart(2, '0')}`, randomBytes(400)] as const);
  for (const [name, data] of files) writeFileSync(path.join(src, name), data);
  backup(repo, src);
  const out = path.join(tmp, 'out.tar');
  // The reader starts once dump has exited, or after a bound if dump waits for its reader (as
  // it must): the bound decides only how long this takes, never what arrives.
  const script = `{ "$0" dump "$1" latest "$2"; echo $? > "$3.code"; } | { i=0; while [ ! -e "$3.code" ] && [ $i -lt 100 ]; do sleep 0.02; i=$((i+1)); done; cat > "$3"; }`;
  const r = spawnSync('bash', ['-c', script, BIN('tsbak'), repo, src, out], { env: testEnv() });
  t.equal(r.status, 0, r.stderr?.toString());
  t.equal(readFileSync(`${out}.code`, 'utf8').trim(), '0', 'dump exited 0');
  const tx = path.join(tmp, 'x');
  mkdirSync(tx);
  const x = spawnSync('tar', ['-x', '-C', tx], { input: readFileSync(out) });
  t.equal(x.status, 0, x.stderr?.toString());
  t.ok(files.every(([name, data]) => readFileSync(path.join(tx, src.slice(1), name)).equals(data)), 'every file, the last one too');
  t.equal(readFileSync(out).length % 512, 0, 'whole tar blocks');
});

t.test('dump: data that cannot be read stops it with exit 14, naming what is missing', async (t) => {
  const repo = newRepo(t);
  const src = path.join(tempDir(t), 'src');
  mkdirSync(src);
  writeFileSync(path.join(src, 'f'), randomBytes(200_000));
  backup(repo, src);
  const packs = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? packs(path.join(dir, e.name)) : [path.join(dir, e.name)]));
  for (const p of packs(path.join(repo, 'packs', 'data'))) rmSync(p);
  const file = dump(repo, ['latest', `${src}/f`]);
  t.equal(file.code, 14, file.err);
  t.match(file.err, /pack packs\/data\/\S+ is missing .*run 'tsbak check'/);
  const dir = dump(repo, ['latest', src]);
  t.equal(dir.code, 14);
  const x = spawnSync('tar', ['-t'], { input: dir.out });
  t.not(x.status, 0, 'the archive is cut short: tar says so');
});

t.test('stats: restore-size, files-by-contents, raw-data', async (t) => {
  const repo = newRepo(t);
  const src = path.join(tempDir(t), 'src');
  mkdirSync(src);
  writeFileSync(path.join(src, 'a'), 'x'.repeat(100_000));
  writeFileSync(path.join(src, 'b'), 'x'.repeat(100_000));
  writeFileSync(path.join(src, 'c'), 'small\n');
  linkSync(path.join(src, 'c'), path.join(src, 'c2'));
  backup(repo, src);
  backup(repo, src, ['--force']);

  const rs = JSON.parse(run('tsbak', ['stats', repo, 'latest', '--json']).stdout);
  t.same(rs, { mode: 'restore-size', snapshots_count: 1, total_size: 200_006, total_file_count: 3, total_dir_count: rs.total_dir_count, total_other_count: 0 }, 'the hardlinked inode once');
  const all = JSON.parse(run('tsbak', ['stats', repo, '--json']).stdout);
  t.equal(all.snapshots_count, 2);
  t.equal(all.total_size, 400_012, 'restore-size counts each snapshot');
  const fc = JSON.parse(run('tsbak', ['stats', repo, '--mode', 'files-by-contents', '--json']).stdout);
  t.equal(fc.total_file_count, 2, 'a and b have one content; c and c2 another');
  t.equal(fc.total_size, 100_006);
  const raw = JSON.parse(run('tsbak', ['stats', repo, '--mode', 'raw-data', '--json']).stdout);
  t.ok(raw.total_blob_count >= 3, 'data blobs and trees');
  t.ok(raw.total_uncompressed_size >= 100_006);
  t.ok(raw.compression_ratio > 10, `repetitive data compresses (${raw.compression_ratio})`);
  t.equal(raw.missing_blob_count, 0);
  const text = run('tsbak', ['stats', repo, '--mode', 'raw-data']);
  t.match(text.stdout, /Compression Ratio: +\d+\.\d\dx/);
  t.equal(run('tsbak', ['stats', repo, '--mode', 'bogus']).code, 2);
});

t.test('tag: a new signed snapshot replaces the old one; write-only keys refused', async (t) => {
  const repo = newRepo(t);
  const tmp = tempDir(t);
  const src = path.join(tmp, 'src');
  mkdirSync(src);
  writeFileSync(path.join(src, 'f'), 'data\n');
  backup(repo, src, ['--tag', 'keep']);
  backup(repo, src);
  const [s1, s2] = snapshots(repo);

  const add = run('tsbak', ['tag', repo, '--add', 'a,b', s1.id.slice(0, 8), '--json']);
  t.equal(add.code, 0, add.stderr);
  const r = JSON.parse(add.stdout);
  t.equal(r.changed.length, 1);
  t.equal(r.changed[0].replaced, s1.id);
  t.same(r.changed[0].tags, ['keep', 'a', 'b']);
  let now = snapshots(repo);
  t.equal(now.length, 2, 'the old snapshot is gone');
  const n1 = now.find((s) => s.id === r.changed[0].snapshot);
  t.ok(n1);
  t.equal(n1.original, s1.id);
  for (const k of ['tree', 'time', 'host', 'paths', 'user', 'program', 'stats']) t.same(n1[k], s1[k], `${k} kept`);
  t.same(n1.signer, { id: 'master', name: 'master' });
  t.notOk(now.some((s) => s.id === s1.id));

  const again = run('tsbak', ['tag', repo, '--add', 'a', n1.id]);
  t.match(again.stdout, /0 snapshots changed .* 1 unchanged/, 'nothing to change: not rewritten');
  const rm = JSON.parse(run('tsbak', ['tag', repo, '--remove', 'a', '--tag', 'keep', '--json']).stdout);
  t.equal(rm.changed.length, 1, 'without ids, the snapshots --tag selects');
  now = snapshots(repo);
  const n2 = now.find((s) => s.id === rm.changed[0].snapshot);
  t.same(n2.tags, ['keep', 'b']);
  t.equal(n2.original, s1.id, 'original names the first snapshot of the chain');

  const set = JSON.parse(run('tsbak', ['tag', repo, '--set', 'x', '--json']).stdout);
  t.equal(set.changed.length, 2);
  t.same(snapshots(repo).map((s) => s.tags), [['x'], ['x']]);
  t.equal(run('tsbak', ['check', repo]).code, 0, 'check passes');
  const restored = path.join(tmp, 'r');
  const res = run('tsbak', ['restore', repo, 'latest', '--target', restored]);
  t.equal(res.code, 0, res.stderr);
  t.equal(readFileSync(path.join(restored, src, 'f'), 'utf8'), 'data\n');

  t.equal(run('tsbak', ['tag', repo, '--set', 'x', '--add', 'y']).code, 2, '--set with --add');
  t.equal(run('tsbak', ['tag', repo]).code, 2, 'nothing to do');
  const key = path.join(tmp, 'w.key');
  t.equal(run('tsbak', ['key', 'add-writer', repo, '--name', 'laptop', '--out', key]).code, 0);
  const w = run('tsbak', ['tag', repo, '--key-file', key, '--add', 'z']);
  t.equal(w.code, 12, w.stderr);
  t.match(w.stderr, /full key/);
  t.equal(snapshots(repo).length, 2);
  t.ok(s2);
});

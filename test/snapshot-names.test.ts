// The names a mount shows for snapshots are accepted wherever a snapshot is named (issue 18):
// the names are read from a real mount and given to the real CLI. Two snapshots share a
// second (made in-process with the same time as a backup's), so the mount shows one as
// <time> and the other as <time>-2.
import t from 'tap';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { LocalBackend } from '../src/backend/local.js';
import { Repository } from '../src/repo/repository.js';
import { lastJson, newRepo, run } from './lib/cli.js';
import { mountBg, mountPoint } from './lib/fuse-helpers.js';
import { tempDir } from './lib/temp.js';

process.env.TSBAK_FAST_KDF = '1';

t.test('mount names as snapshot ids: restore, ls, find, diff, dump, stats, tag, forget', async (t) => {
  const dir = tempDir(t);
  const src = path.join(dir, 'src');
  mkdirSync(src);
  writeFileSync(path.join(src, 'a.txt'), 'first\n');
  const repo = newRepo(t);
  let r = run('tsbak-write', ['--json', repo, src]);
  t.equal(r.code, 0, r.stderr);
  const first: string = lastJson(r.stdout).snapshot_id;
  t.match(first, /^[0-9a-f]{64}$/);

  // A twin at the same time, with a tag and other content's root (the same tree is enough to tell them apart by id).
  const rp = await Repository.open(new LocalBackend(repo), { password: 'correct horse' });
  const a = await rp.loadSnapshot(first);
  const twin = await rp.saveSnapshot({ ...a.info, tags: ['twin'] });
  // And one a day earlier: a prefix of its date names it alone.
  const dayBefore = new Date(Date.parse(a.info.time) - 86_400_000).toISOString();
  const older = await rp.saveSnapshot({ ...a.info, time: dayBefore });

  const mnt = mountPoint(t, path.join(dir, 'mnt'));
  r = mountBg(repo, mnt);
  t.equal(r.code, 0, r.stderr);
  const names = readdirSync(path.join(mnt, 'snapshots')).filter((n) => n !== 'latest').sort();
  t.equal(names.length, 3, `names: ${names.join(' ')}`);
  // Which id each name is, as the mount says (ids/<short> -> ../snapshots/<name>).
  const idOf = new Map<string, string>();
  for (const short of readdirSync(path.join(mnt, 'ids'))) idOf.set(path.basename(readlinkSync(path.join(mnt, 'ids', short))), short);
  const sec = a.info.time.slice(0, 19) + 'Z';
  t.same(names, [dayBefore.slice(0, 19) + 'Z', sec, `${sec}-2`]);
  t.same(new Set([idOf.get(sec), idOf.get(`${sec}-2`)]), new Set([first.slice(0, 8), twin.slice(0, 8)]));
  t.equal(idOf.get(names[0]!), older.slice(0, 8));

  const lsId = (ref: string, extra: string[] = []) => {
    const x = run('tsbak', ['ls', '--json', repo, ref, ...extra]);
    return x.code === 0 ? (JSON.parse(x.stdout).snapshot.id as string).slice(0, 8) : `exit ${x.code}: ${x.stderr}`;
  };
  // Every name and every path of the mount to a snapshot names the snapshot the mount shows there.
  for (const n of names) {
    t.equal(lsId(n), idOf.get(n), `ls ${n}`);
    t.equal(lsId(path.join(mnt, 'snapshots', n)), idOf.get(n), `ls <mount>/snapshots/${n}`);
    t.equal(lsId(`snapshots/${n}/`), idOf.get(n), `ls snapshots/${n}/`);
    t.equal(lsId(path.join(mnt, 'hosts', a.info.host, n)), idOf.get(n), `ls hosts/<host>/${n}`);
  }
  t.equal(lsId(path.join(mnt, 'tags', 'twin', idOf.get(sec) === twin.slice(0, 8) ? sec : `${sec}-2`)), twin.slice(0, 8), 'tags/twin/<name>');
  t.equal(lsId(path.join(mnt, 'ids', first.slice(0, 8))), first.slice(0, 8), 'ids/<short>');
  t.equal(lsId(path.join(mnt, 'snapshots', 'latest')), lsId('latest'), 'snapshots/latest is latest');
  t.equal(lsId(dayBefore.slice(0, 10)), older.slice(0, 8), 'a date that covers one snapshot');

  // The first of a shared second is the mount's <time>, with a warning naming the other.
  r = run('tsbak', ['ls', repo, sec]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, `2 snapshots share the second of ${sec}`);
  t.match(r.stderr, `${sec}-2`);

  // Ambiguous: a prefix covering both, listed with their ids; exit 2.
  r = run('tsbak', ['ls', repo, sec.slice(0, 16)]);
  t.equal(r.code, 2);
  t.match(r.stderr, 'is ambiguous');
  t.match(r.stderr, `${sec} (`);
  t.match(r.stderr, `${sec}-2 (`);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  // Not there: exit 16, naming what is at that second.
  r = run('tsbak', ['ls', repo, `${sec}-3`]);
  t.equal(r.code, 16);
  t.match(r.stderr, `no snapshot named ${sec}-3`);
  t.match(r.stderr, `${sec}-2 (`);
  // A tag or host the snapshot does not have.
  r = run('tsbak', ['ls', repo, path.join(mnt, 'tags', 'twin', names[0]!)]);
  t.equal(r.code, 16);
  t.match(r.stderr, 'has no tag twin');
  // A path inside a snapshot: name the snapshot and the path separately.
  r = run('tsbak', ['restore', repo, path.join(mnt, 'snapshots', sec, 'x', 'y'), '--target', path.join(dir, 'nowhere')]);
  t.equal(r.code, 2);
  t.match(r.stderr, `is a path inside snapshot ${sec}: name the snapshot (${sec}) and give /x/y`);

  // restore by name (the failing command)
  const target = path.join(dir, 'restored');
  r = run('tsbak', ['restore', repo, `${sec}-2`, '--target', target]);
  t.equal(r.code, 0, r.stderr);
  t.equal(readFileSync(path.join(target, src, 'a.txt'), 'utf8'), 'first\n');
  // find -s, diff, dump, stats
  r = run('tsbak', ['find', '--json', repo, 'a.txt', '-s', names[0]!]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, older);
  r = run('tsbak', ['diff', repo, names[0]!, `${sec}-2`]);
  t.equal(r.code, 0, r.stderr);
  r = run('tsbak', ['dump', repo, path.join(mnt, 'snapshots', `${sec}-2`), path.join(src, 'a.txt')]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'first\n');
  r = run('tsbak', ['stats', '--json', repo, sec]);
  t.equal(r.code, 0, r.stderr);
  // tag and forget by name (the last: they change the names)
  r = run('tsbak', ['tag', repo, names[0]!, '--add', 'old']);
  t.equal(r.code, 0, r.stderr);
  r = run('tsbak', ['forget', repo, `${sec}-2`]);
  t.equal(r.code, 0, r.stderr);
  r = run('tsbak', ['snapshots', '--json', repo]);
  const left = (JSON.parse(r.stdout) as Array<{ id: string; tags: string[] }>).map((s) => s.id);
  t.equal(left.length, 2);
  t.notOk(left.includes(idOf.get(`${sec}-2`) === first.slice(0, 8) ? first : twin), 'the snapshot named <time>-2 was forgotten');
});

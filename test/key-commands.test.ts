// key add-writer, add-password and passwd: what they refuse, and that no key is lost or left unusable.
import t from 'tap';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { run, newRepo } from './lib/cli.js';
import { tempDir } from './lib/temp.js';

const keyObjects = (repo: string) => readdirSync(path.join(repo, 'keys')).filter((n) => !n.startsWith('.'));

t.test('add-writer: an --out that cannot be written adds no key', async (t) => {
  const repo = newRepo(t);
  const dir = tempDir(t);
  const taken = path.join(dir, 'taken.key');
  writeFileSync(taken, 'mine\n');
  const before = keyObjects(repo).length;

  const exists = run('tsbak', ['key', 'add-writer', repo, '--name', 'laptop', '--out', taken]);
  t.equal(exists.code, 2, exists.stderr);
  t.match(exists.stderr, /cannot write key file .*taken\.key: it exists already.*no key was added/);
  const missing = run('tsbak', ['key', 'add-writer', repo, '--name', 'laptop', '--out', path.join(dir, 'nope', 'k.key')]);
  t.equal(missing.code, 2, missing.stderr);
  t.match(missing.stderr, /its folder does not exist; no key was added/);
  t.equal(keyObjects(repo).length, before, 'no writer registered');

  const ok = run('tsbak', ['key', 'add-writer', repo, '--name', 'laptop', '--out', path.join(dir, 'k.key')]);
  t.equal(ok.code, 0, ok.stderr);
  t.ok(existsSync(path.join(dir, 'k.key')));
  t.equal(keyObjects(repo).length, before + 1);
});

t.test('add-password: takes the new passphrase from --new-password-file, never TSBAK_PASSWORD', async (t) => {
  const repo = newRepo(t);
  const dir = tempDir(t);
  const before = keyObjects(repo).length;
  const noNew = run('tsbak', ['key', 'add-password', repo]);
  t.equal(noNew.code, 2, 'no terminal, no file: refused');
  t.match(noNew.stderr, /no new passphrase: give it with --new-password-file/);
  const same = path.join(dir, 'same');
  writeFileSync(same, 'correct horse\n');
  const again = run('tsbak', ['key', 'add-password', repo, '--new-password-file', same]);
  t.equal(again.code, 2);
  t.match(again.stderr, /is the one that opened the repository/);
  t.equal(keyObjects(repo).length, before, 'nothing added');

  const other = path.join(dir, 'other');
  writeFileSync(other, 'battery staple\n');
  const add = run('tsbak', ['key', 'add-password', repo, '--new-password-file', other]);
  t.equal(add.code, 0, add.stderr);
  t.equal(run('tsbak', ['snapshots', repo], { TSBAK_PASSWORD: 'battery staple' }).code, 0, 'the new passphrase opens');
  t.equal(run('tsbak', ['snapshots', repo]).code, 0, 'the old one still does');
});

t.test('passwd: the new passphrase opens, the old one no longer does', async (t) => {
  const repo = newRepo(t);
  const dir = tempDir(t);
  const before = keyObjects(repo);
  const next = path.join(dir, 'next');
  writeFileSync(next, 'battery staple\n');
  const r = run('tsbak', ['key', 'passwd', repo, '--new-password-file', next]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /changed the passphrase/);
  const after = keyObjects(repo);
  t.equal(after.length, before.length, 'one key object replaced by another');
  t.notSame(after, before);
  t.equal(run('tsbak', ['snapshots', repo], { TSBAK_PASSWORD: 'battery staple' }).code, 0, 'the new passphrase opens');
  const old = run('tsbak', ['snapshots', repo]);
  t.equal(old.code, 11, 'the old one is wrong now');

  const key = path.join(dir, 'w.key');
  mkdirSync(path.dirname(key), { recursive: true });
  t.equal(run('tsbak', ['key', 'add-writer', repo, '--name', 'w', '--out', key], { TSBAK_PASSWORD: 'battery staple' }).code, 0);
  const w = run('tsbak', ['key', 'passwd', repo, '--key-file', key, '--new-password-file', next]);
  t.equal(w.code, 2, 'a writer key file has no repository passphrase to change');
  t.match(w.stderr, /write-only key file/);
});

import t from 'tap';
import { LocalBackend } from '../src/backend/local.js';
import { backendContract } from './lib/backend-contract.js';
import { tempDir } from './lib/temp.js';

backendContract(t, async (t) => new LocalBackend(tempDir(t, 'tsbak-local-')));

t.test('object files: streamed, committed atomically, never listed; stale ones swept', async (t) => {
  const { existsSync, utimesSync, writeFileSync, readdirSync } = await import('node:fs');
  const path = await import('node:path');
  const dir = tempDir(t, 'tsbak-local-');
  const old = path.join(dir, '.tmp-0123456789abcdef');
  const recent = path.join(dir, '.tmp-fedcba9876543210');
  writeFileSync(old, 'left by a killed writer');
  writeFileSync(recent, 'another writer, still at work');
  const twoDaysAgo = (Date.now() - 2 * 86400_000) / 1000;
  utimesSync(old, twoDaysAgo, twoDaysAgo);
  const b = new LocalBackend(dir);
  const f = b.createObjectFile();
  t.notOk(existsSync(old), 'a day-old temp file is removed');
  t.ok(existsSync(recent), 'a recent one is left alone');
  await f.write(Buffer.from('hello '));
  await f.write(Buffer.from('world'));
  const listed: string[] = [];
  for await (const o of b.list('')) listed.push(o.name);
  t.same(listed, [], 'nothing listed before the commit');
  await f.commit('packs/data/ab/abc');
  t.equal((await b.get('packs/data/ab/abc')).toString(), 'hello world');
  t.same(readdirSync(dir).filter((n) => n.startsWith('.tmp-')), ['.tmp-fedcba9876543210'], 'the committed file left no temp behind');
  const g = b.createObjectFile();
  await g.write(Buffer.from('x'));
  await t.rejects(g.commit('packs/data/ab/abc'), /already exists/, 'never overwrites');
  const h = b.createObjectFile();
  await h.write(Buffer.from('y'));
  await h.abort();
  t.same(readdirSync(dir).filter((n) => n.startsWith('.tmp-')), ['.tmp-fedcba9876543210'], 'abort and a failed commit remove their files');
});

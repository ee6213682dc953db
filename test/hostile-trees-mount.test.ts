// The mount over a hostile snapshot (test/lib/hostile.ts): entries a tree refuses are not
// shown, the daemon's log names them, and the rest of the directory reads as usual.
import t from 'tap';
import { readFileSync, readdirSync, lstatSync } from 'node:fs';
import * as path from 'node:path';
import { mountBg, mountPoint, waitFor } from './lib/fuse-helpers.js';
import { BASE, asWriter, repoWithWriter } from './lib/hostile.js';
import { tempDir } from './lib/temp.js';

t.test('a tree with refused entries: the mount shows the rest and logs them', async (t) => {
  const { repo, key } = repoWithWriter(t);
  const snap = await asWriter(repo, key, async (e) => {
    const chunks = [(await e.repo.saveBlob('data', Buffer.from('aaaa'))).id, (await e.repo.saveBlob('data', Buffer.from('bbbb'))).id];
    return e.snapshot([
      // its second chunk would reach past its size (format/file-layout.ts): listed, never read
      { ...BASE, name: Buffer.from('overrun'), type: 'file', size: 5, content: chunks },
      await e.dir('..', [await e.file('x', 'evil\n')]),
      e.symlink('dup', '/etc'),
      await e.dir('dup', [await e.file('planted', 'evil\n')]),
      await e.file('a/b', 'evil\n'),
      await e.dir('sub', [await e.file('kept', 'kept\n')]),
      await e.file('ok.txt', 'honest\n'),
    ]);
  });
  const dir = tempDir(t);
  const log = path.join(dir, 'mount.log');
  const mnt = mountPoint(t, path.join(dir, 'mnt'));
  const m = mountBg(repo, mnt, ['ro', `log=${log}`]);
  t.equal(m.code, 0, m.stderr);
  const root = path.join(mnt, 'ids', snap.slice(0, 8));
  t.same(readdirSync(root).sort(), ['ok.txt', 'overrun', 'sub'], 'only the sound entries are listed');
  t.throws(() => readFileSync(path.join(root, 'overrun')), { code: 'EIO' }, 'a file whose chunks do not fit its size is not read');
  t.equal(readFileSync(path.join(root, 'ok.txt'), 'utf8'), 'honest\n');
  t.equal(readFileSync(path.join(root, 'sub', 'kept'), 'utf8'), 'kept\n');
  t.throws(() => lstatSync(path.join(root, 'dup')), { code: 'ENOENT' }, 'a duplicated name is not there');
  await waitFor('the log to name the refused entries', () => /entry "\.\." refused \(the name '\.\.'\)/.test(readFileSync(log, 'utf8')));
  const text = readFileSync(log, 'utf8');
  t.match(text, /entry "dup" refused \(a duplicate name\), not shown/);
  t.match(text, /entry "a\/b" refused \(a name holding '\/'\)/);
});

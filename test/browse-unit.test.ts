// find's globs and the escaping of raw names (src/cli/glob.ts, src/cli/raw-name.ts).
import t from 'tap';
import { compileGlob, globMatches } from '../src/cli/glob.js';
import { escapeName, isoNs, jsonName } from '../src/cli/raw-name.js';

t.test('globs on names and paths', async (t) => {
  const m = (p: string, path: string, ignoreCase = false) => globMatches(compileGlob(p, ignoreCase), path.slice(path.lastIndexOf('/') + 1), path);
  t.ok(m('*.txt', '/a/b.txt'));
  t.notOk(m('*.txt', '/a/b.txt.gz'));
  t.ok(m('[a-c]x', '/q/bx'));
  t.notOk(m('[!a-c]x', '/q/bx'));
  t.ok(m('[]]', '/]'));
  t.ok(m('\\*', '/*'));
  t.notOk(m('\\*', '/a'), 'an escaped star is a star');
  t.notOk(m('a.b', '/axb'), 'a dot is a dot');
  t.ok(m('ä?', '/äö'), '? is one character, not one byte');
  t.ok(m('*.TXT', '/a.txt', true));
  t.notOk(m('*.TXT', '/a.txt'));
  t.ok(m('b/*.c', '/a/b/x.c'), "a relative path pattern: the path's last components");
  t.notOk(m('b/*.c', '/a/b/y/x.c'), '* stays within one component');
  t.notOk(m('/b/*.c', '/a/b/x.c'), 'a leading / anchors at the root');
  t.ok(m('/a/**', '/a/y/z'));
  t.ok(m('x/**/z', '/q/x/z'), '** may be no directory');
  t.ok(m('x/**/z', '/q/x/1/2/z'));
  t.throws(() => compileGlob('a[b', false), /has '\[' without its '\]'/);
  t.throws(() => compileGlob('a\\', false), /ends with '\\'/);
  t.throws(() => compileGlob('', false), /empty pattern/);
});

t.test('raw names: escaped for display, lossless in JSON', async (t) => {
  t.equal(escapeName(Buffer.from('plain name.txt')), 'plain name.txt');
  t.equal(escapeName(Buffer.from([0x61, 0x0a, 0x09, 0x0d, 0x5c, 0x1b, 0x7f])), 'a\\n\\t\\r\\\\\\x1b\\x7f');
  t.equal(escapeName(Buffer.from([0xff, 0xc3, 0xa4, 0xc3])), '\\xffä\\xc3', 'bytes that are not UTF-8, a truncated sequence');
  t.equal(escapeName(Buffer.from([0xc0, 0xaf])), '\\xc0\\xaf', 'an overlong encoding is not UTF-8');
  t.equal(escapeName(Buffer.from([0xed, 0xa0, 0x80])), '\\xed\\xa0\\x80', 'a surrogate is not UTF-8');
  t.equal(escapeName(Buffer.from([0xc2, 0x85])), '\\xc2\\x85', 'a C1 control');
  t.not(escapeName(Buffer.from('a\\xff')), escapeName(Buffer.from([0x61, 0xff])), 'two names never print the same');
  t.same(jsonName('name', Buffer.from('new\nline')), { name: 'new\nline' });
  t.same(jsonName('name', Buffer.from([0x61, 0xff])), { name: 'a\ufffd', name_b64: 'Yf8=' });
  t.equal(isoNs(1_500_000_000_123_456_789n), '2017-07-14T02:40:00.123456789Z');
  t.equal(isoNs(-1n), '1969-12-31T23:59:59.999999999Z');
  t.equal(isoNs(10n ** 30n), null);
});

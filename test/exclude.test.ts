import t, { type Test } from 'tap';
import type { BigIntStats } from 'node:fs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import * as path from 'node:path';
import { buildExcluder, type ExcludeArgs } from '../src/writer/exclude-rules.js';
import type { Excluder } from '../src/writer/exclude.js';
import { tempDir } from './lib/temp.js';

const fileStat = { mode: 0o100644n, size: 0n } as unknown as BigIntStats;
const dirStat = { mode: 0o040755n, size: 4096n } as unknown as BigIntStats;

async function excluder(a: ExcludeArgs): Promise<Excluder> {
  const ex = await buildExcluder({ ignoreFile: null, ...a });
  if (!ex) throw new Error('expected an excluder');
  return ex;
}

/** Asks about a path the way the walker does (a synthetic stat; trailing '/' = directory). */
function check(ex: Excluder, p: string | Buffer): Promise<boolean> {
  const isDir = typeof p === 'string' && p.endsWith('/') && p !== '/';
  const buf = typeof p === 'string' ? Buffer.from(isDir ? p.slice(0, -1) : p) : p;
  return ex.excludes(buf, isDir, isDir ? dirStat : fileStat);
}

async function expectMatches(t: Test, a: ExcludeArgs, yes: (string | Buffer)[], no: (string | Buffer)[]) {
  const ex = await excluder(a);
  for (const p of yes) t.equal(await check(ex, p), true, `excludes ${p}`);
  for (const p of no) t.equal(await check(ex, p), false, `keeps ${p}`);
}

t.test('nothing to exclude gives no excluder', async (t) => {
  t.equal(await buildExcluder({ ignoreFile: null }), undefined);
  t.equal(await buildExcluder({ ignoreFile: null, exclude: [], iexclude: [''] }), undefined);
});

t.test('unanchored patterns match the base name at any depth', (t) =>
  expectMatches(
    t,
    { exclude: ['*.swp', 'node_modules', 'a?c', '[xy]z', '[!0-9]q'] },
    ['/home/me/.f.swp', '/x.swp', '/p/node_modules/', '/p/node_modules', '/d/abc', '/d/xz', '/d/aq'],
    ['/home/me/f.swp.txt', '/p/node_modules_x', '/d/abbc', '/d/zz', '/d/5q', '/swp'],
  ),
);

t.test('anchored patterns match the absolute path', (t) =>
  expectMatches(
    t,
    { exclude: ['/home/me/tmp', '/home/*/cache/**', 'var/log'] },
    ['/home/me/tmp/', '/home/me/tmp', '/home/a/cache/x', '/home/a/cache/d/e/f', '/var/log/'],
    ['/x/home/me/tmp', '/home/me/tmpx', '/home/a/cache/', '/home/a/b/cache/x', '/x/var/log'],
  ),
);

t.test('a match covers everything below it (backup started inside it)', (t) =>
  expectMatches(t, { exclude: ['/home/me', 'build'] }, ['/home/me/docs/a', '/p/build/out/x.o'], ['/home/mex/a']),
);

t.test('** matches any number of directories', (t) =>
  expectMatches(
    t,
    { exclude: ['/src/**/gen', '**/.git/', '/a**b'] },
    ['/src/gen', '/src/x/gen', '/src/x/y/gen/', '/r/.git/', '/.git/', '/aXb'],
    ['/src/x/generated', '/r/.git', '/aX/b'],
  ),
);

t.test('trailing slash matches directories only', (t) =>
  expectMatches(t, { exclude: ['cache/', '/opt/*/'] }, ['/x/cache/', '/x/cache/file', '/opt/a/'], ['/x/cache', '/opt/a']),
);

t.test('negation: the last matching pattern wins', (t) =>
  expectMatches(
    t,
    { exclude: ['*.log', '!keep*.log', '/data', '!/data/keep', 'keep-not.log'] },
    ['/x/a.log', '/data/', '/data/other', '/x/keep-not.log'],
    ['/x/keep.log', '/data/keep/file', '/x/a.txt'],
  ),
);

t.test('iexclude is case-insensitive (ASCII and Unicode), exclude is not', (t) =>
  expectMatches(
    t,
    { exclude: ['*.Tmp'], iexclude: ['*.JPG', '/Home/ÉTÉ/*', '!KEEP.jpg'] },
    ['/x/photo.jpg', '/x/PHOTO.Jpg', '/home/été/x', '/HOME/Été/y', '/x/a.Tmp'],
    ['/x/keep.JPG', '/x/a.tmp', '/home/ete/x'],
  ),
);

t.test('non-ASCII and invalid UTF-8 paths', async (t) => {
  const bad = Buffer.from([0x2f, 0x64, 0x2f, 0x74, 0xff, 0xfe, 0x2e, 0x73, 0x77, 0x70]); // "/d/t\xff\xfe.swp"
  const badDir = Buffer.from([0x2f, 0xc3, 0x28]); // "/\xc3(" (truncated sequence)
  await expectMatches(t, { exclude: ['*.swp', 'caf?', '[éa]x'] }, [bad, '/café', '/éx', '/ax'], [badDir, '/cafée', '/bx']);
  await expectMatches(t, { iexclude: ['/D/T??.SWP'] }, [bad], ['/d/t.swp']);
  await expectMatches(t, { iexclude: ['/?('] }, [badDir], ['/a']);
});

t.test('exclude files: comments, blank lines, env vars, case-insensitive variant', async (t) => {
  const dir = tempDir(t, 'tsbak-exclude-');
  process.env.TSBAK_TEST_ROOT = '/data';
  t.teardown(() => delete process.env.TSBAK_TEST_ROOT);
  const f = path.join(dir, 'excludes');
  writeFileSync(f, '# a comment\n\n$TSBAK_TEST_ROOT/tmp\r\n  ${TSBAK_TEST_ROOT}/cache/  \n\\#literal\n$TSBAK_UNSET_VAR/root\n');
  const fi = path.join(dir, 'iexcludes');
  writeFileSync(fi, '*.BAK\n');
  await expectMatches(
    t,
    { excludeFile: [f], iexcludeFile: [fi] },
    ['/data/tmp', '/data/cache/', '/x/#literal', '/root', '/x/y.bak'],
    ['/data/cache', '/x/# a comment', '/data/TMP'],
  );
  await t.rejects(buildExcluder({ ignoreFile: null, excludeFile: [path.join(dir, 'missing')] }), {
    code: 'USAGE',
    message: /--exclude-file .*missing/,
  });
});

t.test('global ignore file via XDG_CONFIG_HOME; null disables it', async (t) => {
  const dir = tempDir(t, 'tsbak-exclude-');
  const saved = process.env.XDG_CONFIG_HOME;
  process.env.XDG_CONFIG_HOME = dir;
  t.teardown(() => {
    if (saved === undefined) delete process.env.XDG_CONFIG_HOME;
    else process.env.XDG_CONFIG_HOME = saved;
  });
  t.equal(await buildExcluder({}), undefined, 'no ignore file: nothing to exclude');
  mkdirSync(path.join(dir, 'tsbak'));
  writeFileSync(path.join(dir, 'tsbak', 'ignore'), '# global\n*.o\n');
  const ex = await buildExcluder({});
  t.ok(ex);
  t.equal(await check(ex!, '/src/a.o'), true);
  t.equal(await buildExcluder({ ignoreFile: null }), undefined);
  // later command-line patterns override the global list
  t.equal(await check(await excluder({ ignoreFile: undefined, exclude: ['!keep.o'] }), '/src/keep.o'), false);
});

t.test('--exclude-caches on a real directory tree', async (t) => {
  const root = tempDir(t, 'tsbak-exclude-');
  const cache = path.join(root, 'cache');
  const fake = path.join(root, 'fake');
  mkdirSync(path.join(cache, 'sub'), { recursive: true });
  mkdirSync(fake);
  writeFileSync(path.join(cache, 'CACHEDIR.TAG'), 'Signature: 8a477f597d28d172789f06886806bc55\n# made by a test\n');
  writeFileSync(path.join(cache, 'data.bin'), 'x');
  writeFileSync(path.join(fake, 'CACHEDIR.TAG'), 'Signature: not a real cache tag, sorry.....');
  writeFileSync(path.join(fake, 'data.bin'), 'x');
  const ex = await excluder({ excludeCaches: true });
  const ask = async (p: string) => {
    const st = await lstat(p, { bigint: true });
    return ex.excludes(Buffer.from(p), st.isDirectory(), st);
  };
  // in walk order: a directory is asked about before its entries
  t.equal(await ask(cache), false, 'the tagged directory itself is kept');
  t.equal(await ask(path.join(cache, 'CACHEDIR.TAG')), false, 'and so is its tag');
  t.equal(await ask(path.join(cache, 'data.bin')), true, 'other content is excluded');
  t.equal(await ask(path.join(cache, 'sub')), true, 'including subdirectories');
  t.equal(await ask(fake), false);
  t.equal(await ask(path.join(fake, 'data.bin')), false, 'a wrong signature is not a cache');
});

t.test('--exclude-larger-than on real files', async (t) => {
  const dir = tempDir(t, 'tsbak-exclude-');
  writeFileSync(path.join(dir, 'big'), Buffer.alloc(1025));
  writeFileSync(path.join(dir, 'exact'), Buffer.alloc(1024));
  const ex = await excluder({ excludeLargerThan: 1024 });
  const ask = async (name: string) => {
    const p = path.join(dir, name);
    const st = await lstat(p, { bigint: true });
    return ex.excludes(Buffer.from(p), st.isDirectory(), st);
  };
  t.equal(await ask('big'), true);
  t.equal(await ask('exact'), false, 'exactly the limit is kept');
  const st = await lstat(dir, { bigint: true });
  t.equal(await ex.excludes(Buffer.from(dir), true, { ...st, size: 1n << 40n } as BigIntStats), false, 'directories are never size-limited');
});

t.test('ranges of non-ASCII characters are a usage error', async (t) => {
  await t.rejects(buildExcluder({ ignoreFile: null, exclude: ['[à-é]'] }), { code: 'USAGE' });
});

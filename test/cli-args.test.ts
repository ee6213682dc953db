// The command-line parser (src/cli/args.ts) on its own, and the programs' usage errors and
// help through their launchers.
import t, { type Test } from 'tap';
import { parseCommandLine, UsageError, type Command } from '../src/cli/args.js';
import { parseSize } from '../src/cli/size.js';
import { run } from './lib/cli.js';

const seen: Array<Record<string, unknown>> = [];
const go = async (a: Record<string, unknown>): Promise<never> => {
  seen.push(a);
  return undefined as never;
};

const PROG: Command = {
  usage: 'prog',
  describe: 'a program',
  subcommands: [
    {
      usage: 'put <repo> <paths..>',
      describe: 'put paths',
      options: {
        'password-file': { type: 'string' },
        tag: { type: 'string', array: true },
        quiet: { alias: 'q', type: 'boolean' },
        level: { type: 'number', default: 3 },
        mode: { type: 'string', choices: ['a', 'b'] },
        'no-cache': { type: 'boolean' },
      },
      run: go,
    },
    { usage: 'get <repo> <snapshot> [path]', describe: 'get', options: { target: { alias: 't', type: 'string', demand: true } }, run: go },
    { usage: 'key <command>', describe: 'keys', subcommands: [{ usage: 'list <repo>', describe: 'list keys', run: go }] },
  ],
};

const parse = (...argv: string[]) => parseCommandLine('prog', PROG, argv);
const args = (...argv: string[]) => {
  const r = parse(...argv);
  if (r.kind !== 'run') throw new Error(`not a run: ${r.kind}`);
  return r.args;
};
const usage = (t: Test, argv: string[], message: RegExp, command = 'prog') => {
  try {
    parse(...argv);
    t.fail(`${argv.join(' ')}: no usage error`);
  } catch (e) {
    t.ok(e instanceof UsageError, `${argv.join(' ')}: a usage error`);
    t.match((e as Error).message, message);
    t.equal((e as UsageError).command, command, 'names the command whose help to read');
  }
};

t.test('options and positionals', async (t) => {
  t.same(args('put', 'r', 'p1', 'p2', '--password-file', 'f', '--tag', 'x', '-q', '--tag=y', '--level', '0', '--mode', 'b', '--no-cache'), {
    passwordFile: 'f',
    tag: ['x', 'y'],
    quiet: true,
    level: 0,
    mode: 'b',
    noCache: true,
    repo: 'r',
    paths: ['p1', 'p2'],
  });
  t.same(args('put', 'r', 'p'), { level: 3, repo: 'r', paths: ['p'] }, 'defaults; absent options are absent');
  t.same(args('put', '--quiet', 'r', '--', '--tag', '-q'), { quiet: true, level: 3, repo: 'r', paths: ['--tag', '-q'] }, 'after --, everything is a path');
  t.same(args('get', 'r', 's', '-t', '/x'), { target: '/x', repo: 'r', snapshot: 's' }, 'an optional positional left out');
  t.same(args('get', 'r', 's', 'sub/dir', '--target', '/x'), { target: '/x', repo: 'r', snapshot: 's', path: 'sub/dir' });
  t.same(args('key', 'list', 'r'), { repo: 'r' }, 'a subcommand of a group');
});

t.test('usage errors', async (t) => {
  usage(t, ['frob'], /unknown command 'frob'/);
  usage(t, ['put', 'r'], /missing <paths\.\.>/, 'prog put');
  usage(t, ['put'], /missing <repo>/, 'prog put');
  usage(t, ['put', 'r', 'p', '--bogus'], /Unknown option '--bogus'/, 'prog put');
  usage(t, ['put', 'r', 'p', '--level', 'high'], /--level: 'high' is not a number/, 'prog put');
  usage(t, ['put', 'r', 'p', '--level', ''], /--level: '' is not a number/, 'prog put');
  usage(t, ['put', 'r', 'p', '--mode', 'c'], /--mode: 'c' is not one of a, b/, 'prog put');
  usage(t, ['put', 'r', 'p', '--password-file'], /argument missing/, 'prog put');
  usage(t, ['get', 'r', 's'], /missing required option --target/, 'prog get');
  usage(t, ['get', 'r', 's', 'p', 'extra', '-t', 'x'], /unexpected argument 'extra'/, 'prog get');
  usage(t, ['key', 'drop'], /unknown command 'drop'/, 'prog key');
});

t.test('help and version', async (t) => {
  const top = parse('--help');
  t.equal(top.kind, 'help');
  t.match(top.kind === 'help' ? top.text : '', /Usage: prog <command>[\s\S]*put <repo> <paths\.\.>\s+put paths/);
  const put = parse('put', '--help');
  t.match(put.kind === 'help' ? put.text : '', /Usage: prog put <repo> <paths\.\.> \[options\][\s\S]*-q, --quiet[\s\S]*--level <number>\s+\[default 3\][\s\S]*--mode <string>\s+\[one of a, b\]/);
  t.equal(parse().kind, 'help', 'no command: the help');
  t.equal(parse('key').kind, 'help', 'a group without its subcommand: its help');
  t.equal(parse('--version').kind, 'version');
  t.equal(parse('put', 'r', '--', '--help').kind, 'run', '--help after -- is a path');
});

t.test('the programs: exit 2 and one pointer to the help on bad usage; help on stdout', async (t) => {
  const bad = run('tsbak', ['restore', '/nonexistent-repo', 'latest']);
  t.equal(bad.code, 2);
  t.equal(bad.stderr, "tsbak: missing required option --target\nTry 'tsbak restore --help'.\n");
  const bogus = run('tsbak-write', ['/nonexistent-repo', '/tmp', '--bogus']);
  t.equal(bogus.code, 2);
  t.match(bogus.stderr, /^tsbak-write: Unknown option '--bogus'/);
  const help = run('tsbak-write', ['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: tsbak-write <repo> <paths\.\.> \[options\][\s\S]*--exclude <string> \.\.\./);
  const version = run('tsbak', ['--version']);
  t.equal(version.stdout.trim(), '0.1.0');
});

t.test('without the native addon, each program stops at start with one line naming the build', async (t) => {
  const env = { TSBAK_NATIVE: '/nonexistent/tsbak_native.node' };
  for (const [bin, args] of [
    ['tsbak', ['snapshots', '/nonexistent-repo']],
    ['tsbak-write', ['/nonexistent-repo', '/tmp']],
    ['mount.tsbak', ['/nonexistent-repo', '/nonexistent-mountpoint', '-f']],
  ] as const) {
    const r = run(bin, [...args], env);
    t.equal(r.code, 1, `${bin}: exit 1`);
    t.match(r.stderr, new RegExp(`^${bin.replace('.', '\\.')}: the native addon is not built \\(/nonexistent/tsbak_native\\.node is missing\\): run "npm run build:native"\\n$`), `${bin}: one line`);
  }
  t.equal(run('tsbak', ['--version'], env).code, 0, '--version needs no addon');
});

t.test('parseSize: one grammar for every size option', async (t) => {
  const cases: Array<[string, number]> = [
    ['123', 123],
    ['500k', 500 * 1024],
    ['10M', 10 * 1024 ** 2],
    ['1.5G', 1.5 * 1024 ** 3],
    ['2T', 2 * 1024 ** 4],
    ['4KiB', 4096],
    ['3mb', 3 * 1024 ** 2],
    [' 7 ', 7],
    ['.5k', 512],
    ['20G', 20 * 1024 ** 3],
    ['512 MiB', 512 * 1024 ** 2],
    ['1.5', 1],
  ];
  for (const [s, n] of cases) t.equal(parseSize(s), n, s);
  for (const s of ['', 'k', '-1', '1.2.3', '10X', '1e3', 'ten', 'lots']) t.throws(() => parseSize(s), { code: 'USAGE' }, `'${s}'`);
  t.throws(() => parseSize('lots', 'option pack_cache_size='), { message: /^option pack_cache_size=: "lots" is not a size/ }, 'the error names the option');
});

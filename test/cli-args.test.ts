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

// A program whose commands take the repository from --repo/-r or TSBAK_REPOSITORY too.
const REPO_PROG: Command = {
  usage: 'prog',
  describe: 'a program',
  subcommands: [
    { usage: 'put <repo> <paths..>', describe: 'put', options: { repo: { alias: 'r', type: 'string' }, tag: { type: 'string', array: true } }, run: go },
    { usage: 'ls <repo> <snapshot> [dir]', describe: 'ls', options: { repo: { alias: 'r', type: 'string' } }, run: go },
    { usage: 'list <repo>', describe: 'list', options: { repo: { alias: 'r', type: 'string' } }, run: go },
    { usage: 'opt <repo> [paths..]', describe: 'optional list', options: { repo: { alias: 'r', type: 'string' } }, run: go },
    { usage: 'plain <repo> <x>', describe: 'no repo option', run: go },
  ],
};
const withEnv = (env: Record<string, string>, ...argv: string[]) => {
  const r = parseCommandLine('prog', REPO_PROG, argv, env);
  if (r.kind !== 'run') throw new Error(`not a run: ${r.kind}`);
  return r.args;
};
const repoUsage = (t: Test, env: Record<string, string>, argv: string[], message: RegExp) => {
  try {
    parseCommandLine('prog', REPO_PROG, argv, env);
    t.fail(`${argv.join(' ')}: no usage error`);
  } catch (e) {
    t.ok(e instanceof UsageError, `${argv.join(' ')}: a usage error`);
    t.match((e as Error).message, message);
  }
};

t.test('the repository from --repo, -r or TSBAK_REPOSITORY: the positional <repo> is left out', async (t) => {
  const none = {};
  const env = { TSBAK_REPOSITORY: '/env/repo' };
  // Without either, the first word is the repository, as before.
  t.same(withEnv(none, 'ls', '/r', 'latest', '/dir'), { repo: '/r', snapshot: 'latest', dir: '/dir' });
  t.same(withEnv(none, 'list', '/r'), { repo: '/r' });
  // --repo / -r: every word is the command's other positionals.
  t.same(withEnv(none, 'ls', '--repo', '/o', 'latest'), { repo: '/o', snapshot: 'latest' });
  t.same(withEnv(none, 'ls', 'latest', '/dir', '-r', '/o'), { repo: '/o', snapshot: 'latest', dir: '/dir' });
  t.same(withEnv(none, 'list', '-r', '/o'), { repo: '/o' });
  t.same(withEnv(none, 'put', '-r', '/o', 'a', 'b'), { repo: '/o', paths: ['a', 'b'] });
  t.same(withEnv(none, 'opt', '-r', '/o'), { repo: '/o', paths: [] });
  t.same(withEnv(none, 'opt', '-r', '/o', 'p'), { repo: '/o', paths: ['p'] });
  // The environment, the same; --repo wins over it.
  t.same(withEnv(env, 'ls', 'latest'), { repo: '/env/repo', snapshot: 'latest' });
  t.same(withEnv(env, 'list'), { repo: '/env/repo' });
  t.same(withEnv(env, 'put', 'a'), { repo: '/env/repo', paths: ['a'] });
  t.same(withEnv(env, 'ls', '-r', '/o', 'latest', 'd'), { repo: '/o', snapshot: 'latest', dir: 'd' });
  t.same(withEnv({ TSBAK_REPOSITORY: '' }, 'list', '/r'), { repo: '/r' }, 'an empty variable is unset');
  // A command without a repo option ignores the environment.
  t.same(withEnv(env, 'plain', '/r', 'x'), { repo: '/r', x: 'x' });
  // Named both ways: refused, naming where the repository came from.
  repoUsage(t, none, ['list', '-r', '/o', '/r'], /unexpected argument '\/r' \(the repository comes from --repo/);
  repoUsage(t, env, ['list', '/r'], /unexpected argument '\/r' \(the repository comes from TSBAK_REPOSITORY/);
  repoUsage(t, env, ['ls'], /missing <snapshot>/);
  repoUsage(t, none, ['list'], /missing <repo> \(or give --repo, or set TSBAK_REPOSITORY\)/);
  repoUsage(t, none, ['list', '--repo', ''], /--repo is empty/);
  repoUsage(t, none, ['put', '-r', '/o'], /missing <paths\.\.>/);
  const help = parseCommandLine('prog', REPO_PROG, ['ls', '--help'], none);
  t.match(help.kind === 'help' ? help.text : '', /<repo> is left out when --repo or TSBAK_REPOSITORY names the repository/);
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
  t.match(help.stdout, /Usage: tsbak-write <repo> \[paths\.\.\] \[options\][\s\S]*--exclude <string> \.\.\./);
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

// Help cannot drift: every option of every command (walking the command table in main.ts,
// so commands added later are covered) appears in the command's --help with a description,
// and in README.md's command list. Also `tsbak version`, `tsbak help`, and `tsbak generate`
// (man pages with every command; a bash completion script that bash accepts and that
// completes subcommands and options).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { BIN, ROOT, run } from './lib/cli.js';
import { tempDir } from './lib/temp.js';
import { TSBAK, TSBAK_WRITE } from '../src/cli/main.js';
import type { Command } from '../src/cli/args.js';

const name = (c: Command) => c.usage.split(' ')[0]!;

/** Every runnable command: its words after the program, and the command. */
function commands(program: Command, words: string[] = []): Array<{ words: string[]; command: Command }> {
  return [...(program.run ? [{ words, command: program }] : []), ...(program.subcommands ?? []).flatMap((s) => commands(s, [...words, name(s)]))];
}

const PROGRAMS: Array<[string, Command]> = [
  ['tsbak', TSBAK],
  ['tsbak-write', TSBAK_WRITE],
];

/** README.md's "## Commands" code block, as blocks: header lines (not indented) with their indented continuation lines. */
function readmeBlocks(): string[][] {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf('## Commands\n');
  const open = readme.indexOf('```\n', at) + 4;
  const lines = readme.slice(open, readme.indexOf('```\n', open)).split('\n');
  const blocks: string[][] = [];
  let cur: string[] | null = null;
  let indented = false;
  for (const l of lines) {
    if (!l.trim()) {
      cur = null;
      continue;
    }
    const ind = /^\s/.test(l);
    if (!cur || (!ind && indented)) blocks.push((cur = []));
    cur.push(l);
    indented = ind;
  }
  return blocks;
}

t.test('every option of every command: in --help with a description, and in the README command list', async (t) => {
  const blocks = readmeBlocks();
  const common = blocks.find((b) => b[0]!.startsWith('Every command with a <repo> also takes:'));
  t.ok(common, "README lists the options every command with a <repo> takes");
  for (const [prog, program] of PROGRAMS) {
    for (const { words, command } of commands(program)) {
      const full = [prog, ...words].join(' ');
      const help = run(prog, [...words, '--help']);
      t.equal(help.code, 0, `${full} --help exits 0`);
      t.match(help.stdout, new RegExp(`^Usage: ${full.replace(/[.-]/g, '\\$&')}`), `${full} --help names the command`);
      const block = blocks.find((b) => b.some((l) => !/^\s/.test(l) && (l === full || l.startsWith(`${full} `))));
      t.ok(block, `README lists ${full}`);
      for (const [k, o] of Object.entries(command.options ?? {})) {
        const line = help.stdout.split('\n').find((l) => new RegExp(`^\\s+(-\\w, )?--${k}( <\\w+>)?( \\.\\.\\.)?\\s`).test(l) || new RegExp(`^\\s+(-\\w, )?--${k}$`).test(l));
        t.ok(line, `${full} --help lists --${k}`);
        const text = line?.replace(/^\s+(-\w, )?--[\w-]+( <\w+>)?( \.\.\.)?/, '').trim() ?? '';
        t.ok(text.replace(/\[[^\]]*\]$/, '').trim().length > 3, `${full} --${k} has a description in --help (${JSON.stringify(text)})`);
        const inReadme = (b: string[] | undefined) => !!b?.some((l) => new RegExp(`--${k}\\b(?!-)`).test(l) || (o.alias !== undefined && new RegExp(`(^|[\\s\\[|])-${o.alias}\\b`).test(l)));
        const ok = inReadme(block) || (command.usage.includes('<repo>') && inReadme(common));
        t.ok(ok, `README's command list has --${k} of ${full}`);
      }
    }
  }
});

t.test('tsbak version and tsbak help', async (t) => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const v = run('tsbak', ['version']);
  t.equal(v.code, 0);
  t.equal(v.stdout, `tsbak ${pkg.version}\n`);
  t.equal(JSON.parse(run('tsbak', ['version', '--json']).stdout).version, pkg.version);
  t.equal(run('tsbak', ['version'], { TSBAK_NATIVE: '/nonexistent/tsbak_native.node' }).code, 0, 'needs no addon');
  const top = run('tsbak', ['help']);
  t.equal(top.code, 0);
  t.equal(top.stdout, run('tsbak', ['--help']).stdout, 'tsbak help is tsbak --help');
  t.equal(run('tsbak', ['help', 'key', 'add-writer']).stdout, run('tsbak', ['key', 'add-writer', '--help']).stdout, 'help of a subcommand');
  const bad = run('tsbak', ['help', 'frob']);
  t.equal(bad.code, 2);
  t.equal(bad.stderr, "tsbak: no command 'frob'; 'tsbak help' lists the commands\n");
  t.match(top.stdout, /an SFTP server/, 'help names SFTP repositories (issue 20)');
});

t.test('tsbak generate: man pages for every command, bash and zsh completion', async (t) => {
  const dir = tempDir(t);
  const man = path.join(dir, 'man1');
  const g = run('tsbak', ['generate', '--man', man, '--bash-completion', path.join(dir, 'tsbak.bash'), '--zsh-completion', path.join(dir, '_tsbak')]);
  t.equal(g.code, 0, g.stderr);
  const pages = readdirSync(man).sort();
  for (const [prog, program] of PROGRAMS) {
    for (const { words, command } of commands(program)) {
      const page = `${[prog, ...words].join('-')}.1`;
      t.ok(pages.includes(page), `man page ${page}`);
      const text = readFileSync(path.join(man, page), 'utf8');
      t.match(text, /^\.TH /, `${page} is a man page`);
      for (const k of Object.keys(command.options ?? {})) t.ok(text.includes(`\\-\\-${k.replace(/-/g, '\\-')}`), `${page} documents --${k}`);
    }
  }
  const main = readFileSync(path.join(man, 'tsbak.1'), 'utf8');
  for (const s of TSBAK.subcommands!) t.ok(main.includes(`tsbak ${name(s).replace(/-/g, '\\-')}`), `tsbak(1) lists ${name(s)}`);
  t.match(main, /TSBAK_PASSWORD_FILE/);
  t.ok(pages.includes('mount.tsbak.1'), 'a page for the mount helper');
  t.match(readFileSync(path.join(man, 'mount.tsbak.1'), 'utf8'), /cold_timeout=SECONDS/, 'its -o options');
  const groff = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', path.join(man, 'tsbak-ls.1')], { encoding: 'utf8' });
  if (groff.error) t.comment('groff not installed: the pages are not rendered');
  else t.equal(groff.stderr, '', 'groff renders tsbak-ls(1) without warnings');

  const bash = path.join(dir, 'tsbak.bash');
  const syntax = spawnSync('bash', ['-n', bash], { encoding: 'utf8' });
  t.equal(syntax.status, 0, `bash -n accepts the completion script ${syntax.stderr}`);
  // Drive the completion function as bash's programmable completion would.
  const complete = (...words: string[]) => {
    const r = spawnSync('bash', ['-c', `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _tsbak_complete; printf '%s\\n' "\${COMPREPLY[@]}"`, 'complete', bash, ...words], { encoding: 'utf8', cwd: dir });
    t.equal(r.stderr, '', `no errors completing ${words.join(' ')}`);
    return r.stdout.split('\n').filter(Boolean).sort();
  };
  t.same(complete('tsbak', 'rest'), ['restore'], 'a subcommand');
  t.same(complete('tsbak', 'key', 'add-'), ['add-password', 'add-writer'], 'a subcommand of key');
  t.same(complete('tsbak', 'restore', 'r', 'latest', '--ti'), ['--tier'], 'an option of the command typed');
  t.same(complete('tsbak', 'restore', 'r', 'latest', '--tier', ''), ['Bulk', 'Expedited', 'Standard'], "an option's choices");
  t.same(complete('tsbak', 'ls', '/r', 'latest', '--json-'), ['--json-lines']);
  t.same(complete('tsbak-write', 'r', '--exclude-c'), ['--exclude-caches'], 'tsbak-write too');
  t.same(complete('tsbak', 'key', 'list', '--password-file', 'tsbak.b'), ['tsbak.bash'], 'a file after an option that takes one');
  const zsh = readFileSync(path.join(dir, '_tsbak'), 'utf8');
  t.match(zsh, /^#compdef tsbak tsbak-write\n/, 'zsh: a completion function file');
  const zshBin = spawnSync('zsh', ['-n', path.join(dir, '_tsbak')], { encoding: 'utf8' });
  if (zshBin.error) t.comment('zsh not installed: its script is not parsed');
  else t.equal(zshBin.status, 0, `zsh -n accepts it ${zshBin.stderr}`);

  const none = run('tsbak', ['generate']);
  t.equal(none.code, 2);
  t.match(none.stderr, /name what to write/);
  t.equal(run('tsbak', ['generate', '--bash-completion', '-']).stdout, readFileSync(bash, 'utf8'), "'-' writes to stdout");
  t.ok(BIN('tsbak'));
});

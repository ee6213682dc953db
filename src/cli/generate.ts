// `tsbak generate`: man pages and bash/zsh completion scripts, made from the command table
// in main.ts (every command, subcommand and option, with its help text), so they cannot
// drift from --help. README.md "Install" says where they go.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { TsbakError } from '../errors.js';
import { programVersion } from '../platform/package.js';
import { nameOf, type Command, type Opt } from './args.js';
import { EXIT } from './exit-codes.js';

interface GenerateArgs {
  man?: string;
  bashCompletion?: string;
  zshCompletion?: string;
}

/** Every command of a program with its path of names ("key add-writer"), the program itself first. */
function walk(c: Command, words: string[] = []): Array<{ words: string[]; command: Command }> {
  return [{ words, command: c }, ...(c.subcommands ?? []).flatMap((s) => walk(s, [...words, nameOf(s)]))];
}

/** "tsbak" of "tsbak", "tsbak-write" of "tsbak-write <repo> <paths..>". */
const programName = (p: Command): string => p.usage.split(' ')[0]!;

export async function cmdGenerate(programs: Command[], a: GenerateArgs): Promise<number> {
  if (!a.man && !a.bashCompletion && !a.zshCompletion) throw new TsbakError('USAGE', 'generate: name what to write: --man DIR, --bash-completion FILE or --zsh-completion FILE');
  const wrote: string[] = [];
  if (a.man) {
    try {
      mkdirSync(a.man, { recursive: true });
    } catch (e) {
      throw new TsbakError('USAGE', `cannot make the man page directory ${a.man}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    for (const [file, text] of manPages(programs)) write(path.join(a.man, file), text, wrote);
    write(path.join(a.man, 'mount.tsbak.1'), mountPage((await import('./mount.js')).mountUsage()), wrote);
  }
  if (a.bashCompletion) write(a.bashCompletion, completionScript(programs, 'bash'), wrote);
  if (a.zshCompletion) write(a.zshCompletion, completionScript(programs, 'zsh'), wrote);
  const listed = wrote.filter((f) => f !== '-');
  if (listed.length) process.stderr.write(`wrote ${listed.length === 1 ? listed[0] : `${listed.length} files`}\n`);
  return EXIT.OK;
}

function write(file: string, text: string, wrote: string[]): void {
  if (file === '-') process.stdout.write(text);
  else {
    try {
      writeFileSync(file, text);
    } catch (e) {
      throw new TsbakError('USAGE', `cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  wrote.push(file);
}

// ---- man pages ----

/** roff text: backslashes, hyphens, and a leading . or ' that would start a request. */
function roff(s: string): string {
  return s.replace(/\\/g, '\\e').replace(/-/g, '\\-').replace(/^([.'])/gm, '\\&$1');
}

function optionLines(opts: Record<string, Opt>): string[] {
  const lines: string[] = [];
  for (const [k, o] of Object.entries(opts)) {
    const arg = o.type === 'boolean' ? '' : ` \\fI${o.type.toUpperCase()}\\fR`;
    const notes = [o.choices ? `one of ${o.choices.join(', ')}` : '', o.array ? 'repeatable' : '', o.demand ? 'required' : '', o.default !== undefined ? `default ${o.default}` : ''].filter(Boolean).join('; ');
    lines.push('.TP', `${o.alias ? `\\fB\\-${o.alias}\\fR, ` : ''}\\fB\\-\\-${roff(k)}\\fR${arg}`, roff(`${o.describe ?? ''}${notes ? ` [${notes}]` : ''}`));
  }
  return lines;
}

function manPages(programs: Command[]): Array<[string, string]> {
  const version = programVersion();
  const pages: Array<[string, string]> = [];
  for (const program of programs) {
    const prog = programName(program);
    for (const { words, command } of walk(program)) {
      const page = [prog, ...words].join('-');
      const full = [prog, ...words].join(' ');
      const rest = command.usage.split(' ').slice(1).join(' ');
      const subs = command.subcommands ?? [];
      const lines = [
        `.TH ${roff(page.toUpperCase())} 1 "" "tsbak ${version}" "tsbak manual"`,
        '.SH NAME',
        `${roff(page)} \\- ${roff(command.describe)}`,
        '.SH SYNOPSIS',
        `.B ${roff(full)}`,
        roff(subs.length ? '<command> [options]' : `${rest ? `${rest} ` : ''}[options]`),
        '.SH DESCRIPTION',
        roff(command.describe),
      ];
      if (subs.length) {
        lines.push('.SH COMMANDS');
        for (const s of subs) lines.push('.TP', `\\fB${roff(`${full} ${s.usage}`)}\\fR`, `${roff(s.describe)} See \\fB${roff(`${page}-${nameOf(s)}`)}\\fR(1).`);
      }
      if (command.options && Object.keys(command.options).length) lines.push('.SH OPTIONS', ...optionLines(command.options));
      if (program === command && prog === 'tsbak') lines.push(...commonSections());
      lines.push('.SH SEE ALSO', roff(words.length || prog !== 'tsbak' ? 'tsbak(1), and README.md of tsbak' : 'README.md, docs/JSON.md and docs/FORMAT.md of tsbak'));
      pages.push([`${page}.1`, `${lines.join('\n')}\n`]);
    }
  }
  return pages;
}

/** mount.tsbak parses its own -o options (mount.ts): its page is its --help, preformatted. */
function mountPage(usage: string): string {
  return [
    `.TH MOUNT.TSBAK 1 "" "tsbak ${programVersion()}" "tsbak manual"`,
    '.SH NAME',
    'mount.tsbak \\- mount a tsbak repository read\\-only (mount \\-t tsbak, /etc/fstab)',
    '.SH DESCRIPTION',
    '.nf',
    roff(usage.trimEnd()),
    '.fi',
    '.SH SEE ALSO',
    'tsbak(1), tsbak\\-mount(1), mount(8), fstab(5)',
    '',
  ].join('\n');
}

function commonSections(): string[] {
  const env: Array<[string, string]> = [
    ['TSBAK_PASSWORD', 'the repository passphrase'],
    ['TSBAK_PASSWORD_FILE', 'a file holding the repository passphrase (as --password-file)'],
    ['TSBAK_CACHE_DIR', 'the local cache directory (as --cache-dir; default ~/.cache/tsbak)'],
    ['TSBAK_TRUST_WRITERS', '1: a backup dedups against other writer keys\' data too (as --trust-writers)'],
    ['AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_PROFILE', 'S3 endpoint, region and profile; credentials come from the AWS SDK\'s default chain'],
  ];
  const exits: Array<[number, string]> = [
    [EXIT.OK, 'success'],
    [EXIT.ERROR, 'error (I/O, backend, internal)'],
    [EXIT.USAGE, 'usage: bad arguments'],
    [EXIT.PARTIAL, 'partial: some files could not be read or written'],
    [EXIT.NOT_A_REPOSITORY, 'not a tsbak repository'],
    [EXIT.WRONG_PASSWORD, 'wrong passphrase, or a revoked write-only key'],
    [EXIT.WRITE_ONLY_KEY, 'a write-only key was used for something that reads'],
    [EXIT.LOCKED, 'repository locked'],
    [EXIT.CORRUPT, 'damage found'],
    [EXIT.COLD_PENDING, 'cold data: restores requested, run again later'],
    [EXIT.NOT_FOUND, 'not found (snapshot, path in a snapshot)'],
  ];
  return ['.SH ENVIRONMENT', ...env.flatMap(([k, v]) => ['.TP', `\\fB${roff(k)}\\fR`, roff(v)]), '.SH EXIT STATUS', ...exits.flatMap(([k, v]) => ['.TP', String(k), roff(v)])];
}

// ---- completion ----

/** A shell word list, single-quoted. */
const words = (xs: string[]): string => `'${xs.join(' ').replace(/'/g, '')}'`;

/**
 * Data functions shared by the bash and the zsh script (both read this `case` syntax):
 * for a program and the command path typed so far, its subcommands, its options, the
 * options that take a value, and the choices of one option.
 */
function dataFunctions(programs: Command[]): string {
  const subs: string[] = [];
  const opts: string[] = [];
  const valued: string[] = [];
  const choices: string[] = [];
  for (const program of programs) {
    const prog = programName(program);
    for (const { words: w, command } of walk(program)) {
      const key = [prog, ...w].join(' ');
      if (command.subcommands?.length) subs.push(`    ${words([key])}) echo ${words(command.subcommands.map(nameOf))} ;;`);
      const o = Object.entries(command.options ?? {});
      if (o.length) opts.push(`    ${words([key])}) echo ${words(['--help', ...o.flatMap(([k, x]) => [`--${k}`, ...(x.alias ? [`-${x.alias}`] : [])])])} ;;`);
      const v = o.filter(([, x]) => x.type !== 'boolean').flatMap(([k, x]) => [`--${k}`, ...(x.alias ? [`-${x.alias}`] : [])]);
      if (v.length) valued.push(`    ${words([key])}) echo ${words(v)} ;;`);
      for (const [k, x] of o) if (x.choices) for (const f of [`--${k}`, ...(x.alias ? [`-${x.alias}`] : [])]) choices.push(`    ${words([`${key} ${f}`])}) echo ${words([...x.choices])} ;;`);
    }
  }
  const fn = (name: string, arg: string, cases: string[]) => `${name}() {\n  case "${arg}" in\n${cases.join('\n')}\n  esac\n}`;
  return [
    fn('_tsbak_subcommands', '$1', subs),
    fn('_tsbak_options', '$1', opts),
    fn('_tsbak_valued', '$1', valued),
    fn('_tsbak_choices', '$1 $2', choices),
    `# The command path typed so far ("tsbak key"), from words 1..n-1.
_tsbak_path() {
  local p="$1" w
  shift
  for w in "$@"; do
    case "$w" in -*) continue ;; esac
    case " $(_tsbak_subcommands "$p") " in *" $w "*) p="$p $w" ;; esac
  done
  echo "$p"
}`,
  ].join('\n\n');
}

function completionScript(programs: Command[], shell: 'bash' | 'zsh'): string {
  const names = programs.map(programName);
  const head = `# ${shell} completion for ${names.join(', ')} (tsbak ${programVersion()}), written by 'tsbak generate --${shell}-completion'.`;
  if (shell === 'bash') {
    return `${head}
${dataFunctions(programs)}

_tsbak_complete() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" p choices
  p=$(_tsbak_path "\${COMP_WORDS[0]##*/}" "\${COMP_WORDS[@]:1:COMP_CWORD-1}")
  COMPREPLY=()
  choices=$(_tsbak_choices "$p" "$prev")
  if [ -n "$choices" ]; then
    COMPREPLY=($(compgen -W "$choices" -- "$cur"))
  elif [ "\${prev#-}" != "$prev" ] && [ -n "$prev" ] && case " $(_tsbak_valued "$p") " in *" $prev "*) true ;; *) false ;; esac; then
    COMPREPLY=($(compgen -f -- "$cur"))
  elif [ "\${cur#-}" != "$cur" ]; then
    COMPREPLY=($(compgen -W "$(_tsbak_options "$p")" -- "$cur"))
  elif [ -n "$(_tsbak_subcommands "$p")" ]; then
    COMPREPLY=($(compgen -W "$(_tsbak_subcommands "$p")" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F _tsbak_complete ${names.join(' ')}
`;
  }
  return `#compdef ${names.join(' ')}
${head}
${dataFunctions(programs)}

_tsbak_complete() {
  local cur="\${words[CURRENT]}" prev="\${words[CURRENT-1]}" p choices
  p=$(_tsbak_path "\${words[1]:t}" "\${(@)words[2,CURRENT-1]}")
  choices=$(_tsbak_choices "$p" "$prev")
  if [[ -n $choices ]]; then
    compadd -- \${=choices}
  elif [[ $prev == -* && " $(_tsbak_valued "$p") " == *" $prev "* ]]; then
    _files
  elif [[ $cur == -* ]]; then
    compadd -- \${=$(_tsbak_options "$p")}
  elif [[ -n $(_tsbak_subcommands "$p") ]]; then
    compadd -- \${=$(_tsbak_subcommands "$p")}
  else
    _files
  fi
}
compdef _tsbak_complete ${names.join(' ')}
`;
}

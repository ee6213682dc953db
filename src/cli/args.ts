// Command-line parsing on node:util's parseArgs, from a declarative table of commands and
// options (main.ts): yargs, before, cost ~160 ms and ~13 MB at the start of every command.
// Options take one value per occurrence (--tag a --tag b), as restic's do.
import { parseArgs } from 'node:util';

export type OptType = 'string' | 'boolean' | 'number';

export interface Opt {
  type: OptType;
  /** One-letter short form. */
  alias?: string;
  /** Repeatable: the values come as a list. */
  array?: boolean;
  describe?: string;
  default?: string | number | boolean;
  choices?: readonly string[];
  demand?: boolean;
}

export type Opts = Record<string, Opt>;

export interface Command {
  /** "name <required> [optional] <list..>"; '' for a program that is its one command. */
  usage: string;
  describe: string;
  options?: Opts;
  run?: (a: Record<string, unknown>) => Promise<never>;
  subcommands?: Command[];
}

/** A usage error: printed with a pointer to the command's --help, exit code 2. */
export class UsageError extends Error {
  /** The command as typed so far ("tsbak restore"), for the pointer to its help. */
  command = '';
}

type Result = { kind: 'run'; command: Command; args: Record<string, unknown>; raw: RawValues } | { kind: 'help'; text: string } | { kind: 'version' };

const camel = (s: string): string => s.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

interface Positional {
  name: string;
  required: boolean;
  list: boolean;
}

function positionals(usage: string): Positional[] {
  return [...usage.matchAll(/([<[])([a-z-]+)(\.\.)?[>\]]/g)].map((m) => ({ name: m[2]!, required: m[1] === '<', list: !!m[3] }));
}

export const nameOf = (c: Command): string => c.usage.split(' ')[0]!;

/** The help of the command `words` names under `program` (`tsbak help key list`). */
export function helpFor(prog: string, program: Command, words: string[]): string {
  let c = program;
  let path = prog;
  for (const w of words) {
    const sub = c.subcommands?.find((x) => nameOf(x) === w);
    if (!sub) {
      const e = new UsageError(`no command '${[...path.split(' ').slice(1), w].join(' ')}'`);
      e.command = prog;
      throw e;
    }
    c = sub;
    path += ` ${w}`;
  }
  return help(path, c);
}

/**
 * The repository may come from `--repo`/`-r` or the environment (TSBAK_REPOSITORY, as
 * restic's RESTIC_REPOSITORY) instead of the first positional word: a command whose usage
 * starts with `<repo>` and that declares a `repo` option then takes its other positionals
 * only (`tsbak ls latest`). The option wins over the environment.
 */
export const REPO_ENV = 'TSBAK_REPOSITORY';

/** Parses argv against `program` (a command, or a list of subcommands under it). */
export function parseCommandLine(prog: string, program: Command, argv: string[], env: NodeJS.ProcessEnv = process.env, raw?: Buffer[]): Result {
  const at = { path: prog };
  try {
    return parse(program, argv, at, env, raw ?? argv.map((s) => Buffer.from(s)));
  } catch (e) {
    if (e instanceof UsageError) e.command = at.path;
    throw e;
  }
}

/** The bytes of each value as typed, by option or positional (camelCase name): paths that are not UTF-8 (raw-argv.ts). */
export type RawValues = Record<string, Buffer[]>;

function parse(program: Command, argv: string[], at: { path: string }, env: NodeJS.ProcessEnv, raw: Buffer[]): Result {
  let command = program;
  let path = at.path;
  let rest = argv;
  let offset = 0;
  while (command.subcommands) {
    const word = rest[0];
    if (word === undefined || word === '--help' || word === '-h') return { kind: 'help', text: help(path, command) };
    if (word === '--version' && command === program) return { kind: 'version' };
    const sub = command.subcommands.find((c) => nameOf(c) === word);
    if (!sub) throw new UsageError(word.startsWith('-') ? `unknown option ${word}` : `unknown command '${word}'`);
    command = sub;
    at.path = path = `${path} ${word}`;
    rest = rest.slice(1);
    offset++;
  }
  const opts = command.options ?? {};
  const flags = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (flags.includes('--help') || flags.includes('-h')) return { kind: 'help', text: help(path, command) };
  if (flags.includes('--version')) return { kind: 'version' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      tokens: true,
      options: Object.fromEntries(Object.entries(opts).map(([k, o]) => [k, { type: o.type === 'boolean' ? 'boolean' : 'string', multiple: !!o.array, ...(o.alias ? { short: o.alias } : {}) }])),
    });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
  const args: Record<string, unknown> = {};
  for (const [k, o] of Object.entries(opts)) {
    let v = parsed.values[k] as string | boolean | string[] | undefined;
    if (v === undefined) {
      if (o.demand) throw new UsageError(`missing required option --${k}`);
      if (o.default !== undefined) args[camel(k)] = o.default;
      continue;
    }
    const check = (s: string): string | number => {
      if (o.choices && !o.choices.includes(s)) throw new UsageError(`--${k}: '${s}' is not one of ${o.choices.join(', ')}`);
      if (o.type !== 'number') return s;
      const n = Number(s);
      if (s.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${k}: '${s}' is not a number`);
      return n;
    };
    if (typeof v !== 'boolean') v = Array.isArray(v) ? (v.map(check) as string[]) : (check(v) as string);
    args[camel(k)] = v;
  }
  const rawValues: RawValues = {};
  const rawWords: Buffer[] = [];
  for (const tok of parsed.tokens ?? []) {
    if (tok.kind === 'positional') rawWords.push(raw[offset + tok.index]!);
    else if (tok.kind === 'option' && tok.value !== undefined) {
      const word = raw[offset + tok.index]!;
      // --name=VALUE, -xVALUE, or the next word.
      const b = !tok.inlineValue ? raw[offset + tok.index + 1]! : tok.rawName.startsWith('--') ? word.subarray(word.indexOf(0x3d) + 1) : word.subarray(2);
      (rawValues[camel(tok.name)] ??= []).push(b.toString() === tok.value ? b : Buffer.from(tok.value));
    }
  }
  const words = [...parsed.positionals];
  // The repository named by --repo or TSBAK_REPOSITORY: the positional <repo> is left out.
  let repoFrom: string | null = null;
  if (opts.repo && positionals(command.usage)[0]?.name === 'repo') {
    if (args.repo !== undefined) repoFrom = '--repo';
    else if (env[REPO_ENV]) {
      args.repo = env[REPO_ENV];
      repoFrom = REPO_ENV;
    }
    if (repoFrom !== null && args.repo === '') throw new UsageError(`${repoFrom} is empty: name the repository`);
  }
  for (const p of positionals(command.usage)) {
    if (repoFrom !== null && p.name === 'repo') continue;
    if (p.list) {
      if (p.required && !words.length) throw new UsageError(`missing <${p.name}..>`);
      args[camel(p.name)] = words.splice(0);
      rawValues[camel(p.name)] = rawWords.splice(0);
    } else if (words.length) {
      args[camel(p.name)] = words.shift();
      rawValues[camel(p.name)] = rawWords.splice(0, 1);
    } else if (p.required) throw new UsageError(`missing <${p.name}>${p.name === 'repo' && opts.repo ? ` (or give --repo, or set ${REPO_ENV})` : ''}`);
  }
  if (words.length) throw new UsageError(`unexpected argument '${words[0]}'${repoFrom ? ` (the repository comes from ${repoFrom}: name it there or here, not both)` : ''}`);
  return { kind: 'run', command, args, raw: rawValues };
}

function help(path: string, c: Command): string {
  const rest = c.usage.split(' ').slice(1).join(' ');
  const lines = [c.subcommands ? `Usage: ${path} <command>` : `Usage: ${path}${rest ? ` ${rest}` : ''} [options]`, '', c.describe];
  if (c.subcommands) {
    lines.push('', 'Commands:');
    const w = Math.max(...c.subcommands.map((s) => s.usage.length));
    for (const s of c.subcommands) lines.push(`  ${s.usage.padEnd(w)}  ${s.describe}`);
    lines.push('', `'${path} <command> --help' for a command's options.`);
  }
  if (c.options?.repo && positionals(c.usage)[0]?.name === 'repo') lines.push('', `<repo> is left out when --repo or ${REPO_ENV} names the repository.`);
  const opts = Object.entries(c.options ?? {});
  if (opts.length) {
    lines.push('', 'Options:');
    const flag = ([k, o]: [string, Opt]): string => `${o.alias ? `-${o.alias}, ` : '    '}--${k}${o.type === 'boolean' ? '' : ` <${o.type}>`}${o.array ? ' ...' : ''}`;
    const w = Math.max(...opts.map((e) => flag(e).length));
    for (const e of opts) {
      const o = e[1];
      const notes = [o.choices ? `one of ${o.choices.join(', ')}` : '', o.demand ? 'required' : '', o.default !== undefined ? `default ${o.default}` : ''].filter(Boolean).join('; ');
      lines.push(`  ${flag(e).padEnd(w)}  ${o.describe ?? ''}${notes ? ` [${notes}]` : ''}`.trimEnd());
    }
  }
  return `${lines.join('\n')}\n`;
}

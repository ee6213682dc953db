// The Excluder behind --exclude, --iexclude, --exclude-file, --iexclude-file, the global
// ignore list, --exclude-caches and --exclude-larger-than.
//
// Patterns are gitignore-style globs, compiled to RegExps once and matched against the raw
// path bytes decoded as latin1 (one char per byte, so invalid UTF-8 never throws; patterns
// are converted the same way):
//   *  any run of bytes except '/'        ?  one character (one UTF-8 sequence or one byte)
//   [abc] [a-z] [!abc]  a character class  \x  the literal x
//   ** a whole path segment: any number of directories ("/a/**/b", "**/b", "/a/**")
// A pattern containing a '/' (other than a trailing one) is anchored to the absolute path;
// a leading '/' is implied ("home/me" means "/home/me"). Other patterns match the base name
// at any depth. A trailing '/' matches directories only, "!pattern" re-includes, the last
// matching pattern wins. A pattern also matches everything below a path it matches, so
// "/home/me" excludes "/home/me/x" even when the backup starts at "/home/me/docs".
// Rules are evaluated in this order (later ones win): global ignore file, --exclude-file,
// --iexclude-file, --exclude, --iexclude.
import { isUtf8 } from 'node:buffer';
import { constants } from 'node:fs';
import type { EntryStat } from '../platform/native/scan.js';
import { lstat, open, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { TsbakError } from '../errors.js';
import type { Excluder } from './exclude.js';

export interface ExcludeArgs {
  exclude?: string[];
  iexclude?: string[];
  excludeFile?: string[];
  iexcludeFile?: string[];
  excludeCaches?: boolean;
  /** --exclude-if-present FILE[:CONTENT]: directories holding FILE (starting with CONTENT) are left out (restic). */
  excludeIfPresent?: string[];
  /** Bytes (the CLI parses --exclude-larger-than). */
  excludeLargerThan?: number;
  /** The global ignore list; undefined: ~/.config/tsbak/ignore, null: none. Read if it exists. */
  ignoreFile?: string | null;
}

/** The Excluder for these options, or undefined when nothing is excluded. */
export async function buildExcluder(a: ExcludeArgs): Promise<Excluder | undefined> {
  const ignoreFile = a.ignoreFile === undefined ? defaultIgnoreFile() : a.ignoreFile;
  const sources: Array<[string[], boolean]> = [
    [ignoreFile ? await readPatternFile(ignoreFile, 'ignore file', true) : [], false],
  ];
  for (const f of a.excludeFile ?? []) sources.push([await readPatternFile(f, '--exclude-file', false), false]);
  for (const f of a.iexcludeFile ?? []) sources.push([await readPatternFile(f, '--iexclude-file', false), true]);
  sources.push([a.exclude ?? [], false], [a.iexclude ?? [], true]);

  const rules: Rule[] = [];
  for (const [patterns, ci] of sources) {
    for (const p of patterns) {
      const rule = compileRule(p, ci);
      if (rule) rules.push(rule);
    }
  }
  const maxSize = a.excludeLargerThan !== undefined ? BigInt(a.excludeLargerThan) : undefined;
  const markers = (a.excludeIfPresent ?? []).map(parseMarker);
  if (!rules.length && !a.excludeCaches && maxSize === undefined && !markers.length) return undefined;
  const fingerprint = JSON.stringify([sources, a.excludeCaches ?? false, maxSize?.toString() ?? null, ...(markers.length ? [a.excludeIfPresent] : [])]);
  // A marker file can appear in a directory whose listing is otherwise unchanged (its
  // mtime moves, so the writer's directory cache sees it); no fingerprint is needed for it.
  return new RuleExcluder(rules, a.excludeCaches ?? false, maxSize, fingerprint, markers);
}

interface Marker {
  name: Buffer;
  content: Buffer | null;
}

function parseMarker(spec: string): Marker {
  const cut = spec.indexOf(':');
  const name = cut < 0 ? spec : spec.slice(0, cut);
  if (!name || name.includes('/')) throw new TsbakError('USAGE', `--exclude-if-present ${spec}: give a file name (no '/'), optionally followed by :CONTENT`);
  return { name: Buffer.from(name), content: cut < 0 ? null : Buffer.from(spec.slice(cut + 1)) };
}

/**
 * The --exclude and --iexclude patterns alone as a test of a path (restore --exclude,
 * inside the snapshot); undefined when none is given.
 */
export function buildPathMatcher(exclude: string[] = [], iexclude: string[] = []): ((path: Buffer, isDir: boolean) => boolean) | undefined {
  const rules = [...exclude.map((p) => compileRule(p, false)), ...iexclude.map((p) => compileRule(p, true))].filter((r): r is Rule => r !== null);
  if (!rules.length) return undefined;
  const ex = new RuleExcluder(rules, false, undefined, '', []);
  return (path, isDir) => ex.matchRules(path, path.toString('latin1'), isDir);
}

// ---- the excluder ----

const CACHE_TAG = 'CACHEDIR.TAG';
const CACHE_SIGNATURE = Buffer.from('Signature: 8a477f597d28d172789f06886806bc55');

class RuleExcluder implements Excluder {
  /** Directories holding a valid CACHEDIR.TAG (latin1 paths); usually very few. */
  private readonly tagged = new Set<string>();

  constructor(
    private readonly rules: Rule[],
    private readonly caches: boolean,
    private readonly maxSize: bigint | undefined,
    readonly fingerprint: string,
    private readonly markers: Marker[],
  ) {}

  async excludes(path: Buffer, isDir: boolean, st: EntryStat): Promise<boolean> {
    const isFile = (Number(st.mode) & 0o170000) === 0o100000;
    if (this.maxSize !== undefined && isFile && st.size > this.maxSize) return true;
    const s = path.toString('latin1');
    if (this.matchRules(path, s, isDir)) return true;
    if (isDir) for (const m of this.markers) if (await hasMarker(path, m)) return true;
    if (this.caches) {
      // Like restic: a tagged directory and its CACHEDIR.TAG are kept (so a restore still
      // shows it as a cache), everything else in it is left out. The walker visits a
      // directory before its entries, so the tag is known by the time they are asked about.
      // A backup root is never passed here, so an explicitly named cache dir is backed up.
      const cut = s.lastIndexOf('/');
      if (this.tagged.has(s.slice(0, cut) || '/') && s.slice(cut + 1) !== CACHE_TAG) return true;
      if (isDir && (await hasCacheTag(path))) this.tagged.add(s);
    }
    return false;
  }

  matchRules(path: Buffer, s: string, isDir: boolean): boolean {
    let lower: string | undefined;
    for (let i = this.rules.length - 1; i >= 0; i--) {
      const r = this.rules[i]!;
      const p = r.ci ? (lower ??= lowerLatin1(path)) : s;
      if (r.below.test(p) || (r.self.test(p) && (isDir || !r.dirOnly))) return !r.negate;
    }
    return false;
  }
}

/** Whether `dir` holds the marker file (any kind of entry, as restic), starting with its content when one is given. */
async function hasMarker(dir: Buffer, m: Marker): Promise<boolean> {
  const file = Buffer.concat([dir, Buffer.from('/'), m.name]);
  if (!m.content) return lstat(file).then(() => true, () => false);
  return startsWith(file, m.content);
}

async function startsWith(file: Buffer, prefix: Buffer): Promise<boolean> {
  let fh;
  try {
    // O_NONBLOCK: a FIFO of that name must not hang the backup.
    fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
    const buf = Buffer.alloc(prefix.length);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return bytesRead === buf.length && buf.equals(prefix);
  } catch {
    return false;
  } finally {
    await fh?.close().catch(() => {});
  }
}

async function hasCacheTag(dir: Buffer): Promise<boolean> {
  let fh;
  try {
    // O_NONBLOCK: a FIFO named CACHEDIR.TAG must not hang the backup.
    fh = await open(Buffer.concat([dir, Buffer.from('/' + CACHE_TAG)]), constants.O_RDONLY | constants.O_NONBLOCK);
    const buf = Buffer.alloc(CACHE_SIGNATURE.length);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return bytesRead === buf.length && buf.equals(CACHE_SIGNATURE);
  } catch {
    return false;
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** Lower-cased path for case-insensitive rules: Unicode if valid UTF-8, else ASCII only. */
function lowerLatin1(path: Buffer): string {
  if (isUtf8(path)) return Buffer.from(path.toString('utf8').toLowerCase(), 'utf8').toString('latin1');
  return path.toString('latin1').replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

// ---- pattern files ----

function defaultIgnoreFile(): string {
  const xdg = process.env.XDG_CONFIG_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.config'), 'tsbak', 'ignore');
}

/** One pattern a line; blank lines and '#' comments skipped; $VAR and ${VAR} expanded. */
async function readPatternFile(file: string, what: string, missingOk: boolean): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e: any) {
    if (missingOk && e.code === 'ENOENT') return [];
    throw new TsbakError('USAGE', `cannot read ${what} ${file}: ${e.code ?? e.message}`, { cause: e });
  }
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => process.env[a ?? b] ?? ''));
}

// ---- glob compilation ----

interface Rule {
  self: RegExp; // matches the path itself
  below: RegExp; // matches a path below a match
  dirOnly: boolean;
  negate: boolean;
  ci: boolean;
}

function compileRule(pattern: string, ci: boolean): Rule | null {
  let p = ci ? pattern.toLowerCase() : pattern;
  const negate = p.startsWith('!');
  if (negate) p = p.slice(1);
  const dirOnly = p.endsWith('/');
  p = p.replace(/\/+$/, '');
  if (!p) return null;
  const anchored = p.includes('/');
  if (anchored && !p.startsWith('/')) p = '/' + p;
  const head = anchored ? '^' : '^(?:.*/)?';
  const body = globToRegex(Buffer.from(p, 'utf8').toString('latin1'));
  return { self: new RegExp(`${head}${body}$`), below: new RegExp(`${head}${body}/`), dirOnly, negate, ci };
}

/** One character: a UTF-8 multi-byte sequence, or any single byte but '/'. */
const ONE_CHAR = '(?:[\\xc0-\\xf7][\\x80-\\xbf]{1,3}|[^/])';

const esc = (c: string): string => (/[\w/]/.test(c) ? c : '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0'));

function globToRegex(g: string): string {
  let re = '';
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === '*') {
      const segment = g[i + 1] === '*' && (i === 0 || g[i - 1] === '/') && (i + 2 === g.length || g[i + 2] === '/');
      if (segment && i + 2 === g.length) {
        re += '.*'; // trailing "**": everything below
        i++;
      } else if (segment) {
        re += '(?:.*/)?'; // "**/": zero or more directories
        i += 2;
      } else {
        while (g[i + 1] === '*') i++;
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += ONE_CHAR;
    } else if (c === '[') {
      const end = classEnd(g, i);
      if (end < 0) re += esc(c);
      else {
        re += classToRegex(g.slice(i + 1, end));
        i = end;
      }
    } else if (c === '\\' && i + 1 < g.length) {
      re += esc(g[++i]!);
    } else {
      re += esc(c);
    }
  }
  return re;
}

/** Index of the ']' closing the class opened at i, or -1 (then '[' is literal). */
function classEnd(g: string, i: number): number {
  let j = i + 1;
  if (g[j] === '!' || g[j] === '^') j++;
  if (g[j] === ']') j++; // a leading ']' is a member
  for (; j < g.length; j++) {
    if (g[j] === '\\') j++;
    else if (g[j] === ']') return j;
  }
  return -1;
}

/** "[...]" body: ASCII members become a RegExp class, multi-byte characters alternatives. */
function classToRegex(body: string): string {
  const negate = body[0] === '!' || body[0] === '^';
  let set = '';
  const multi: string[] = [];
  let i = negate ? 1 : 0;
  const next = (): string => {
    if (body[i] === '\\' && i + 1 < body.length) i++;
    let ch = body[i++]!;
    if (ch >= '\xc0') while (i < body.length && body[i]! >= '\x80' && body[i]! < '\xc0') ch += body[i++];
    return ch;
  };
  while (i < body.length) {
    const lo = next();
    if (body[i] === '-' && i + 1 < body.length) {
      i++;
      const hi = next();
      if (lo.length > 1 || hi.length > 1) throw new TsbakError('USAGE', `character ranges are supported for ASCII only: [${Buffer.from(body, 'latin1').toString('utf8')}]`);
      set += `${esc(lo)}-${esc(hi)}`;
    } else if (lo.length > 1) multi.push([...lo].map(esc).join(''));
    else set += esc(lo);
  }
  const alt = [...(set ? [`[${set}]`] : []), ...multi].join('|');
  return negate ? `(?!${alt})${ONE_CHAR}` : `(?:${alt})`;
}

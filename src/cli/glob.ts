// find's patterns. Without '/', a glob on an entry's name; with '/', on its path: anchored
// at the snapshot's root when it starts with '/', else matching the path's last
// components (`dir/*.txt` finds /any/where/dir/a.txt). `*` is any run of characters
// but '/', `?` one character, `[abc]`, `[a-z]`, `[!x]` classes, `**` any number of
// directories, `\` takes the next character literally.
import { TsbakError } from '../errors.js';

export interface Glob {
  /** Matched against the path (true) or the name. */
  onPath: boolean;
  re: RegExp;
}

const special = /[.+^${}()|[\]\\*?]/;

/** One path component's glob as a regular expression's source. */
function component(p: string, pattern: string): string {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '\\') {
      const n = p[++i];
      if (n === undefined) throw new TsbakError('USAGE', `pattern ${JSON.stringify(pattern)} ends with '\\': escape it as '\\\\'`);
      out += special.test(n) ? `\\${n}` : n;
    } else if (c === '[') {
      const end = p.indexOf(']', i + 2);
      if (end < 0) throw new TsbakError('USAGE', `pattern ${JSON.stringify(pattern)} has '[' without its ']'`);
      let body = p.slice(i + 1, end);
      const neg = body[0] === '!' || body[0] === '^';
      if (neg) body = body.slice(1);
      out += `[${neg ? '^/' : ''}${body.replace(/[\\\]^[]/g, (m) => `\\${m}`)}]`;
      i = end;
    } else out += special.test(c) ? `\\${c}` : c;
  }
  return out;
}

export function compileGlob(pattern: string, ignoreCase: boolean): Glob {
  if (pattern === '') throw new TsbakError('USAGE', 'an empty pattern matches nothing: give a name or a glob such as "*.txt"');
  const flags = ignoreCase ? 'iu' : 'u';
  try {
    if (!pattern.includes('/')) return { onPath: false, re: new RegExp(`^${component(pattern, pattern)}$`, flags) };
    const parts = pattern.split('/').filter(Boolean);
    let src = '';
    parts.forEach((part, i) => {
      const last = i === parts.length - 1;
      if (part === '**') src += last ? '.*' : '(?:[^/]*/)*';
      else src += component(part, pattern) + (last ? '' : '/');
    });
    return { onPath: true, re: new RegExp(`${pattern.startsWith('/') ? '^/' : '(?:^|/)'}${src}$`, flags) };
  } catch (e) {
    if (e instanceof TsbakError) throw e;
    throw new TsbakError('USAGE', `pattern ${JSON.stringify(pattern)} is not a valid glob (${(e as Error).message})`);
  }
}

export function globMatches(g: Glob, name: string, path: string): boolean {
  return g.re.test(g.onPath ? path : name);
}

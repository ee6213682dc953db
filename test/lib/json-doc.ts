// docs/JSON.md as the tests read it: the field paths each section documents, and a check
// that a command's JSON holds only documented, snake_case fields.
import type { Test } from 'tap';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './cli.js';

/** docs/JSON.md: the field paths of each section, by its heading. */
export function documented(): Map<string, Set<string>> {
  const sections = new Map<string, Set<string>>();
  let cur: Set<string> | null = null;
  for (const line of readFileSync(path.join(ROOT, 'docs/JSON.md'), 'utf8').split('\n')) {
    const h = /^#{2,3} (.*)$/.exec(line);
    if (h) sections.set(h[1]!, (cur = new Set()));
    const f = /^\| `([^`]+)` \|/.exec(line);
    if (f && cur) cur.add(f[1]!);
  }
  return sections;
}
export const DOC = documented();

/** Every field path of a JSON value, as docs/JSON.md writes them (`a.b`, `a[].b`, `<...>` for data-chosen keys). */
export function fieldPaths(v: unknown, doc: Set<string>, at = ''): string[] {
  if (Array.isArray(v)) return v.flatMap((x) => fieldPaths(x, doc, `${at}[]`));
  if (v === null || typeof v !== 'object') return [];
  const out: string[] = [];
  const mapKey = [...doc].map((d) => new RegExp(`^${at.replace(/[.[\]]/g, '\\$&')}${at ? '\\.' : ''}(<[^>]+>)`).exec(d)?.[1]).find(Boolean);
  for (const [k, x] of Object.entries(v)) {
    const p = `${at}${at ? '.' : ''}${mapKey ?? k}`;
    out.push(p, ...fieldPaths(x, doc, p));
  }
  return out;
}

/** Checks that every field of `value` is snake_case and documented in section `section` of docs/JSON.md. */
export function checkAgainstDoc(t: Test, section: string, value: unknown, prefix = ''): void {
  const doc = DOC.get(section);
  if (!doc) return void t.fail(`docs/JSON.md has no section ${section}`);
  const docPrefixed = new Set([...doc].filter((d) => d.startsWith(prefix)).map((d) => d.slice(prefix.length)));
  for (const p of new Set(fieldPaths(value, docPrefixed))) {
    // An object or array holding documented fields is documented by them.
    const ok = docPrefixed.has(p) || [...docPrefixed].some((d) => d.startsWith(`${p}.`) || d.startsWith(`${p}[]`));
    t.ok(ok, `${section}: field ${prefix}${p} is documented`);
    for (const k of p.split(/\.|\[\]/).filter(Boolean)) if (!k.startsWith('<')) t.match(k, /^[a-z][a-z0-9_]*$/, `${section}: ${k} is snake_case`);
  }
}

// What each path argument of a backup names, decided before anything is read.
//
// An argument is made absolute and cleaned lexically (path.resolve: `.`, `..` and `//` are
// resolved on the text, as restic does). The kernel resolves symlinks in its parents when
// the walk reaches it (as tar does): /lib/systemd/system is saved although /lib is a symlink
// to usr/lib, and is recorded under the path as given (see docs/FORMAT.md "Trees"). The
// last component is saved as it is (a symlink stays a symlink), unless the argument ends
// with '/' or '/.': then a symlink to a directory is followed and the directory saved under
// the symlink's name, like `tar`/`rsync` do for `link/`.
//
// Every argument must exist, else the run fails before it starts (exit 2): a backup never
// reports success for a path it did not save.
import { lstatSync, type BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { TsbakError } from '../errors.js';
import { withShortPathSync } from '../platform/long-path.js';

export interface Target {
  /** Absolute, lexically clean, no trailing slash ('/' for the root). */
  path: string;
  /** The last component is followed when it is a symlink (the argument ended with '/'). */
  follow: boolean;
  /** What will be saved: lstat of path, or of the directory it leads to when follow is set. */
  st: BigIntStats;
}

/** The path that makes the kernel follow p's last component (p must name a directory). */
export function followed(p: string): string {
  return p === '/' ? p : `${p}/.`;
}

const REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a component of the path is not a directory',
  EACCES: 'permission denied (a parent directory cannot be searched)',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'a name in it is too long',
};

function statArg(given: string, p: string, follow: boolean): BigIntStats {
  try {
    return withShortPathSync(Buffer.from(follow ? followed(p) : p), (sp) => lstatSync(sp, { bigint: true }));
  } catch (e: any) {
    const why = follow && e.code === 'ENOTDIR' ? 'not a directory (a trailing / names a directory or a symlink to one)' : (REASONS[e.code] ?? e.code ?? e.message);
    throw new TsbakError('USAGE', `cannot back up ${given}: ${why}; check the path`);
  }
}

/** The paths strictly between `outer` and `inner` (inner below outer), outer first. */
function between(outer: string, inner: string): string[] {
  const rest = inner.slice(outer === '/' ? 1 : outer.length + 1).split('/');
  const out: string[] = [];
  let p = outer;
  for (const c of rest.slice(0, -1)) out.push((p = p === '/' ? `/${c}` : `${p}/${c}`));
  return out;
}

const isSymlink = (st: BigIntStats) => (Number(st.mode) & 0o170000) === 0o120000;
const below = (inner: string, outer: string) => inner !== outer && (outer === '/' || inner.startsWith(`${outer}/`));

/**
 * The targets of these arguments, sorted, one per path (an argument given with and without
 * a trailing slash is followed). Throws USAGE for an argument that does not exist, and for
 * one that would be lost below another: a path reached through a symlink that another
 * argument saves as a symlink (the snapshot can hold one of the two, not both).
 */
export function planTargets(args: string[]): Target[] {
  const byPath = new Map<string, { given: string; follow: boolean }>();
  for (const given of args) {
    if (given === '') throw new TsbakError('USAGE', 'cannot back up an empty path');
    const p = path.resolve(given);
    const follow = given.endsWith('/') || given === '.' || given.endsWith('/.');
    const had = byPath.get(p);
    byPath.set(p, { given: had && !follow ? had.given : given, follow: follow || !!had?.follow });
  }
  const targets = [...byPath].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([p, { given, follow }]) => ({ given, path: p, follow, st: statArg(given, p, follow) }));
  // Nested arguments: the inner one is reached through the outer one's listing, where a
  // symlink on the way is saved as a symlink.
  for (const inner of targets) {
    for (const outer of targets) {
      if (!below(inner.path, outer.path)) continue;
      const via = [...(outer.follow ? [] : [outer.path]), ...between(outer.path, inner.path)];
      for (const q of via) {
        const st = q === outer.path ? outer.st : statArg(q, q, false);
        if (isSymlink(st))
          throw new TsbakError('USAGE', `cannot back up ${inner.given} together with ${outer.given}: ${q} is a symlink, saved as such with ${outer.given}; name ${q}/ to save the directory it points to, or back the two up separately`);
      }
    }
  }
  return targets.map(({ path, follow, st }) => ({ path, follow, st }));
}

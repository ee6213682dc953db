// The restore names every entry through its directory's handle, never by a path from the
// root: a directory being restored is held open (O_PATH, opened without following a
// symlink) and its entries are /proc/self/fd/<fd>/<name>. The kernel resolves the magic
// link to the directory itself, so neither a symlink already in the target (`T/tmp ->
// /elsewhere`) nor one the restore created (a hostile tree's `escape -> /elsewhere` then a
// directory `escape`) can lead anywhere else; names are single components (format/tree.ts
// refuses the rest), and the last component is never followed (lchown, lchmod, lsetxattr,
// utimensat AT_SYMLINK_NOFOLLOW, open O_NOFOLLOW|O_EXCL, mkdir, symlink, link, mknod).
// These paths are short whatever the depth, so no long-path workaround is needed either.
// The batches of small files (native/restore.c) take the handle itself, with openat.
import { closeSync, constants as C, lstatSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { nameProblem } from '../format/tree.js';
import { CorruptError, TsbakError } from '../errors.js';

/** O_PATH (Linux, 010000000 on every common architecture): a handle for lookups only. */
const O_PATH = 0o10000000;
/** A directory handle, refused (ENOTDIR or ELOOP) when a symlink or anything else is in the directory's place. */
const DIR_FLAGS = O_PATH | C.O_DIRECTORY | C.O_NOFOLLOW;
const SLASH = Buffer.from('/');

/** The path naming what `fd` is open on (the directory itself, for a directory handle). */
export function fdPath(fd: number): Buffer {
  return Buffer.from(`/proc/self/fd/${fd}`);
}

/** Entry `name` of the directory at `dirAt` (an fdPath); `name` must be one path component. */
export function entryAt(dirAt: Buffer, name: Buffer): Buffer {
  const bad = nameProblem(name);
  if (bad !== null) throw new CorruptError(`the entry ${JSON.stringify(name.toString())}`, `${bad}: refused`);
  return Buffer.concat([dirAt, SLASH, name]);
}

/** A handle on the restore's target (which may itself be a symlink the user named). */
export function openTarget(target: string): number {
  const fd = openSync(target, O_PATH | C.O_DIRECTORY);
  try {
    lstatSync(fdPath(fd));
  } catch (e) {
    closeSync(fd);
    throw new TsbakError('IO', `restore needs /proc (to name entries through directory handles): ${(e as Error).message}; mount procfs and run the restore again`);
  }
  return fd;
}

/** Opens the existing directory `name` of the directory at `dirAt`, never following a symlink. */
export function openDirAt(dirAt: Buffer, name: Buffer): number {
  return openSync(entryAt(dirAt, name), DIR_FLAGS);
}

/**
 * Makes directory `name` in the directory at `dirAt` (0700 until its metadata goes on) and
 * opens it. A symlink already there is refused (never followed); another non-directory (a
 * file) is removed and replaced. fresh: the restore created it (it was not there).
 */
export function makeDirAt(dirAt: Buffer, name: Buffer): { fd: number; fresh: boolean } {
  const p = entryAt(dirAt, name);
  let fresh = true;
  try {
    mkdirSync(p, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    fresh = false;
  }
  try {
    return { fd: openSync(p, DIR_FLAGS), fresh };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (fresh || (code !== 'ENOTDIR' && code !== 'ELOOP')) throw e;
  }
  // A symlink where a directory goes is neither followed nor replaced: a restore to / of a
  // backup of /lib/systemd would otherwise turn Debian's /lib -> usr/lib into a directory
  // holding only what was backed up. The user decides (move it away, or another target).
  if (lstatSync(p).isSymbolicLink()) {
    throw new Error('a symlink is in the place of this directory: not followed and not replaced (move it away, or restore to another target)');
  }
  unlinkSync(p); // another non-directory (a file, a fifo): replaced, as a restore replaces files
  mkdirSync(p, { mode: 0o700 });
  return { fd: openSync(p, DIR_FLAGS), fresh: true };
}

/**
 * A failure message without the /proc/self/fd paths Node's errors quote (the caller names
 * the entry by its path in the target): "EACCES: permission denied, open".
 */
export function tidyMessage(message: string): string {
  return message.replace(/ ?'\/proc\/self\/fd\/[^']*'( ->)?| ?\/proc\/self\/fd\/\S*/g, '');
}

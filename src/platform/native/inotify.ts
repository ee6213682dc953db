// inotify with raw events (native/inotify.c): watch descriptors, names as bytes,
// IN_Q_OVERFLOW, and ENOSPC at the watch limit, none of which fs.watch shows.
import { addon, type PathLike } from './addon.js';

interface Inotify {
  inotifyOpen(onEvents: (buf: Buffer) => void): number;
  inotifyAddWatch(id: number, path: PathLike, mask: number): number;
  inotifyRmWatch(id: number, wd: number): void;
  inotifyClose(id: number): void;
  listSubdirs(path: PathLike): Buffer[];
}

/** The names of a directory's subdirectories (symlinks excluded), read without moving its atime. */
export function listSubdirs(path: PathLike): Buffer[] {
  return addon<Inotify>().listSubdirs(path);
}

/** Masks of <sys/inotify.h>. */
export const IN = {
  MODIFY: 0x2,
  ATTRIB: 0x4,
  CLOSE_WRITE: 0x8,
  MOVED_FROM: 0x40,
  MOVED_TO: 0x80,
  CREATE: 0x100,
  DELETE: 0x200,
  DELETE_SELF: 0x400,
  MOVE_SELF: 0x800,
  UNMOUNT: 0x2000,
  Q_OVERFLOW: 0x4000,
  IGNORED: 0x8000,
  ONLYDIR: 0x1000000,
  DONT_FOLLOW: 0x2000000,
  EXCL_UNLINK: 0x4000000,
  ISDIR: 0x40000000,
} as const;

export interface InotifyEvent {
  wd: number;
  mask: number;
  cookie: number;
  /** The entry's name in the watched directory (raw bytes); null for an event on the directory itself. */
  name: Buffer | null;
}

/** The records of one read (struct inotify_event: wd, mask, cookie, len, name padded with NULs). */
export function parseEvents(buf: Buffer): InotifyEvent[] {
  const out: InotifyEvent[] = [];
  for (let o = 0; o + 16 <= buf.length; ) {
    const len = buf.readUInt32LE(o + 12);
    if (o + 16 + len > buf.length) break;
    let name: Buffer | null = null;
    if (len) {
      const raw = buf.subarray(o + 16, o + 16 + len);
      const nul = raw.indexOf(0);
      name = Buffer.from(nul < 0 ? raw : raw.subarray(0, nul));
    }
    out.push({ wd: buf.readInt32LE(o), mask: buf.readUInt32LE(o + 4), cookie: buf.readUInt32LE(o + 8), name });
    o += 16 + len;
  }
  return out;
}

/** One inotify instance; onEvents runs on the main loop whenever the kernel has events. */
export class InotifyHandle {
  private id: number | null;

  constructor(onEvents: (events: InotifyEvent[]) => void) {
    this.id = addon<Inotify>().inotifyOpen((buf) => onEvents(parseEvents(buf)));
  }

  /** The watch descriptor (the same one again for a directory watched already); throws ENOSPC at the limit. */
  addWatch(path: PathLike, mask: number): number {
    return addon<Inotify>().inotifyAddWatch(this.open(), path, mask);
  }

  rmWatch(wd: number): void {
    addon<Inotify>().inotifyRmWatch(this.open(), wd);
  }

  close(): void {
    if (this.id === null) return;
    addon<Inotify>().inotifyClose(this.id);
    this.id = null;
  }

  private open(): number {
    if (this.id === null) throw new Error('inotify handle is closed');
    return this.id;
  }
}

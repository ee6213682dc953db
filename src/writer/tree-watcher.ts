// The directories that changed under the watched trees, from inotify (tsbak watch).
//
// One watch per directory (inotify has no recursive watch): a directory is watched before
// it is listed, so an entry made meanwhile is either listed or reported. An event marks the
// directory it happened in as dirty (an attribute change of a directory also its parent's,
// which lists it). A directory created or moved in is watched with everything below it and
// all of it marked dirty. What cannot be watched (the watch limit, ENOSPC; or any other
// failure of inotify_add_watch) is an "unwatched" subtree: always dirty, scanned by the
// fallback period instead. An event queue overflow loses events: the next snapshot checks
// every directory (fullCheck).
//
// Paths are latin1 strings of the raw bytes (as the writer's directory cache keys them).
import { readFileSync } from 'node:fs';
import { IN, InotifyHandle, listSubdirs, type InotifyEvent } from '../platform/native/inotify.js';

const MASK = IN.MODIFY | IN.ATTRIB | IN.CLOSE_WRITE | IN.MOVED_FROM | IN.MOVED_TO | IN.CREATE | IN.DELETE | IN.DELETE_SELF | IN.MOVE_SELF | IN.ONLYDIR | IN.DONT_FOLLOW | IN.EXCL_UNLINK;

export interface WatchLimitHit {
  /** The directory whose watch failed first. */
  dir: string;
  /** The limit in force (fs.inotify.max_user_watches, or the injected one). */
  limit: number | null;
}

export interface TreeWatcherOptions {
  /** Called after each batch of events that dirtied something (or overflowed). */
  onChange: () => void;
  /** Called once, the first time the watch limit is hit. */
  onLimit?: (hit: WatchLimitHit) => void;
  /** Directories not to watch (the writer's own cache: its writes would trigger the next snapshot). */
  ignore?: string[];
  /** At most this many watches (tests: a watch limit without root's sysctl). */
  maxWatches?: number;
}

const parentOf = (p: string): string => {
  const cut = p.lastIndexOf('/');
  return cut <= 0 ? '/' : p.slice(0, cut);
};
const join = (dir: string, name: string): string => (dir === '/' ? '/' + name : dir + '/' + name);

export interface DirtySet {
  /** Every directory to re-read, with its ancestors (a changed directory changes the trees up to the root). */
  touched: Set<string>;
  /** Subtrees without watches: every directory below them is re-read. */
  unwatched: Set<string>;
  /** Events were lost (overflow) or nothing is known yet: every directory is re-read. */
  full: boolean;
}

export class TreeWatcher {
  private readonly handle: InotifyHandle;
  private readonly byWd = new Map<number, string>();
  private readonly byPath = new Map<string, number>();
  private dirty = new Set<string>();
  private full = false;
  private readonly unwatched = new Set<string>();
  private limitSaid = false;
  private readonly ignore: Set<string>;
  private events = 0;

  constructor(private readonly opts: TreeWatcherOptions) {
    this.ignore = new Set(opts.ignore ?? []);
    this.handle = new InotifyHandle((evs) => this.onEvents(evs));
  }

  /** Directories watched. */
  get watches(): number {
    return this.byWd.size;
  }

  /** Roots of the subtrees scanned instead of watched. */
  get unwatchedRoots(): string[] {
    return [...this.unwatched];
  }

  /** Events received since the start. */
  get eventCount(): number {
    return this.events;
  }

  /** Whether anything is waiting for a snapshot. */
  get pending(): boolean {
    return this.full || this.dirty.size > 0;
  }

  /** Watches the tree at `root` (an existing directory), marking what it adds dirty when `markDirty`. */
  addTree(root: string, markDirty = false): void {
    const stack = [root];
    while (stack.length) {
      const dir = stack.pop()!;
      if (this.ignore.has(dir)) continue;
      if (!this.watch(dir)) continue;
      if (markDirty) this.dirty.add(dir);
      let names: Buffer[];
      try {
        names = listSubdirs(Buffer.from(dir, 'latin1'));
      } catch {
        continue; // gone, or not readable: the snapshot reports what it cannot list
      }
      for (const n of names) stack.push(join(dir, n.toString('latin1')));
    }
  }

  /** Adds a watch on one directory; false when it cannot be watched (then its subtree is unwatched). */
  private watch(dir: string): boolean {
    try {
      if (this.opts.maxWatches !== undefined && this.byWd.size >= this.opts.maxWatches && !this.byPath.has(dir)) throw Object.assign(new Error('watch limit'), { code: 'ENOSPC' });
      const wd = this.handle.addWatch(Buffer.from(dir, 'latin1'), MASK);
      const old = this.byWd.get(wd);
      if (old !== undefined && old !== dir) this.byPath.delete(old); // the same directory under its new name
      this.byWd.set(wd, dir);
      this.byPath.set(dir, wd);
      return true;
    } catch (e: any) {
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return false; // gone meanwhile: its parent's event says so
      this.unwatched.add(dir);
      this.dirty.add(dir);
      if (e.code === 'ENOSPC' && !this.limitSaid) {
        this.limitSaid = true;
        this.opts.onLimit?.({ dir, limit: this.opts.maxWatches ?? readLimit() });
      }
      return false;
    }
  }

  /** Stops watching everything at or below `dir` (moved away). */
  private unwatchTree(dir: string): void {
    const prefix = dir === '/' ? '/' : dir + '/';
    for (const [p, wd] of this.byPath) {
      if (p !== dir && !p.startsWith(prefix)) continue;
      this.byPath.delete(p);
      this.byWd.delete(wd);
      try {
        this.handle.rmWatch(wd);
      } catch {
        // gone already
      }
    }
    for (const p of this.unwatched) if (p === dir || p.startsWith(prefix)) this.unwatched.delete(p);
  }

  private onEvents(evs: InotifyEvent[]): void {
    this.events += evs.length;
    for (const ev of evs) {
      if (ev.mask & IN.Q_OVERFLOW) {
        this.full = true;
        continue;
      }
      const dir = this.byWd.get(ev.wd);
      if (ev.mask & IN.IGNORED) {
        if (dir !== undefined && this.byPath.get(dir) === ev.wd) this.byPath.delete(dir);
        this.byWd.delete(ev.wd);
        continue;
      }
      if (dir === undefined) continue;
      if (ev.name) {
        this.dirty.add(dir);
        const child = join(dir, ev.name.toString('latin1'));
        if (ev.mask & IN.ISDIR) {
          if (ev.mask & IN.MOVED_FROM) this.unwatchTree(child);
          if (ev.mask & (IN.CREATE | IN.MOVED_TO)) this.addTree(child, true);
          if (ev.mask & IN.ATTRIB) this.dirty.add(child);
        }
      } else {
        // On the watched directory itself: its own attributes (listed by its parent) or its removal.
        this.dirty.add(dir);
        this.dirty.add(parentOf(dir));
      }
    }
    if (this.pending) this.opts.onChange();
  }

  /** Marks everything dirty: the next snapshot checks every directory (start, resume, overflow). */
  requireFullCheck(): void {
    this.full = true;
  }

  /** Marks the unwatched subtrees for the fallback scan; whether there are any. */
  scanUnwatched(): boolean {
    for (const p of this.unwatched) this.dirty.add(p);
    return this.unwatched.size > 0;
  }

  /** What changed since the last take; starts a new set (events during the snapshot go there). */
  take(): DirtySet {
    const touched = new Set<string>();
    for (let p of this.dirty) {
      for (;;) {
        if (touched.has(p)) break;
        touched.add(p);
        if (p === '/') break;
        p = parentOf(p);
      }
    }
    const out: DirtySet = { touched, unwatched: new Set(this.unwatched), full: this.full };
    this.dirty = new Set();
    this.full = false;
    return out;
  }

  /** A snapshot failed: what it took is dirty again. */
  giveBack(d: DirtySet): void {
    for (const p of d.touched) this.dirty.add(p);
    if (d.full) this.full = true;
  }

  close(): void {
    this.handle.close();
  }
}

/** The writer's question for a take: is nothing at or below `dir` changed? */
export function unchangedIn(d: DirtySet): (dir: Buffer) => boolean {
  return (dir) => {
    if (d.full) return false;
    const p = dir.toString('latin1');
    if (d.touched.has(p)) return false;
    if (d.unwatched.size) for (let q = p; ; q = parentOf(q)) {
      if (d.unwatched.has(q)) return false;
      if (q === '/') break;
    }
    return true;
  };
}

/** fs.inotify.max_user_watches, or null when it cannot be read. */
export function readLimit(): number | null {
  try {
    return Number(readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8').trim()) || null;
  } catch {
    return null;
  }
}

// Listings built ahead of a walk: once a directory inside a snapshot is listed, a walk
// (`ls -lR`, `cp -a`, `find`) lists its subdirectories next, and theirs after. Their
// readdirplus replies are built here, while the walker is busy with the entries it has, and
// handed to the session thread (native/fuse_ll.c, fuseSetListing), which answers the
// kernel's reads from them without a trip to this thread and tells us (onListed) which one
// it served, so that the next level is built in turn.
import { STAT_FIELDS } from '../platform/native/fuse.js';
import { S_IFDIR, S_IFMT } from './stat.js';

/** A directory's entries as readdirplus sends them: '.' and '..' first, STAT_FIELDS numbers each. */
export interface Listing {
  names: Buffer[];
  stats: Float64Array;
}

export interface ListingsAheadPorts {
  /** The listing of directory `ino` inside a snapshot; undefined if it is not one (or not known). */
  build(ino: number): Promise<Listing | undefined>;
  /** Hands a listing to the session thread; false if it did not keep it. */
  hand(ino: number, l: Listing): boolean;
}

/** Levels built below a directory listed: its subdirectories, theirs, and theirs (a walk that outruns two levels falls back to the main thread). */
const LEVELS = 3;
/** Listings built for one directory listed: its subdirectories, then theirs, at most this many. */
const PER_LISTED = 256;
/** Larger directories are left to the ordinary path (their reply is built when asked). */
const MAX_ENTRIES = 10_000;
/** Directories remembered as built (with their subdirectories), the oldest forgotten. */
const REMEMBERED = 50_000;

/** The subdirectories' inode numbers of a listing, in its order. */
export function subdirsOf(l: Listing): number[] {
  const out: number[] = [];
  for (let i = 2; i < l.names.length; i++) {
    const at = i * STAT_FIELDS;
    if (((l.stats[at + 1] ?? 0) & S_IFMT) === S_IFDIR) out.push(l.stats[at]!);
  }
  return out;
}

export class ListingsAhead {
  /** Listings built (or being built), by directory: its subdirectories. */
  private readonly built = new Map<number, Promise<number[]>>();
  /** Listings handed to the session thread. */
  handed = 0;

  constructor(private readonly ports: ListingsAheadPorts) {}

  /**
   * Directory `ino` was just listed: by JavaScript (its listing `l`), or by the session
   * thread from one built here. Builds its subdirectories' listings, then theirs.
   */
  listed(ino: number, l?: Listing): void {
    const kids = l ? Promise.resolve(subdirsOf(l)) : this.built.get(ino);
    if (kids) this.walk(kids).catch(() => {});
  }

  private async walk(kids: Promise<number[]>): Promise<void> {
    let budget = PER_LISTED;
    let level = [kids];
    for (let depth = 0; depth < LEVELS && level.length; depth++) {
      const next: Promise<number[]>[] = [];
      for (const p of level) {
        for (const k of await p) {
          if (budget-- <= 0) return;
          next.push(this.ensure(k));
          await next[next.length - 1];
        }
      }
      level = next;
    }
  }

  private ensure(ino: number): Promise<number[]> {
    let p = this.built.get(ino);
    if (p) return p;
    p = this.make(ino);
    this.built.set(ino, p);
    if (this.built.size > REMEMBERED) this.built.delete(this.built.keys().next().value!);
    return p;
  }

  private async make(ino: number): Promise<number[]> {
    // One listing per turn of the event loop: requests waiting (a reader's next read) go first.
    await new Promise<void>((resolve) => setImmediate(resolve));
    let l: Listing | undefined;
    try {
      l = await this.ports.build(ino);
    } catch {
      return []; // the walker's own request reports it
    }
    if (!l || l.names.length > MAX_ENTRIES) return [];
    if (this.ports.hand(ino, l)) this.handed++;
    return subdirsOf(l);
  }
}

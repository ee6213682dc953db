import { closeSync } from 'node:fs';

/**
 * Where the restore has written large chunks, so that a chunk that comes back (later in its
 * file, or in another file: a disk image and its snapshot) is copied from its first place in
 * the kernel (copy_file_range) instead of being read, decrypted and decompressed again.
 *
 * A file being written is a source; once its writes are over it stays open as one (its
 * descriptor is readable) while it is among the last `maxFiles` files with places, and a copy
 * holds its descriptor open until the copy is over.
 */
export interface ChunkSource {
  readonly fd: number;
  /** The file's own writing, the list of kept files, copies in progress: closed at 0. */
  refs: number;
  readonly keys: string[];
}

export interface ChunkPlace {
  readonly source: ChunkSource;
  readonly pos: number;
  /** Settles when the chunk is written there (rejected: it was not, write it another way). */
  readonly written: Promise<void>;
}

export class ChunkPlaces {
  private readonly places = new Map<string, ChunkPlace>();
  private readonly kept: ChunkSource[] = [];

  constructor(
    private readonly maxFiles: number,
    private readonly maxPlaces: number,
    private readonly close: (fd: number) => void = closeSync,
  ) {}

  /** A file about to be written; call done() when its writes are over. */
  open(fd: number): ChunkSource {
    return { fd, refs: 1, keys: [] };
  }

  get(key: string): ChunkPlace | undefined {
    return this.places.get(key);
  }

  /** The chunk `key` is being written at `pos` of `source` (kept if there is room and it has no place yet). */
  add(key: string, source: ChunkSource, pos: number, written: Promise<void>): void {
    if (this.places.size >= this.maxPlaces || this.places.has(key)) return;
    written.catch(() => {}); // a failed write is the writer's to report; copies fall back
    this.places.set(key, { source, pos, written });
    source.keys.push(key);
  }

  /** A copy from `place` starts: its descriptor stays open until release(). */
  hold(place: ChunkPlace): ChunkSource {
    place.source.refs++;
    return place.source;
  }

  release(source: ChunkSource): void {
    if (--source.refs === 0) this.close(source.fd);
  }

  /**
   * The file's writes are over. Whole and with places: kept as a source (the oldest kept one
   * is let go beyond maxFiles); otherwise its places are forgotten and its descriptor closed
   * once no copy reads it.
   */
  done(source: ChunkSource, whole: boolean): void {
    if (!whole || source.keys.length === 0) {
      this.forget(source);
      this.release(source);
      return;
    }
    this.kept.push(source);
    while (this.kept.length > this.maxFiles) {
      const old = this.kept.shift()!;
      this.forget(old);
      this.release(old);
    }
  }

  /** The restore is over (or failed): every kept file is let go. */
  closeAll(): void {
    for (const s of this.kept.splice(0)) {
      this.forget(s);
      this.release(s);
    }
  }

  private forget(source: ChunkSource): void {
    for (const k of source.keys) if (this.places.get(k)?.source === source) this.places.delete(k);
    source.keys.length = 0;
  }
}

// What dump writes archives through: an entry at a time, bytes to a sink that waits when
// the reader is slower (stdout's backpressure).
export interface ByteSink {
  write(b: Buffer): Promise<void>;
}

export type EntryKind = 'file' | 'dir' | 'symlink' | 'hardlink' | 'chardev' | 'blockdev' | 'fifo';

export interface ArchiveEntry {
  /** Relative path, raw bytes, no trailing '/'. */
  path: Buffer;
  kind: EntryKind;
  mode: number;
  uid: number;
  gid: number;
  user: string;
  group: string;
  mtimeNs: bigint;
  /** Files: the bytes the body will give. */
  size: number;
  /** Symlinks: the target; hardlinks: the path of the first name. */
  link?: Buffer;
  devMajor?: number;
  devMinor?: number;
}

export interface ArchiveWriter {
  /** Kinds this format can hold (the others are skipped with a warning). */
  holds(kind: EntryKind): boolean;
  add(e: ArchiveEntry, body?: AsyncIterable<Buffer>): Promise<void>;
  finish(): Promise<void>;
}

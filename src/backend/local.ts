// Local-directory backend. Writes are atomic and durable: the bytes go to a temp file in
// the same directory, are fsynced, then hard-linked to the final name (link fails if the
// name exists, so nothing is ever overwritten) and the directory is fsynced.

import { closeSync, fsync, openSync, write, promises as fsp, readSync, readdirSync, statSync, unlinkSync, constants as C } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Unfinished, Backend, ObjectFile, ObjectInfo, PutOptions, Range } from './backend.js';
import { NotFoundError, TsbakError } from '../errors.js';

/**
 * mkdir -p without node's `recursive: true`, which spins forever where mkdir says ENOENT
 * under an existing parent (/proc/x). The same as platform/make-dirs.ts, which backend may
 * not import.
 */
async function makeDirs(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !(await fsp.stat(d).catch(() => null)); d = path.dirname(d)) {
    if (d === path.dirname(d)) break;
    missing.push(d);
  }
  for (const d of missing.reverse()) {
    try {
      await fsp.mkdir(d);
    } catch (e: any) {
      if (e.code === 'EEXIST' && (await fsp.stat(d).catch(() => null))?.isDirectory()) continue;
      if (e.code === 'ENOENT' || e.code === 'EEXIST') throw new TsbakError('USAGE', `cannot create directory ${d}: its file system refuses new directories there (${e.code}); choose a directory elsewhere`);
      throw e;
    }
  }
}

const SYNC_READ_MAX = 1 << 20;
const FD_CACHE = 64;

function short(name: string, location: string): TsbakError {
  return new TsbakError('CORRUPT', `object ${name} in ${location} is shorter than expected (truncated?); run 'tsbak check'`);
}

export class LocalBackend implements Backend {
  readonly location: string;
  // A write to the page cache is quick: a second one in flight only holds another pack.
  readonly putConcurrency = 1;
  // Parity 10+2 unless `init --parity none`: a first backup with it holds within 1.15x of
  // one without on every corpus (docs/PERFORMANCE.md), and a lost pack is then repairable.
  readonly parityByDefault = true;
  // Reads from the page cache or one disk: a second in flight overlaps a seek, more only queue.
  readonly readConcurrency = 2;
  private readonly madeDirs = new Set<string>();
  private readonly fds = new Map<string, number>();
  private swept = false;
  /** Temp files being written now: abandon() removes them. */
  private readonly temps = new Set<string>();
  /** Objects being published now (each settles once its temp file is gone). */
  private readonly publishing = new Set<Promise<void>>();
  private abandoned = false;

  constructor(readonly root: string) {
    this.location = path.resolve(root);
  }

  private file(name: string): string {
    if (name.includes('..') || name.startsWith('/')) throw new TsbakError('BACKEND', `invalid object name ${name}`);
    return path.join(this.location, name);
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.madeDirs.has(dir)) return;
    await makeDirs(dir);
    this.madeDirs.add(dir);
  }

  async put(name: string, data: Uint8Array, _opts?: PutOptions): Promise<void> {
    this.refuseIfAbandoned(name);
    const dir = path.dirname(this.file(name));
    await this.ensureDir(dir);
    const tmp = path.join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
    await this.publish(tmp, name, async () => {
      const fh = await fsp.open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o600);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
    });
  }

  /**
   * A temp file at the top of the repository (names starting .tmp- are never listed),
   * written with synchronous appends; commit fsyncs it and links it into place like put.
   */
  createObjectFile(): ObjectFile {
    if (!this.swept) {
      this.swept = true;
      sweepStaleTemps(this.location);
    }
    this.refuseIfAbandoned('a pack');
    const tmp = path.join(this.location, `.tmp-${randomBytes(8).toString('hex')}`);
    let fd: number;
    try {
      fd = openSync(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o600);
    } catch (e: any) {
      throw ioError(tmp, e);
    }
    this.temps.add(tmp);
    let closed = false;
    const close = () => {
      if (!closed) (closed = true), closeSync(fd);
    };
    return {
      write: async (bytes: Uint8Array) => {
        try {
          for (let off = 0; off < bytes.length; ) {
            const n = await new Promise<number>((resolve, reject) => write(fd, bytes, off, bytes.length - off, null, (e, written) => (e ? reject(e) : resolve(written))));
            // A write that takes nothing and reports nothing (a full device, on some filesystems) would spin forever.
            if (n === 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
            off += n;
          }
        } catch (e: any) {
          throw ioError(tmp, e);
        }
      },
      commit: (name: string) =>
        this.publish(tmp, name, async () => {
          try {
            await new Promise<void>((resolve, reject) => fsync(fd, (e) => (e ? reject(e) : resolve())));
          } finally {
            close();
          }
        }).finally(close),
      abort: async () => {
        close();
        this.temps.delete(tmp);
        await fsp.unlink(tmp).catch(() => {});
      },
    };
  }

  /**
   * Makes the temp file `tmp` object `name`: `finish` writes and fsyncs it, then it is
   * hard-linked into place (link fails if the name exists: objects are never overwritten)
   * and the directory fsynced. The temp file is removed in every case.
   */
  private publish(tmp: string, name: string, finish: () => Promise<void>): Promise<void> {
    // Refused before anything is made once abandoned; one started before is waited for by
    // abandon(), so that no temp file it makes is left when the process exits.
    if (this.abandoned) {
      this.temps.delete(tmp);
      return fsp.unlink(tmp).then(
        () => this.refuseIfAbandoned(name),
        () => this.refuseIfAbandoned(name),
      );
    }
    const p = this.publishNow(tmp, name, finish);
    const settled = p.then(
      () => {},
      () => {},
    );
    this.publishing.add(settled);
    void settled.then(() => this.publishing.delete(settled));
    return p;
  }

  private async publishNow(tmp: string, name: string, finish: () => Promise<void>): Promise<void> {
    const dest = this.file(name);
    const dir = path.dirname(dest);
    this.temps.add(tmp);
    try {
      await finish();
      this.refuseIfAbandoned(name);
      await this.ensureDir(dir);
      try {
        await fsp.link(tmp, dest);
      } catch (e: any) {
        if (e.code === 'EEXIST') throw new TsbakError('BACKEND', `${this.location}/${name} already exists; objects are never overwritten`);
        throw e;
      }
    } catch (e: any) {
      if (e instanceof TsbakError) throw e;
      throw ioError(dest, e);
    } finally {
      this.temps.delete(tmp);
      await fsp.unlink(tmp).catch(() => {});
    }
    await syncDir(dir);
  }

  async get(name: string, range?: Range): Promise<Buffer> {
    if (!range) {
      const fh = await this.open(name);
      try {
        return await fh.readFile();
      } finally {
        await fh.close();
      }
    }
    const buf = Buffer.allocUnsafe(range.length);
    await this.readInto(name, range, buf);
    return buf;
  }

  /**
   * A range into the caller's buffer. Small ranges (one blob: trees, chunks, a restore's
   * batch) use a cache of open descriptors and a synchronous pread: objects are immutable,
   * and a pread of cached data costs far less than the thread-pool round trips of
   * open/read/close through promises.
   */
  async readInto(name: string, range: Range, into: Uint8Array): Promise<void> {
    if (into.length !== range.length) throw new RangeError(`readInto: a buffer of ${into.length} bytes for a range of ${range.length}`);
    if (range.length <= SYNC_READ_MAX) return this.readRangeSync(name, range, into);
    const fh = await this.open(name);
    try {
      let got = 0;
      while (got < range.length) {
        const { bytesRead } = await fh.read(into, got, range.length - got, range.offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got < range.length) throw short(name, this.location);
    } finally {
      await fh.close();
    }
  }

  private async open(name: string): Promise<fsp.FileHandle> {
    const file = this.file(name);
    try {
      return await fsp.open(file, 'r');
    } catch (e: any) {
      if (e.code === 'ENOENT') throw new NotFoundError(`object ${name} in ${this.location}`);
      throw new TsbakError('IO', `cannot read ${file}: ${e.code ?? e.message}`, { cause: e });
    }
  }

  private readRangeSync(name: string, range: Range, into: Uint8Array): void {
    const file = this.file(name);
    let fd = this.fds.get(file);
    if (fd === undefined) {
      try {
        fd = openSync(file, 'r');
      } catch (e: any) {
        if (e.code === 'ENOENT') throw new NotFoundError(`object ${name} in ${this.location}`);
        throw new TsbakError('IO', `cannot read ${file}: ${e.code ?? e.message}`, { cause: e });
      }
      this.fds.set(file, fd);
      if (this.fds.size > FD_CACHE) {
        const [oldest, ofd] = this.fds.entries().next().value as [string, number];
        this.fds.delete(oldest);
        closeSync(ofd);
      }
    }
    let got = 0;
    while (got < range.length) {
      const n = readSync(fd, into, got, range.length - got, range.offset + got);
      if (n === 0) break;
      got += n;
    }
    if (got < range.length) throw short(name, this.location);
  }

  async head(name: string): Promise<ObjectInfo | null> {
    try {
      const st = await fsp.stat(this.file(name));
      return { name, size: st.size, lastModified: st.mtime };
    } catch (e: any) {
      if (e.code === 'ENOENT') return null;
      throw new TsbakError('IO', `cannot stat ${this.file(name)}: ${e.code}`, { cause: e });
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk the directory that holds the prefix, then filter by full name.
    const slash = prefix.lastIndexOf('/');
    const base = slash >= 0 ? prefix.slice(0, slash) : '';
    yield* this.walk(base, prefix);
  }

  private async *walk(rel: string, prefix: string): AsyncIterable<ObjectInfo> {
    let ents;
    try {
      ents = await fsp.readdir(path.join(this.location, rel), { withFileTypes: true });
    } catch (e: any) {
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return;
      throw new TsbakError('IO', `cannot list ${path.join(this.location, rel)}: ${e.code}`, { cause: e });
    }
    ents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const ent of ents) {
      if (ent.name.startsWith('.tmp-')) continue;
      const name = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) {
        if (prefix.startsWith(name + '/') || (name + '/').startsWith(prefix)) yield* this.walk(name, prefix);
      } else if (name.startsWith(prefix)) {
        const st = await fsp.stat(path.join(this.location, name)).catch(() => null);
        if (st) yield { name, size: st.size, lastModified: st.mtime };
      }
    }
  }

  /** See Backend.abandon: the temp files being written are removed now, synchronously, and writes in flight waited for. */
  async abandon(): Promise<void> {
    this.abandoned = true;
    for (const tmp of this.temps) {
      try {
        unlinkSync(tmp);
      } catch {
        // gone already (its write finished or failed)
      }
    }
    this.temps.clear();
    // What was being published ends now (refused before its link, its temp file removed):
    // waited for, so that none of its temp files is made after this and left behind.
    await Promise.all(this.publishing);
  }

  private refuseIfAbandoned(name: string): void {
    if (this.abandoned) throw new TsbakError('IO', `not writing ${name} to ${this.location}: writing was stopped (the process is ending)`);
  }

  async close(): Promise<void> {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }

  /** Temp files of writers that never finished (at the top, and next to objects' final names). */
  async *listUnfinished(): AsyncIterable<Unfinished> {
    const walk = async function* (root: string, rel: string): AsyncIterable<Unfinished> {
      const ents = await fsp.readdir(path.join(root, rel), { withFileTypes: true }).catch(() => []);
      for (const ent of ents) {
        const name = rel ? `${rel}/${ent.name}` : ent.name;
        if (ent.isDirectory()) yield* walk(root, name);
        else if (ent.isFile() && ent.name.startsWith('.tmp-')) {
          const st = await fsp.stat(path.join(root, name)).catch(() => null);
          if (st) yield { name, size: st.size, started: st.mtime };
        }
      }
    };
    yield* walk(this.location, '');
  }

  async removeUnfinished(u: Unfinished): Promise<void> {
    if (!/(^|\/)\.tmp-[^/]+$/.test(u.name) || u.name.split('/').includes('..')) throw new TsbakError('BACKEND', `not a temp file: ${u.name}`);
    await fsp.unlink(path.join(this.location, u.name)).catch((e) => {
      if (e.code !== 'ENOENT') throw new TsbakError('IO', `cannot delete ${path.join(this.location, u.name)}: ${e.code}`, { cause: e });
    });
  }

  async delete(name: string): Promise<void> {
    const fd = this.fds.get(this.file(name));
    if (fd !== undefined) {
      this.fds.delete(this.file(name));
      closeSync(fd);
    }
    await fsp.unlink(this.file(name)).catch((e) => {
      if (e.code !== 'ENOENT') throw new TsbakError('IO', `cannot delete ${this.file(name)}: ${e.code}`, { cause: e });
    });
  }
}

/**
 * Removes pack files that killed writers left at the top of the repository. Only ones
 * untouched for a day: a live writer appends to its file far more often than that.
 */
function sweepStaleTemps(root: string): void {
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  try {
    for (const name of readdirSync(root)) {
      if (!name.startsWith('.tmp-')) continue;
      const f = path.join(root, name);
      try {
        if (statSync(f).mtimeMs < dayAgo) unlinkSync(f);
      } catch {
        // gone already, or not ours to remove: leave it
      }
    }
  } catch {
    // an unreadable root shows up as a clear error on the next operation
  }
}

function ioError(file: string, e: any): TsbakError {
  return new TsbakError('IO', `cannot write ${file}: ${e.code ?? e.message}${e.code === 'ENOSPC' ? ' (disk full: free space and run the backup again)' : ''}`, { cause: e });
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

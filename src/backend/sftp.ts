// SFTP backend: a directory on an SSH server, `sftp://user@host[:port]/path`, through the
// ssh2 library (./sftp-session.ts) in a worker thread (./sftp-thread.ts). The layout under the path is the local backend's.
//
// Objects are immutable. A put writes a temp file `.tmp-<random>` beside the final name
// (opened with SSH_FXF_CREAT|SSH_FXF_EXCL), fsyncs it (fsync@openssh.com, where the server
// has it), then renames it with SFTP v3's SSH_FXP_RENAME, which refuses an existing target:
// OpenSSH's sftp-server carries it out as link(2) then unlink(2), and link fails with EEXIST
// (on file systems without hard links it falls back to stat-then-rename, which still refuses
// an existing name but is racy). posix-rename@openssh.com, which overwrites, is never used.
// A refused rename is told apart from other failures by a stat of the target.
//
// Requests are pipelined on `connections` sessions (default 2): a large read or write is cut
// into the server's largest requests (255 KiB on OpenSSH) with several in flight. A session
// whose connection drops fails what it had in flight with a retryable error and is replaced
// by a new connection on the next request; withRetry (./retry.ts) does the retrying.

import { randomBytes } from 'node:crypto';
import * as posix from 'node:path/posix';
import type { Backend, ObjectInfo, PutOptions, Range, Unfinished } from './backend.js';
import { AlreadyExistsError, BackendError } from './backend-error.js';
import { NotFoundError, TsbakError } from '../errors.js';
import { FX, SftpStatusError, type SshCredentials, type SshTarget } from './sftp-session.js';
import { connectSftp, type SftpConnection as SftpSession } from './sftp-thread.js';
import { SFTP_WRITE_WINDOW, WriteWindow } from './sftp-write-window.js';

export interface SftpLocation extends SshTarget {
  /** Remote directory: absolute, or relative to the login directory ("" for it). */
  path: string;
}

/** Parses `sftp://[user@]host[:port]/path` (`/~/path`: relative to the login directory). */
export function parseSftpUrl(spec: string, defaultUser: string): SftpLocation {
  let u: URL;
  try {
    u = new URL(spec);
  } catch {
    throw new TsbakError('USAGE', `${spec} is not an SFTP address; write sftp://user@host[:port]/path`);
  }
  if (u.protocol !== 'sftp:' || !u.hostname) throw new TsbakError('USAGE', `${spec} is not an SFTP address; write sftp://user@host[:port]/path`);
  if (u.password) throw new TsbakError('USAGE', `${spec}: a password in the address is not accepted (it would show in the process list); use ssh-agent or --sftp-key FILE`);
  if (u.search || u.hash) throw new TsbakError('USAGE', `${spec}: an SFTP address has no ?query or #fragment; write sftp://user@host[:port]/path`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = u.port ? Number(u.port) : 22;
  let p = decodeURIComponent(u.pathname);
  if (p === '/~' || p.startsWith('/~/')) p = p.slice(3);
  else p = posix.normalize(p || '/');
  p = p.replace(/\/+$/, '');
  if (p.split('/').includes('..')) throw new TsbakError('USAGE', `${spec}: the path may not contain '..'`);
  if (p === '') {
    if (!u.pathname.startsWith('/~')) throw new TsbakError('USAGE', `${spec}: name the repository's directory (sftp://user@host/srv/backup, or /~/backup under the login directory)`);
  }
  return { host, port, user: decodeURIComponent(u.username) || defaultUser, path: p };
}

export interface SftpBackendOptions extends SftpLocation {
  credentials: SshCredentials;
  /** SSH connections to keep (default 2); requests are spread over them. */
  connections?: number;
  /** Told when a connection drops and is replaced, e.g. to print a warning. */
  onWarning?: (message: string) => void;
  /** Bytes of WRITE requests in flight per connection, over all uploads on it (default SFTP_WRITE_WINDOW). */
  writeWindow?: number;
}

/** Reads worth keeping in flight: each waits a round trip; the session pipelines them. */
export const SFTP_READ_CONCURRENCY = 12;
/** Pack uploads at once (each holds a pack in memory until the server has it). */
export const SFTP_PUT_CONCURRENCY = 4;
/** Requests of one read or write in flight at once (each ≤ 255 KiB on OpenSSH). */
const REQUESTS_PER_TRANSFER = 16;
/** Largest object a whole get reads (index files and packs are far smaller). */
const MAX_OBJECT = 1024 ** 3;
/** Open read handles kept per backend: ranged reads of one pack then cost one round trip. */
const HANDLE_CACHE = 32;

interface CachedHandle {
  session: SftpSession;
  handle: Promise<Buffer>;
  /** Reads using it now. */
  users: number;
  /** Still in the cache (else closed when the last user is done). */
  cached: boolean;
}

export class SftpBackend implements Backend {
  readonly location: string;
  readonly readConcurrency = SFTP_READ_CONCURRENCY;
  readonly putConcurrency = SFTP_PUT_CONCURRENCY;
  // As on a local disk: parity 10+2 unless `init --parity none` (storage there costs no more per byte kind).
  readonly parityByDefault = true;
  private readonly target: SshTarget;
  private readonly root: string;
  private readonly slots: Array<Promise<SftpSession> | null>;
  private nextSlot = 0;
  private readonly madeDirs = new Set<string>();
  private readonly handles = new Map<string, CachedHandle>();
  private readonly writeWindows = new WeakMap<SftpSession, WriteWindow>();
  /** Temp files being written now: abandon() removes them. */
  private readonly temps = new Map<string, SftpSession>();
  /** Temp files a dropped connection left behind: removed over the next connection. */
  private readonly orphans: string[] = [];
  private abandoned = false;
  private closed = false;
  private clockOffset: number | null = null;

  constructor(private readonly opts: SftpBackendOptions) {
    this.target = { host: opts.host, port: opts.port, user: opts.user };
    this.root = opts.path;
    const hostPart = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    this.location = `sftp://${opts.user}@${hostPart}${opts.port === 22 ? '' : `:${opts.port}`}${opts.path.startsWith('/') ? '' : '/~/'}${opts.path}`;
    this.slots = new Array(Math.max(1, opts.connections ?? 2)).fill(null);
  }

  private file(name: string): string {
    if (!name || name.startsWith('/') || name.split('/').some((s) => s === '..' || s === '.' || s === '')) throw new TsbakError('BACKEND', `invalid object name ${name}`);
    return this.root ? `${this.root}/${name}` : name;
  }

  /** A live session, round robin over the slots; a dead one is replaced by a new connection. */
  private async session(): Promise<SftpSession> {
    if (this.closed) throw new TsbakError('IO', `${this.location} is closed`);
    const i = this.nextSlot++ % this.slots.length;
    const current = this.slots[i];
    if (current) {
      const s = await current.catch(() => null);
      if (s?.alive) return s;
      if (this.slots[i] === current) this.slots[i] = null;
    }
    if (!this.slots[i]) {
      const p = connectSftp(this.target, this.opts.credentials).then((s) => {
        s.onLost = (e) => {
          this.forgetSession(s);
          this.opts.onWarning?.(`${e.message}; reconnecting`);
        };
        for (const tmp of this.orphans.splice(0)) void s.unlink(tmp).catch(() => {});
        return s;
      });
      this.slots[i] = p;
      p.catch(() => {
        if (this.slots[i] === p) this.slots[i] = null;
      });
    }
    return this.slots[i]!;
  }

  private forgetSession(s: SftpSession): void {
    for (const [name, h] of this.handles) if (h.session === s) this.uncache(name, h);
  }

  // -- writing

  async put(name: string, data: Uint8Array, _opts?: PutOptions): Promise<void> {
    this.refuseIfAbandoned(name);
    const dest = this.file(name);
    const dir = posix.dirname(dest);
    const s = await this.session();
    const tmp = `${dir === '.' ? '' : `${dir}/`}.tmp-${randomBytes(8).toString('hex')}`;
    let handle: Buffer;
    try {
      handle = await s.open(tmp, 'wx');
    } catch (e) {
      if (!(e instanceof SftpStatusError && e.status === FX.NO_SUCH_FILE)) throw this.mapError(e, 'write', tmp);
      await this.makeDirs(s, dir);
      handle = await s.open(tmp, 'wx').catch((e2) => {
        throw this.mapError(e2, 'write', tmp);
      });
    }
    this.temps.set(tmp, s);
    let renamed = false;
    try {
      try {
        await this.writeAll(s, handle, Buffer.from(data.buffer, data.byteOffset, data.byteLength), tmp);
        if (s.canFsync) await s.fsync(handle, tmp);
      } finally {
        await s.close(handle).catch(() => {});
      }
      this.refuseIfAbandoned(name);
      try {
        await s.rename(tmp, dest);
        renamed = true;
      } catch (e) {
        if (e instanceof SftpStatusError && (await s.stat(dest).then(() => true, () => false))) throw new AlreadyExistsError(this.location, name, { cause: e });
        throw e;
      }
    } catch (e) {
      throw this.mapError(e, 'write', dest);
    } finally {
      this.temps.delete(tmp);
      if (!renamed) {
        if (s.alive) await s.unlink(tmp).catch(() => {});
        else this.orphans.push(tmp);
      }
    }
  }

  /**
   * Writes `buf` at offset 0 in requests of at most the server's size, pipelined within the
   * connection's write window (shared by every upload on it).
   */
  private async writeAll(s: SftpSession, handle: Buffer, buf: Buffer, path: string): Promise<void> {
    const step = s.maxWrite;
    let window = this.writeWindows.get(s);
    if (!window) this.writeWindows.set(s, (window = WriteWindow.forRequests(this.opts.writeWindow ?? SFTP_WRITE_WINDOW, step)));
    const gate = window;
    let next = 0;
    const worker = async () => {
      for (let off; (off = next) < buf.length; ) {
        next += step;
        await gate.run(() => s.write(handle, buf, off, Math.min(step, buf.length - off), off, path));
      }
    };
    await Promise.all(Array.from({ length: Math.min(REQUESTS_PER_TRANSFER, Math.ceil(buf.length / step)) }, worker));
  }

  /** mkdir -p on the server, from the deepest missing directory down. */
  private async makeDirs(s: SftpSession, dir: string): Promise<void> {
    if (this.madeDirs.has(dir) || dir === '' || dir === '.' || dir === '/') return;
    try {
      await s.mkdir(dir);
    } catch (e) {
      if (!(e instanceof SftpStatusError)) throw this.mapError(e, 'write', dir);
      if (e.status === FX.NO_SUCH_FILE) {
        await this.makeDirs(s, posix.dirname(dir));
        await s.mkdir(dir).catch(async (e2) => {
          if (!(await this.isDir(s, dir))) throw this.mapError(e2, 'write', dir);
        });
      } else if (!(await this.isDir(s, dir))) throw this.mapError(e, 'write', dir);
    }
    this.madeDirs.add(dir);
  }

  private async isDir(s: SftpSession, dir: string): Promise<boolean> {
    return s.stat(dir).then(
      (st) => st.isDirectory(),
      () => false,
    );
  }

  // -- reading

  async get(name: string, range?: Range, signal?: AbortSignal): Promise<Buffer> {
    if (range) {
      const buf = Buffer.allocUnsafe(range.length);
      await this.readRange(name, range, buf, signal);
      return buf;
    }
    return this.withHandle(name, async (s, handle, path) => {
      let size: number;
      try {
        size = (await s.fstat(handle, path)).size;
      } catch (e) {
        throw this.mapError(e, 'read', path, name);
      }
      // The server's word: a size no object can have is damage, not an allocation to try.
      if (!Number.isSafeInteger(size) || size < 0 || size > MAX_OBJECT) throw new TsbakError('CORRUPT', `object ${name} in ${this.location} claims ${size} bytes, more than any object tsbak writes; run 'tsbak check'`);
      const buf = Buffer.allocUnsafe(size);
      await this.readWith(s, handle, path, name, { offset: 0, length: size }, buf, signal);
      return buf;
    });
  }

  async readInto(name: string, range: Range, into: Uint8Array, signal?: AbortSignal): Promise<void> {
    if (into.length !== range.length) throw new RangeError(`readInto: a buffer of ${into.length} bytes for a range of ${range.length}`);
    await this.readRange(name, range, Buffer.from(into.buffer, into.byteOffset, into.byteLength), signal);
  }

  /**
   * Runs `f` with an open handle to `name`, from the cache or opened now. A handle is closed
   * once it has left the cache (evicted, its object deleted) and no read uses it.
   */
  private async withHandle<T>(name: string, f: (s: SftpSession, handle: Buffer, path: string) => Promise<T>): Promise<T> {
    const path = this.file(name);
    let entry = this.handles.get(name);
    if (entry && entry.session.alive) {
      this.handles.delete(name);
      this.handles.set(name, entry); // most recently used last
    } else {
      const s = await this.session();
      const opened = s.open(path, 'r');
      const fresh: CachedHandle = { session: s, handle: opened, users: 0, cached: true };
      entry = fresh;
      this.handles.set(name, fresh);
      opened.catch(() => this.uncache(name, fresh));
      if (this.handles.size > HANDLE_CACHE) {
        const [oldest, h] = this.handles.entries().next().value as [string, CachedHandle];
        this.uncache(oldest, h);
      }
    }
    const e = entry;
    e.users++;
    try {
      let handle: Buffer;
      try {
        handle = await e.handle;
      } catch (err) {
        throw this.mapError(err, 'read', path, name);
      }
      return await f(e.session, handle, path);
    } finally {
      e.users--;
      if (!e.cached && e.users === 0) this.closeHandle(e);
    }
  }

  private uncache(name: string, h: CachedHandle): void {
    if (this.handles.get(name) === h) this.handles.delete(name);
    if (!h.cached) return;
    h.cached = false;
    if (h.users === 0) this.closeHandle(h);
  }

  private closeHandle(h: CachedHandle): void {
    if (h.session.alive) void h.handle.then((hd) => h.session.close(hd)).catch(() => {});
  }

  private async readRange(name: string, range: Range, into: Buffer, signal?: AbortSignal): Promise<void> {
    if (range.offset < 0 || range.length < 0 || !Number.isSafeInteger(range.offset + range.length)) throw new TsbakError('BACKEND', `invalid range ${range.offset}+${range.length} of ${name}`);
    await this.withHandle(name, (s, handle, path) => this.readWith(s, handle, path, name, range, into, signal));
  }

  /** Reads `range` into `into`, several requests of at most the server's size in flight. */
  private async readWith(s: SftpSession, handle: Buffer, path: string, name: string, range: Range, into: Buffer, signal?: AbortSignal): Promise<void> {
    const step = s.maxRead;
    let next = 0;
    let short = false;
    const worker = async () => {
      for (let off; !short && (off = next) < range.length; ) {
        next += step;
        const len = Math.min(step, range.length - off);
        // A server may answer with fewer bytes than asked: read on from there.
        for (let got = 0; got < len; ) {
          if (signal?.aborted) throw signal.reason ?? new DOMException('aborted', 'AbortError');
          const n = await s.read(handle, into, off + got, len - got, range.offset + off + got, path);
          if (n === 0) {
            short = true;
            return;
          }
          got += n;
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.max(1, Math.min(REQUESTS_PER_TRANSFER, Math.ceil(range.length / step))) }, worker));
    } catch (e) {
      throw this.mapError(e, 'read', path, name);
    }
    if (short) throw new TsbakError('CORRUPT', `object ${name} in ${this.location} is shorter than expected (truncated?); run 'tsbak check'`);
  }

  async head(name: string): Promise<ObjectInfo | null> {
    const s = await this.session();
    try {
      const st = await s.stat(this.file(name));
      return { name, size: st.size, lastModified: new Date(st.mtime * 1000) };
    } catch (e) {
      if (e instanceof SftpStatusError && e.status === FX.NO_SUCH_FILE) return null;
      throw this.mapError(e, 'read', this.file(name));
    }
  }

  /**
   * Every object under `prefix`: the directory holding it is walked level by level, the
   * directories of a level listed at once (a pack listing is 256 directories).
   */
  async *list(prefix: string, signal?: AbortSignal): AsyncIterable<ObjectInfo> {
    const slash = prefix.lastIndexOf('/');
    let level = [slash >= 0 ? prefix.slice(0, slash) : ''];
    while (level.length) {
      if (signal?.aborted) throw signal.reason ?? new DOMException('aborted', 'AbortError');
      const listed = await mapLimited(level, this.readConcurrency, (rel) => this.readdir(rel));
      const nextLevel: string[] = [];
      const found: ObjectInfo[] = [];
      listed.forEach((entries, i) => {
        const rel = level[i]!;
        for (const ent of entries) {
          if (ent.filename.startsWith('.tmp-') || !isPlainName(ent.filename)) continue;
          const name = rel ? `${rel}/${ent.filename}` : ent.filename;
          if (ent.attrs.isDirectory()) {
            if (prefix.startsWith(name + '/') || (name + '/').startsWith(prefix)) nextLevel.push(name);
          } else if (ent.attrs.isFile() && name.startsWith(prefix)) {
            found.push({ name, size: ent.attrs.size, lastModified: new Date(ent.attrs.mtime * 1000) });
          }
        }
      });
      found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      yield* found;
      level = nextLevel.sort();
    }
  }

  /** The entries of a directory of the repository ([] when it does not exist). */
  private async readdir(rel: string) {
    const s = await this.session();
    const dir = rel ? this.file(rel) : this.root || '.';
    try {
      return await s.readdir(dir);
    } catch (e) {
      if (e instanceof SftpStatusError && e.status === FX.NO_SUCH_FILE) return [];
      throw this.mapError(e, 'list', dir);
    }
  }

  async delete(name: string): Promise<void> {
    const path = this.file(name);
    const cached = this.handles.get(name);
    if (cached) this.uncache(name, cached);
    const s = await this.session();
    try {
      await s.unlink(path);
    } catch (e) {
      if (e instanceof SftpStatusError && e.status === FX.NO_SUCH_FILE) return;
      throw this.mapError(e, 'delete', path);
    }
  }

  // -- unfinished writes, the server's clock, the end

  /** Temp files of writers that never finished (a dropped connection, a killed process). */
  async *listUnfinished(): AsyncIterable<Unfinished> {
    let level = [''];
    while (level.length) {
      const listed = await mapLimited(level, this.readConcurrency, (rel) => this.readdir(rel));
      const nextLevel: string[] = [];
      for (let i = 0; i < level.length; i++) {
        for (const ent of listed[i]!) {
          if (!isPlainName(ent.filename)) continue;
          const name = level[i] ? `${level[i]}/${ent.filename}` : ent.filename;
          if (ent.attrs.isDirectory()) nextLevel.push(name);
          else if (ent.attrs.isFile() && ent.filename.startsWith('.tmp-')) yield { name, size: ent.attrs.size, started: new Date(ent.attrs.mtime * 1000) };
        }
      }
      level = nextLevel;
    }
  }

  async removeUnfinished(u: Unfinished): Promise<void> {
    if (!/(^|\/)\.tmp-[^/]+$/.test(u.name) || u.name.split('/').includes('..')) throw new TsbakError('BACKEND', `not a temp file: ${u.name}`);
    const s = await this.session();
    const path = this.file(u.name);
    await s.unlink(path).catch((e) => {
      if (!(e instanceof SftpStatusError && e.status === FX.NO_SUCH_FILE)) throw this.mapError(e, 'delete', path);
    });
  }

  /**
   * The server's clock, which stamps the objects' mtimes (lock ages): the mtime of a file
   * made and removed for the purpose, once; later calls add the time passed since.
   */
  async now(): Promise<Date> {
    if (this.clockOffset === null) {
      const s = await this.session();
      await this.makeDirs(s, this.root);
      const probe = this.file(`.tmp-clock-${randomBytes(8).toString('hex')}`);
      try {
        const h = await s.open(probe, 'wx');
        const before = Date.now();
        const st = await s.fstat(h, probe).finally(() => s.close(h).catch(() => {}));
        // mtime has whole seconds: the middle of its second is the best guess.
        this.clockOffset = st.mtime * 1000 + 500 - before;
      } catch (e) {
        throw this.mapError(e, 'write', probe);
      } finally {
        await s.unlink(probe).catch(() => {});
      }
    }
    return new Date(Date.now() + this.clockOffset);
  }

  /** See Backend.abandon: temp files being written are removed (best effort, briefly), later puts refused. */
  async abandon(): Promise<void> {
    this.abandoned = true;
    const removals = [...this.temps].map(([tmp, s]) => (s.alive ? s.unlink(tmp).catch(() => {}) : Promise.resolve()));
    this.temps.clear();
    await Promise.race([Promise.all(removals), new Promise((r) => setTimeout(r, 2000).unref())]);
  }

  private refuseIfAbandoned(name: string): void {
    if (this.abandoned) throw new TsbakError('IO', `not writing ${name} to ${this.location}: writing was stopped (the process is ending)`);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handles.clear();
    for (const p of this.slots) void p?.then((s) => s.end()).catch(() => {});
    this.slots.fill(null);
  }

  private mapError(e: unknown, op: 'read' | 'write' | 'list' | 'delete', path: string, name?: string): Error {
    if (e instanceof TsbakError) return e;
    if (e instanceof SftpStatusError) {
      if (e.status === FX.NO_SUCH_FILE && op === 'read' && name !== undefined) return new NotFoundError(`object ${name} in ${this.location}`);
      const what = `${this.target.user}@${this.target.host}:${path}`;
      if (e.status === FX.PERMISSION_DENIED) return new TsbakError('IO', `cannot ${op} ${what}: permission denied by the SFTP server; check the owner and mode of the repository's directories`, { cause: e });
      if (e.status === FX.NO_SUCH_FILE) return new TsbakError('IO', `cannot ${op} ${what}: no such file or directory`, { cause: e });
      return new BackendError(`cannot ${op} ${what}: the SFTP server says "${e.message}" (a full disk, a quota, or a read-only file system?)`, { retryable: false, serviceCode: `SSH_FX_${e.status}`, cause: e });
    }
    return e as Error;
  }
}

/** A directory entry name as a server may send it: one path component, nothing else. */
function isPlainName(n: string): boolean {
  return n !== '' && n !== '.' && n !== '..' && !n.includes('/') && !n.includes('\0');
}

/** f over `items` with at most `limit` at once; results in the items' order. */
async function mapLimited<T, R>(items: T[], limit: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let i; (i = next++) < items.length; ) out[i] = await f(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

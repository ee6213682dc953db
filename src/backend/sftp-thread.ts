// SFTP sessions whose SSH transport runs in a worker thread (./sftp-worker.ts): ssh2's
// decryption of every SSH packet and its parsing of every SFTP answer then use the second
// core, not the main thread that also drives the backup or restore (docs/DESIGN.md, "SFTP").
// A ThreadedSftpSession has SftpSession's interface and semantics (./sftp-session.ts); the
// host-key checks, authentication, stall watchdog and error mapping are that code, run there.
//
// Data moves in ArrayBuffers of the largest request size, kept in a pool and transferred
// (not copied) to the worker with each read or write and back with its answer: a read's
// answer is copied once into the caller's buffer, a write's bytes once out of it. (Not
// SharedArrayBuffers: V8 copies those with relaxed atomics, several times slower than memcpy.)
//
// One worker serves every session of the process; it keeps the process alive only while a
// session is open or being opened, or a request waits for its answer (a session lost with
// requests in flight still answers them, with its error). If the worker itself dies, every
// session fails as a dropped connection would (retryable), and the next connect starts a
// new worker.
//
// TSBAK_SFTP_TRANSPORT=main keeps ssh2 on the main thread (for measuring one against the other).

import { Worker } from 'node:worker_threads';
import { TsbakError } from '../errors.js';
import { BackendError } from './backend-error.js';
import { SftpSession, SftpStatusError, connectionLost, type SshCredentials, type SshTarget } from './sftp-session.js';
import type { WireError, WireOp, WireReply, WireRequest, WireStats } from './sftp-wire.js';

export interface RemoteStats {
  size: number;
  mtime: number;
  isDirectory(): boolean;
  isFile(): boolean;
}

/** What the SFTP backend needs of a session: SftpSession's interface. */
export interface SftpConnection {
  readonly target: SshTarget;
  readonly alive: boolean;
  onLost?: (e: Error) => void;
  readonly maxRead: number;
  readonly maxWrite: number;
  readonly canFsync: boolean;
  open(path: string, flags: 'r' | 'wx'): Promise<Buffer>;
  close(handle: Buffer): Promise<void>;
  read(handle: Buffer, buf: Buffer, off: number, len: number, position: number, path: string): Promise<number>;
  write(handle: Buffer, buf: Buffer, off: number, len: number, position: number, path: string): Promise<void>;
  fsync(handle: Buffer, path: string): Promise<void>;
  fstat(handle: Buffer, path: string): Promise<RemoteStats>;
  stat(path: string): Promise<RemoteStats>;
  readdir(path: string): Promise<Array<{ filename: string; attrs: RemoteStats }>>;
  mkdir(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  end(): void;
}

/** Opens a session: in the SSH worker thread, or on this thread with TSBAK_SFTP_TRANSPORT=main. */
export function connectSftp(target: SshTarget, cred: SshCredentials, opts: { timeoutMs?: number } = {}): Promise<SftpConnection> {
  if (process.env.TSBAK_SFTP_TRANSPORT === 'main') return SftpSession.connect(target, cred, opts);
  return ThreadedSftpSession.connect(target, cred, opts);
}

const S_IFMT = 0o170000;
class Stats implements RemoteStats {
  readonly mode: number;
  readonly size: number;
  readonly mtime: number;
  constructor(w: WireStats) {
    this.mode = w.mode;
    this.size = w.size;
    this.mtime = w.mtime;
  }
  isDirectory(): boolean {
    return (this.mode & S_IFMT) === 0o040000;
  }
  isFile(): boolean {
    return (this.mode & S_IFMT) === 0o100000;
  }
}

function fromWire(e: WireError): Error {
  switch (e.kind) {
    case 'status':
      return new SftpStatusError(e.status, e.message, e.path);
    case 'backend':
      return new BackendError(e.message, { retryable: e.retryable, code: e.code, ...(e.serviceCode !== undefined ? { serviceCode: e.serviceCode } : {}) });
    case 'tsbak':
      return new TsbakError(e.code, e.message);
    default:
      return new Error(e.message);
  }
}

/** Slot size: OpenSSH's largest read and write (limits@openssh.com) is 255 KiB. */
const SLOT = 256 * 1024;
/** Free slots kept for reuse (the rest are left to the garbage collector). */
const SLOTS_KEPT = 128;

type Waiter = { resolve: (v: any) => void; reject: (e: Error) => void };

/** The one worker thread and its bookkeeping. */
class SshWorker {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, Waiter>();
  private readonly sessions = new Map<number, ThreadedSftpSession>();
  private holds = 0;
  private readonly slots: ArrayBuffer[] = [];
  nextSid = 1;

  private start(): Worker {
    const w = new Worker(new URL('./sftp-worker.js', import.meta.url));
    w.on('message', (m: WireReply) => {
      if ('event' in m) return this.sessions.get(m.sid)?.lost(fromWire(m.error));
      const waiter = this.waiting.get(m.id);
      if (!waiter) return;
      this.waiting.delete(m.id);
      this.refOrNot();
      if (m.error) {
        if (m.data) this.giveBack(m.data);
        waiter.reject(fromWire(m.error));
      } else waiter.resolve(m.data ? { value: m.value, data: m.data } : m.value);
    });
    const died = (why: string) => {
      if (this.worker !== w) return;
      this.worker = null;
      const waiting = [...this.waiting.values()];
      this.waiting.clear();
      for (const s of [...this.sessions.values()]) s.lost(connectionLost(s.target, why));
      for (const wt of waiting) wt.reject(new BackendError(`SFTP: the SSH worker thread stopped (${why})`, { retryable: true, serviceCode: 'CONNECTION_LOST' }));
    };
    w.on('error', (e) => died(`SSH worker thread failed: ${e?.message ?? e}`));
    w.on('exit', (code) => died(`SSH worker thread exited with code ${code}`));
    this.worker = w;
    this.refOrNot();
    return w;
  }

  /** Whether the worker keeps the process alive: while sessions are open or requests wait. */
  private refOrNot(): void {
    if (this.holds > 0 || this.waiting.size > 0) this.worker?.ref();
    else this.worker?.unref();
  }

  get running(): boolean {
    return this.worker !== null;
  }

  /** Sends a request; a read's or write's buffer is transferred, and comes back as `data` of the answer. */
  request<T>(msg: WireRequest): Promise<T> {
    const w = (this.worker ??= this.start());
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(msg.id, { resolve, reject });
      if (this.waiting.size === 1) this.refOrNot();
      if (msg.op === 'read' || msg.op === 'write') w.postMessage(msg, [msg.data]);
      else w.postMessage(msg);
    });
  }

  id(): number {
    return this.nextId++;
  }

  /** Keeps the process alive while sessions are open or opening. */
  hold(n: 1 | -1): void {
    this.holds += n;
    this.refOrNot();
  }

  add(sid: number, s: ThreadedSftpSession): void {
    this.sessions.set(sid, s);
  }
  remove(sid: number): void {
    this.sessions.delete(sid);
  }

  slot(len: number): ArrayBuffer {
    if (len > SLOT) return new ArrayBuffer(len);
    return this.slots.pop() ?? new ArrayBuffer(SLOT);
  }
  giveBack(slot: ArrayBuffer): void {
    if (slot.byteLength === SLOT && this.slots.length < SLOTS_KEPT) this.slots.push(slot);
  }
}

let shared: SshWorker | null = null;

export class ThreadedSftpSession implements SftpConnection {
  private dead: Error | null = null;
  private ending = false;
  private held = true;
  onLost?: (e: Error) => void;

  private constructor(
    private readonly host: SshWorker,
    private readonly sid: number,
    readonly target: SshTarget,
    readonly maxRead: number,
    readonly maxWrite: number,
    readonly canFsync: boolean,
  ) {}

  static async connect(target: SshTarget, cred: SshCredentials, opts: { timeoutMs?: number } = {}): Promise<ThreadedSftpSession> {
    const host = (shared ??= new SshWorker());
    const sid = host.nextSid++;
    host.hold(1);
    let info: { maxRead: number; maxWrite: number; canFsync: boolean };
    try {
      info = await host.request({ id: host.id(), sid, op: 'connect', target: { host: target.host, port: target.port, user: target.user }, credentials: cred, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) });
    } catch (e) {
      host.hold(-1);
      throw e;
    }
    const s = new ThreadedSftpSession(host, sid, target, info.maxRead, info.maxWrite, info.canFsync);
    host.add(sid, s);
    return s;
  }

  get alive(): boolean {
    return !this.dead;
  }

  /** The connection dropped (told by the worker), or the worker died. */
  lost(e: Error): void {
    if (this.dead) return;
    this.dead = e;
    this.release();
    if (this.host.running) void this.host.request({ id: this.host.id(), sid: this.sid, op: 'end' }).catch(() => {});
    if (!this.ending) this.onLost?.(e);
  }

  private release(): void {
    this.host.remove(this.sid);
    if (this.held) {
      this.held = false;
      this.host.hold(-1);
    }
  }

  private call<T>(msg: WireOp): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    return this.host.request<T>({ ...msg, id: this.host.id(), sid: this.sid });
  }

  async open(path: string, flags: 'r' | 'wx'): Promise<Buffer> {
    const h = await this.call<Uint8Array>({ op: 'open', path, flags });
    return Buffer.from(h.buffer, h.byteOffset, h.byteLength);
  }
  close(handle: Buffer): Promise<void> {
    return this.call({ op: 'close', handle });
  }
  async read(handle: Buffer, buf: Buffer, off: number, len: number, position: number, path: string): Promise<number> {
    const r = await this.call<{ value: number; data: ArrayBuffer }>({ op: 'read', handle, data: this.host.slot(len), len, position, path });
    const n = Math.min(r.value, len);
    if (n > 0) buf.set(new Uint8Array(r.data, 0, n), off);
    this.host.giveBack(r.data);
    return r.value;
  }
  async write(handle: Buffer, buf: Buffer, off: number, len: number, position: number, path: string): Promise<void> {
    const data = this.host.slot(len);
    new Uint8Array(data, 0, len).set(buf.subarray(off, off + len));
    const r = await this.call<{ value: undefined; data: ArrayBuffer }>({ op: 'write', handle, data, len, position, path });
    this.host.giveBack(r.data);
  }
  fsync(handle: Buffer, path: string): Promise<void> {
    return this.call({ op: 'fsync', handle, path });
  }
  async fstat(handle: Buffer, path: string): Promise<RemoteStats> {
    return new Stats(await this.call<WireStats>({ op: 'fstat', handle, path }));
  }
  async stat(path: string): Promise<RemoteStats> {
    return new Stats(await this.call<WireStats>({ op: 'stat', path }));
  }
  async readdir(path: string): Promise<Array<{ filename: string; attrs: RemoteStats }>> {
    const entries = await this.call<Array<{ filename: string; attrs: WireStats }>>({ op: 'readdir', path });
    return entries.map((e) => ({ filename: e.filename, attrs: new Stats(e.attrs) }));
  }
  mkdir(path: string): Promise<void> {
    return this.call({ op: 'mkdir', path });
  }
  rename(from: string, to: string): Promise<void> {
    return this.call({ op: 'rename', from, path: to });
  }
  unlink(path: string): Promise<void> {
    return this.call({ op: 'unlink', path });
  }

  /** Closes the connection; requests in flight fail. */
  end(): void {
    if (this.ending) return;
    this.ending = true;
    const wasAlive = !this.dead;
    if (wasAlive) {
      this.dead = connectionLost(this.target, 'closed');
      void this.host.request({ id: this.host.id(), sid: this.sid, op: 'end' }).catch(() => {});
    }
    this.release();
  }
}

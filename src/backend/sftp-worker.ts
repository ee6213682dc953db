// The worker thread behind ./sftp-thread.ts: it owns the ssh2 connections (./sftp-session.ts),
// so that SSH's decryption and the parsing of every SFTP packet run beside the main thread,
// not on it. Messages in: {id, op, sid, ...}; out: {id, value} or {id, error}, and
// {event: 'lost', sid, error} when a connection drops by itself. A read or write comes with
// an ArrayBuffer transferred from the main thread's pool, and goes back with the answer.

import { parentPort } from 'node:worker_threads';
import { TsbakError } from '../errors.js';
import { BackendError } from './backend-error.js';
import { SftpSession, SftpStatusError, type SshCredentials, type SshTarget } from './sftp-session.js';
import type { WireError, WireRequest, WireStats } from './sftp-wire.js';

const port = parentPort!;
const sessions = new Map<number, SftpSession>();

function wireError(e: any): WireError {
  if (e instanceof SftpStatusError) return { kind: 'status', message: e.message, status: e.status, path: e.path };
  if (e instanceof BackendError) return { kind: 'backend', message: e.message, retryable: e.retryable, ...(e.serviceCode !== undefined ? { serviceCode: e.serviceCode } : {}), code: e.code };
  if (e instanceof TsbakError) return { kind: 'tsbak', message: e.message, code: e.code };
  return { kind: 'error', message: String(e?.message ?? e) };
}

function stats(st: { mode: number; size: number; mtime: number }): WireStats {
  return { mode: st.mode, size: st.size, mtime: st.mtime };
}

/** Buffers arrive as Uint8Arrays (structured clone): Buffer views again, for ssh2 and known-hosts. */
function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function credentials(c: SshCredentials): SshCredentials {
  return {
    ...c,
    keys: c.keys.map((k) => ({ ...k, key: asBuffer(k.key) })),
    knownHosts: c.knownHosts.map((h) => ({ ...h, key: asBuffer(h.key) })),
  };
}

function session(sid: number): SftpSession {
  const s = sessions.get(sid);
  if (!s) throw new Error(`no SFTP session ${sid} in the worker`);
  return s;
}

async function run(m: WireRequest): Promise<unknown> {
  switch (m.op) {
    case 'connect': {
      const s = await SftpSession.connect(m.target as SshTarget, credentials(m.credentials), m.timeoutMs !== undefined ? { timeoutMs: m.timeoutMs } : {});
      sessions.set(m.sid, s);
      // A lost session stays until the main thread ends it: requests meanwhile fail with its (retryable) error.
      s.onLost = (e) => {
        port.postMessage({ event: 'lost', sid: m.sid, error: wireError(e) });
      };
      return { maxRead: s.maxRead, maxWrite: s.maxWrite, canFsync: s.canFsync };
    }
    case 'open':
      return session(m.sid).open(m.path, m.flags);
    case 'close':
      return session(m.sid).close(asBuffer(m.handle));
    case 'read':
      return session(m.sid).read(asBuffer(m.handle), Buffer.from(m.data, 0, m.len), 0, m.len, m.position, m.path);
    case 'write':
      return session(m.sid).write(asBuffer(m.handle), Buffer.from(m.data, 0, m.len), 0, m.len, m.position, m.path);
    case 'fsync':
      return session(m.sid).fsync(asBuffer(m.handle), m.path);
    case 'fstat':
      return stats(await session(m.sid).fstat(asBuffer(m.handle), m.path));
    case 'stat':
      return stats(await session(m.sid).stat(m.path));
    case 'readdir':
      return (await session(m.sid).readdir(m.path)).map((e) => ({ filename: e.filename, attrs: stats(e.attrs) }));
    case 'mkdir':
      return session(m.sid).mkdir(m.path);
    case 'rename':
      return session(m.sid).rename(m.from, m.path);
    case 'unlink':
      return session(m.sid).unlink(m.path);
    case 'end': {
      const s = sessions.get(m.sid);
      sessions.delete(m.sid);
      s?.end();
      return undefined;
    }
  }
}

port.on('message', (m: WireRequest) => {
  const data = m.op === 'read' || m.op === 'write' ? m.data : undefined;
  run(m).then(
    (value) => port.postMessage({ id: m.id, value, data }, data ? [data] : []),
    (e) => port.postMessage({ id: m.id, error: wireError(e), data }, data ? [data] : []),
  );
});

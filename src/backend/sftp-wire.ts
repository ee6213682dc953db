// The messages between ./sftp-thread.ts (main thread) and ./sftp-worker.ts (the SSH worker).

import type { ErrorCode } from '../errors.js';
import type { SshCredentials, SshTarget } from './sftp-session.js';

export type WireOp =
  | { op: 'connect'; target: SshTarget; credentials: SshCredentials; timeoutMs?: number }
  | { op: 'open'; path: string; flags: 'r' | 'wx' }
  | { op: 'close'; handle: Uint8Array }
  | { op: 'read' | 'write'; handle: Uint8Array; data: ArrayBuffer; len: number; position: number; path: string }
  | { op: 'fsync' | 'fstat'; handle: Uint8Array; path: string }
  | { op: 'stat' | 'readdir' | 'mkdir' | 'unlink'; path: string }
  | { op: 'rename'; from: string; path: string }
  | { op: 'end' };

export type WireRequest = { id: number; sid: number } & WireOp;

export type WireError =
  | { kind: 'status'; message: string; status: number; path: string }
  | { kind: 'backend'; message: string; retryable: boolean; serviceCode?: string; code: ErrorCode }
  | { kind: 'tsbak'; message: string; code: ErrorCode }
  | { kind: 'error'; message: string };

export interface WireStats {
  mode: number;
  size: number;
  mtime: number;
}

/** `data`: a read's or write's buffer, transferred back (filled by a read). */
export type WireReply = { id: number; value?: unknown; error?: WireError; data?: ArrayBuffer } | { event: 'lost'; sid: number; error: WireError };

// Fault injection for the crash tests (test/kill-loop.test.ts): TSBAK_CRASH_AT=N[:after]
// kills the process with SIGKILL just before (or just after) its N-th change to the
// repository — a put, a delete, or the commit of a streamed object — so that a test can stop
// a backup, forget, prune or repair at every step it takes, not at a moment picked by a
// timer. PREFIX#N counts only changes to names starting with PREFIX (`index/#3:after`: right
// after the third index file). A trailing :SIGINT or :SIGTERM sends that signal instead and
// goes on, so that a test interrupts a command at a chosen step (`packs/#2:SIGINT`: while
// the second pack is committed). A trailing :pause holds that change instead: the process
// writes its pid to $TSBAK_PAUSE_DIR/paused and goes on once $TSBAK_PAUSE_DIR/go exists (a
// test then cuts the network at a known step). Unset, openBackend returns the backend as it is.
import { existsSync, watch, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Backend, ObjectFile, PutOptions } from './backend.js';
import { forwardingRest } from './warm-start.js';

export interface CrashPoint {
  at: number;
  after: boolean;
  /** Count only changes to names with this prefix ('' : every change). */
  prefix: string;
  signal: 'SIGKILL' | 'SIGINT' | 'SIGTERM' | 'pause';
}

/** TSBAK_CRASH_AT parsed, or null (unset or malformed: a typo must not kill a real run). */
export function crashPointFromEnv(value = process.env.TSBAK_CRASH_AT): CrashPoint | null {
  const m = /^(?:([a-z][a-z/]{0,31})#)?([1-9][0-9]{0,8})(:after)?(?::(SIGINT|SIGTERM|pause))?$/.exec(value ?? '');
  return m ? { prefix: m[1] ?? '', at: Number(m[2]), after: !!m[3], signal: (m[4] as CrashPoint['signal'] | undefined) ?? 'SIGKILL' } : null;
}

export function withCrashPoint(backend: Backend, point: CrashPoint): Backend {
  let changes = 0;
  const die = async () => (point.signal === 'pause' ? pause() : process.kill(process.pid, point.signal));
  async function change<T>(name: string, op: () => Promise<T>): Promise<T> {
    if (!name.startsWith(point.prefix)) return op();
    const n = ++changes;
    if (n === point.at && !point.after) await die();
    const r = await op();
    if (n === point.at && point.after) await die();
    return r;
  }
  const b = backend;
  const front = {
    put: (name: string, data: Uint8Array, opts?: PutOptions) => change(name, () => b.put(name, data, opts)),
    delete: (name: string) => change(name, () => b.delete(name)),
    createObjectFile: b.createObjectFile
      ? (): ObjectFile => {
          const f = b.createObjectFile!();
          return { write: (bytes) => f.write(bytes), commit: (name) => change(name, () => f.commit(name)), abort: () => f.abort() };
        }
      : undefined,
  };
  return forwardingRest(front, b) as unknown as Backend;
}

/** Says so in $TSBAK_PAUSE_DIR/paused, and waits for $TSBAK_PAUSE_DIR/go (inotify, no polling). */
async function pause(): Promise<void> {
  const dir = process.env.TSBAK_PAUSE_DIR;
  if (!dir) return;
  const go = path.join(dir, 'go');
  await new Promise<void>((resolve) => {
    const w = watch(dir, () => {
      if (existsSync(go)) w.close(), resolve();
    });
    writeFileSync(path.join(dir, 'paused'), String(process.pid));
    if (existsSync(go)) w.close(), resolve();
  });
}

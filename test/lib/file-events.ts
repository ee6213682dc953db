/** Waiting for something to happen to files, woken by inotify events rather than a timer. */
import { watch } from 'node:fs';

/**
 * Resolves once `cond` holds. It is checked now and again on every event under `dir`
 * (a file created, written, renamed or removed there, at any depth when `recursive`).
 * Rejects with `failed`'s error if that settles first and `cond` does not hold then (say,
 * the process writing the files exited). No timer of its own: tap's per-test timeout bounds
 * a wait that never ends.
 */
export function whenFiles(dir: string, cond: () => boolean, opts: { recursive?: boolean; failed?: Promise<Error> } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (e?: Error): void => {
      if (settled) return;
      settled = true;
      watcher.close();
      if (e) reject(e);
      else resolve();
    };
    const check = (): void => {
      try {
        if (cond()) finish();
      } catch (e) {
        finish(e as Error);
      }
    };
    // Watch first, then check: a change between the two still wakes a check.
    const watcher = watch(dir, { recursive: opts.recursive ?? false }, check);
    watcher.on('error', (e) => finish(e));
    void opts.failed?.then((e) => {
      check();
      finish(e);
    });
    check();
  });
}

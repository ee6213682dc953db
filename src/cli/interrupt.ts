// SIGINT/SIGTERM during a command that writes: the repository's writing is abandoned
// (temp files and uploads in flight dropped, locks deleted), one line is printed, and the
// process exits 130 (SIGINT) or 143 (SIGTERM). A second signal exits at once.
import type { Repository } from '../repo/repository.js';
import { programName } from './output.js';

export const EXIT_SIGNAL: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 };

export interface Interrupt {
  /** Set once a signal came: the command's own failure (writes refused) is not reported; wait on it. */
  readonly stopping: Promise<never> | null;
  /** Back to the default handling (the command's work is done). */
  dispose(): void;
}

/** `message(signal)` is the line printed, after the program's name. */
export function cleanUpOnSignals(repo: Repository, message: (signal: string) => string): Interrupt {
  let stopping: Promise<never> | null = null;
  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => {
    if (stopping) process.exit(EXIT_SIGNAL[signal]);
    stopping = repo
      .abandonWrites()
      .catch(() => {})
      .then(() => {
        // Over the progress line, when there is one.
        process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[K' : ''}${programName}: ${message(signal)}\n`);
        process.exit(EXIT_SIGNAL[signal]);
      });
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    get stopping() {
      return stopping;
    },
    dispose() {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}

// Exit codes, documented in README.md ("Exit codes"). Stable: scripts depend on them.
import type { ErrorCode } from '../errors.js';

export const EXIT = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  PARTIAL: 3, // done, but some files were unreadable/unrestorable and skipped
  NOT_A_REPOSITORY: 10,
  WRONG_PASSWORD: 11,
  WRITE_ONLY_KEY: 12,
  LOCKED: 13,
  CORRUPT: 14, // check found damage, or damaged data was read
  COLD_PENDING: 15, // cold-storage restores requested: run again later
  NOT_FOUND: 16,
} as const;

export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'NOT_A_REPOSITORY':
      return EXIT.NOT_A_REPOSITORY;
    case 'WRONG_PASSWORD':
      return EXIT.WRONG_PASSWORD;
    case 'WRITE_ONLY_KEY':
      return EXIT.WRITE_ONLY_KEY;
    case 'LOCKED':
      return EXIT.LOCKED;
    case 'CORRUPT':
      return EXIT.CORRUPT;
    case 'COLD':
      return EXIT.COLD_PENDING;
    case 'NOT_FOUND':
      return EXIT.NOT_FOUND;
    case 'USAGE':
    case 'REPO_EXISTS':
      return EXIT.USAGE;
    default:
      return EXIT.ERROR;
  }
}

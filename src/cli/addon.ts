// The native addon is required: the backup's directory scans and chunking, sealing and the
// restore run in it. Without it a command stops at start with one line, not a stack later.
import { TsbakError } from '../errors.js';
import { addon } from '../platform/native/addon.js';

export function requireAddon(): void {
  try {
    addon();
  } catch (e) {
    throw new TsbakError('IO', (e as Error).message);
  }
}

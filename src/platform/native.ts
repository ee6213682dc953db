// The native addon's typed wrapper, all of it: one module per C file under native/
// (src/platform/native/), re-exported here for the tests. Code in src/ imports the module
// of the C file it uses, so that what depends on what stays visible.
export type { PathLike } from './native/addon.js';
export * from './native/syscalls.js';
export * from './native/scan.js';
export * from './native/blob.js';
export * from './native/restore.js';
export * from './native/chunk.js';

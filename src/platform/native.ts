// The native addon's typed wrapper: one module per C file under native/ (src/platform/native/),
// re-exported here so that callers need not know which file holds what.
export { addonPath, type PathLike } from './native/addon.js';
export * from './native/syscalls.js';
export * from './native/scan.js';
export * from './native/blob.js';
export * from './native/restore.js';
export * from './native/chunk.js';

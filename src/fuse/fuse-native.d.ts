// Types for the parts of fuse-native 2.2.6 (CommonJS, no bundled types) that src/fuse uses.
// Underscored members are the package's internals that src/fuse/mount.ts overrides; the
// version is pinned in package.json because of them.
declare module 'fuse-native' {
  type Callback = (...args: any[]) => void;

  class Fuse {
    constructor(mnt: string, ops: Record<string, Callback>, opts?: Record<string, unknown>);
    readonly mnt: string;
    opts: Record<string, unknown>;
    ops: Record<string, Callback>;
    _thread: Buffer | null;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    _fuseOptions(): string;
    _close(cb: (err: Error | null) => void): void;
    _op_getxattr(signal: Callback, path: string, name: string, valueBuf: Buffer, position: number): void;
    _op_listxattr(signal: Callback, path: string, listBuf: Buffer): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
  }

  export = Fuse;
}

// Mounting a repository with fuse-native (libfuse 2.9 API), keeping the snapshot list
// fresh, and noticing when the mount goes away (umount, fusermount -u).
//
// fuse-native 2.2.6 is pinned: TsbakFuse overrides a few of its internals, because the
// package's own versions cannot pass `use_ino` (hardlinks need one inode number), answer
// getxattr/listxattr with ERANGE when the caller's buffer is too small, or finish cleanly
// after the mount was removed from outside.
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import Fuse from 'fuse-native';
import type { Repository } from '../repo/repository.js';
import { TsbakError } from '../errors.js';
import { SnapshotFs, type SnapshotFsOptions } from './fs.js';
import { mountsOn, readMounts } from './mountinfo.js';
import { ENODATA, ERANGE, makeOps } from './ops.js';

export interface MountOptions extends SnapshotFsOptions {
  /** Let other users see the mount (they still need the permission bits: default_permissions is on; ACLs are bounded into them, see acl.ts). */
  allowOther?: boolean;
  /** The "source" shown by mount/df (the repository address). */
  fsname?: string;
  /** How often to look for new snapshots, in ms (default 3000). */
  refreshMs?: number;
  /** Seconds the kernel may cache names and attributes (default 10; negative lookups are not cached). */
  cacheTimeout?: number;
  /**
   * How long one FUSE request may take before it fails with ETIMEDOUT, in ms (default
   * 120000). Reads get longer with cold=wait: the cold timeout plus this.
   */
  opTimeoutMs?: number;
  /** libfuse debug output on stderr. */
  debug?: boolean;
  /**
   * Kernel read-ahead for the mount, in KiB (default 1024). The kernel starts FUSE mounts
   * at 128 KiB, one request at a time; a larger window keeps several reads in flight.
   * Setting it needs root (it is /sys/class/bdi/<dev>/read_ahead_kb); otherwise it stays.
   */
  readAheadKb?: number;
}

export interface Mounted {
  readonly mountpoint: string;
  readonly fs: SnapshotFs;
  /** Settles when the file system is gone: unmounted by us, by umount/fusermount -u, or aborted. */
  readonly closed: Promise<void>;
  /** Unmounts (lazily, like `fusermount -uz`: open files stay readable until closed) and stops serving. */
  unmount(): Promise<void>;
}

const FUSE_TYPE = 'fuse.tsbak';
const POLL_MS = 1000;

const requireHere = createRequire(import.meta.url);
let bindingCache: { fuse_native_unmount(mnt: string, thread: Buffer): void } | null = null;
function nativeBinding() {
  // The same native module instance fuse-native loaded (require caches it by file name).
  if (!bindingCache) {
    const dir = path.dirname(requireHere.resolve('fuse-native'));
    bindingCache = createRequire(path.join(dir, 'index.js'))('node-gyp-build')(dir);
  }
  return bindingCache!;
}

function fusermountUnmount(mnt: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('fusermount', ['-u', '-z', '--', mnt], (err, _stdout, stderr) => {
      if (err) reject(new TsbakError('IO', `cannot unmount ${mnt}: ${(stderr || err.message).trim().split('\n')[0]}`));
      else resolve();
    });
  });
}

class TsbakFuse extends Fuse {
  /** Our entry in /proc/self/mountinfo once mounted. */
  mountId = -1;

  constructor(
    mnt: string,
    ops: ReturnType<typeof makeOps>,
    private readonly optionList: string[],
    timeout: number | { default: number; read: number },
  ) {
    super(mnt, ops, { timeout });
  }

  isMounted(): boolean {
    return this.mountId >= 0 && readMounts().some((m) => m.id === this.mountId);
  }

  override _fuseOptions(): string {
    return `-o${this.optionList.join(',')}`;
  }

  override _op_getxattr(signal: (...a: any[]) => void, p: string, name: string, valueBuf: Buffer, position: number): void {
    this.ops.getxattr!(p, name, position, (err: number, value?: Buffer) => {
      if (err) return signal(err, valueBuf.buffer);
      if (!value) return signal(ENODATA, valueBuf.buffer);
      if (valueBuf.length === 0) return signal(value.length, valueBuf.buffer); // size query
      if (value.length > valueBuf.length) return signal(ERANGE, valueBuf.buffer);
      value.copy(valueBuf);
      return signal(value.length, valueBuf.buffer);
    });
  }

  override _op_listxattr(signal: (...a: any[]) => void, p: string, listBuf: Buffer): void {
    this.ops.listxattr!(p, (err: number, list?: string[]) => {
      if (err) return signal(err, listBuf.buffer);
      const bytes = Buffer.from((list ?? []).map((n) => `${n}\0`).join(''));
      if (listBuf.length === 0) return signal(bytes.length, listBuf.buffer);
      if (bytes.length > listBuf.length) return signal(ERANGE, listBuf.buffer);
      bytes.copy(listBuf);
      return signal(bytes.length, listBuf.buffer);
    });
  }

  override _close(cb: (err: Error | null) => void): void {
    const release = () => {
      try {
        // Lets the event loop end: fuse-native's handle otherwise keeps the process alive.
        if (this._thread) nativeBinding().fuse_native_unmount(this.mnt, this._thread);
        cb(null);
      } catch (e) {
        cb(e as Error);
      }
    };
    // Unmount only what is still ours: after `umount` the directory may hold a new mount.
    if (this.isMounted()) fusermountUnmount(this.mnt).then(release, cb);
    else release();
  }
}

/**
 * Makes the mountpoint usable: a stale FUSE mount left by a daemon that died ("Transport
 * endpoint is not connected") is lazily unmounted; a live mount there is an error.
 */
async function prepareMountpoint(mnt: string, log: (msg: string) => void): Promise<string> {
  let st;
  try {
    st = await fsp.stat(mnt);
  } catch (e: any) {
    if (e.code === 'ENOTCONN' || e.code === 'ECONNABORTED') {
      log(`${mnt}: removing the stale mount of a daemon that is gone`);
      await fusermountUnmount(mnt);
      return prepareMountpoint(mnt, log);
    }
    if (e.code === 'ENOENT') throw new TsbakError('USAGE', `mountpoint ${mnt} does not exist; create the directory first`);
    throw new TsbakError('IO', `cannot use ${mnt} as a mountpoint: ${e.code ?? e.message}`);
  }
  if (!st.isDirectory()) throw new TsbakError('USAGE', `mountpoint ${mnt} is not a directory`);
  // /proc/self/mountinfo names the directory itself, not a symlink to it.
  const real = await fsp.realpath(mnt);
  const there = mountsOn(real);
  const top = there[there.length - 1];
  if (top) throw new TsbakError('USAGE', `${real} is already a mount point (${top.fstype} from ${top.source}); unmount it first`);
  return real;
}

function fuseOptionList(o: MountOptions): string[] {
  const t = o.cacheTimeout ?? 10;
  const list = [
    // Commas separate options and backslashes escape in libfuse's parser: keep the name plain.
    `fsname=${(o.fsname ?? 'tsbak').replace(/[,\\\s]/g, '_')}`,
    'subtype=tsbak',
    'ro',
    // The kernel checks permission bits (root reads everything, as with any file system).
    'default_permissions',
    // st_ino from us: hardlinked names share one, so cp -a/rsync -H/tar keep the links.
    'use_ino',
    // Snapshot data never changes: keep it in the page cache across opens.
    'kernel_cache',
    `entry_timeout=${t}`,
    `attr_timeout=${t}`,
    'negative_timeout=0',
    // Like mount(8) and libfuse 3: mounting over a non-empty directory is allowed.
    'nonempty',
  ];
  if (o.allowOther) list.push('allow_other');
  if (o.debug) list.push('debug');
  return list;
}

export async function mountRepository(repo: Repository, mountpoint: string, opts: MountOptions = {}): Promise<Mounted> {
  const log = opts.log ?? (() => {});
  if (!repo.canRead) throw new TsbakError('WRITE_ONLY_KEY', 'cannot mount with a write-only key (it adds snapshots but cannot read them); use the repository passphrase');
  const mnt = await prepareMountpoint(path.resolve(mountpoint), log);

  // Other users go through the kernel's mode-bit check only: ACLs are bounded into the bits.
  const fs = new SnapshotFs(repo, { ...opts, mountpoint: mnt, aclBound: !!opts.allowOther });
  await fs.refresh();

  const opTimeout = opts.opTimeoutMs ?? 120_000;
  // A read that waits for a restore (cold=wait) must not be cut short by the op timeout.
  const timeout = fs.cold?.mode === 'wait' ? { default: opTimeout, read: fs.cold.timeoutMs + opTimeout } : opTimeout;
  const fuse = new TsbakFuse(mnt, makeOps(fs, log), fuseOptionList(opts), timeout);
  await new Promise<void>((resolve, reject) => {
    fuse.mount((err) => {
      if (!err) return resolve();
      reject(new TsbakError('IO', `cannot mount on ${mnt}: ${err.message === 'fuse failed' ? 'libfuse refused (is /dev/fuse there and the fuse module loaded?)' : err.message}`));
    });
  });
  const ours = mountsOn(mnt).filter((m) => m.fstype === FUSE_TYPE);
  const entry = ours[ours.length - 1];
  if (!entry) {
    await fusermountUnmount(mnt).catch(() => {});
    await new Promise<void>((resolve) => fuse.unmount(() => resolve()));
    throw new TsbakError('IO', `mounted on ${mnt}, but the mount is not in /proc/self/mountinfo`);
  }
  fuse.mountId = entry.id;
  const readAheadKb = opts.readAheadKb ?? 1024;
  await fsp.writeFile(`/sys/class/bdi/${entry.dev}/read_ahead_kb`, `${readAheadKb}\n`).catch((e) => {
    if (readAheadKb !== 128) log(`cannot set read-ahead to ${readAheadKb} KiB (${e.code ?? e.message}); sequential reads will be slower`);
  });

  let finished = false;
  let onClosed!: () => void;
  const closed = new Promise<void>((resolve) => (onClosed = resolve));
  let refreshTimer: NodeJS.Timeout | undefined;
  let pollTimer: NodeJS.Timeout | undefined;

  const stop = (): Promise<void> => {
    if (finished) return closed;
    finished = true;
    clearTimeout(refreshTimer);
    clearInterval(pollTimer);
    return new Promise<void>((resolve, reject) => {
      fuse.unmount((err) => {
        onClosed();
        if (err) reject(err);
        else resolve();
      });
    });
  };

  const refreshEvery = opts.refreshMs ?? 3000;
  const scheduleRefresh = () => {
    refreshTimer = setTimeout(() => {
      fs.refresh()
        .catch((e) => log(`looking for new snapshots: ${(e as Error).message}`))
        .finally(() => {
          if (!finished) scheduleRefresh();
        });
    }, refreshEvery);
    refreshTimer.unref();
  };
  if (refreshEvery > 0) scheduleRefresh();

  // umount(8) and fusermount -u end the kernel side; the library gives no event for it.
  pollTimer = setInterval(() => {
    if (!fuse.isMounted()) stop().catch((e) => log(`after unmount: ${(e as Error).message}`));
  }, POLL_MS);
  pollTimer.unref();

  return { mountpoint: mnt, fs, closed, unmount: stop };
}

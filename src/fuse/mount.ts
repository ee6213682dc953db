// Mounting a repository with our libfuse 3 low-level binding (native/fuse_ll.c, requests
// answered by ./ops.ts), keeping the snapshot list fresh, and finishing when the mount goes
// away (our unmount, umount, fusermount -u).
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Repository } from '../repo/repository.js';
import { ABSENT_ACL, ABSENT_SECURITY, fuseNative } from '../platform/native/fuse.js';
import { TsbakError } from '../errors.js';
import { SnapshotFs, type SnapshotFsOptions } from './fs.js';
import { mountsOn, readMounts } from './mountinfo.js';
import { makeOps } from './ops.js';

export interface MountOptions extends SnapshotFsOptions {
  /** Let other users see the mount (the kernel checks mode bits and POSIX ACLs: default_permissions and FUSE_CAP_POSIX_ACL). */
  allowOther?: boolean;
  /** The "source" shown by mount/df (the repository address). */
  fsname?: string;
  /** How often to look for new snapshots, in ms (default 3000). */
  refreshMs?: number;
  /** Seconds the kernel may cache names and attributes outside snapshots (default 10; negative lookups are not cached). Inside a snapshot, which never changes: an hour. */
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

function fusermountUnmount(mnt: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('fusermount', ['-u', '-z', '--', mnt], (err, _stdout, stderr) => {
      if (err) reject(new TsbakError('IO', `cannot unmount ${mnt}: ${(stderr || err.message).trim().split('\n')[0]}`));
      else resolve();
    });
  });
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

/** Seconds the kernel may keep what it learnt inside a snapshot. */
const SNAPSHOT_TIMEOUT = 3600;

function fuseOptionList(o: MountOptions): string[] {
  const list = [
    // Commas separate options and backslashes escape in libfuse's parser: keep the name plain.
    `fsname=${(o.fsname ?? 'tsbak').replace(/[,\\\s]/g, '_')}`,
    'subtype=tsbak',
    'ro',
    // The kernel checks permission bits and ACLs (root reads everything, as with any file system).
    'default_permissions',
  ];
  if (o.allowOther) list.push('allow_other');
  return ['-o', list.join(','), ...(o.debug ? ['-d'] : [])];
}

export async function mountRepository(repo: Repository, mountpoint: string, opts: MountOptions = {}): Promise<Mounted> {
  const log = opts.log ?? (() => {});
  if (!repo.canRead) throw new TsbakError('WRITE_ONLY_KEY', 'cannot mount with a write-only key (it adds snapshots but cannot read them); use the repository passphrase');
  const mnt = await prepareMountpoint(path.resolve(mountpoint), log);

  const fs = new SnapshotFs(repo, { ...opts, mountpoint: mnt });
  await fs.refresh();

  const opTimeout = opts.opTimeoutMs ?? 120_000;
  // A read that waits for a restore (cold=wait) must not be cut short by the op timeout.
  const readTimeout = fs.cold?.mode === 'wait' ? fs.cold.timeoutMs + opTimeout : opTimeout;
  const ops = makeOps(fs, log, { cacheTimeout: opts.cacheTimeout ?? 10, snapshotTimeout: SNAPSHOT_TIMEOUT, opTimeoutMs: opTimeout, readTimeoutMs: readTimeout });
  let onEnded!: () => void;
  const ended = new Promise<void>((resolve) => (onEnded = resolve));
  try {
    // The kernel's ACL checks matter when other users reach the mount (allow_other); without
    // it only the key holder can, who may read everything anyway. With no ACL in any snapshot
    // the mode bits say it all, and ls -l need not ask every entry for one.
    fs.aclsUnchecked = !opts.allowOther && fs.xattrKindsAbsent.has('acl');
    const session = fuseNative().fuseMount(mnt, fuseOptionList(opts), { onRequest: ops.onRequest, onEnd: () => onEnded(), noOpen: ops.noOpen, noAcls: fs.aclsUnchecked, onListed: ops.onListed });
    ops.attach(session);
    const absentBits = () => (fs.xattrKindsAbsent.has('security') ? ABSENT_SECURITY : 0) | (fs.aclsUnchecked && fs.xattrKindsAbsent.has('acl') ? ABSENT_ACL : 0);
    fuseNative().fuseSetXattrsAbsent(session, absentBits());
    fs.xattrsAbsentChanged = () => fuseNative().fuseSetXattrsAbsent(session, absentBits());
    fs.answeredNatively = () => fuseNative().fuseAnsweredHere(session);
    fs.xattrListsStale = () => fuseNative().fuseForgetXattrLists(session);
  } catch (e) {
    throw new TsbakError('IO', `cannot mount on ${mnt}: libfuse refused (${(e as Error).message}; is /dev/fuse there and the fuse module loaded?)`);
  }
  const ours = mountsOn(mnt).filter((m) => m.fstype === FUSE_TYPE);
  const entry = ours[ours.length - 1];
  if (!entry) {
    await fusermountUnmount(mnt).catch(() => {});
    throw new TsbakError('IO', `mounted on ${mnt}, but the mount is not in /proc/self/mountinfo`);
  }
  const mountId = entry.id;
  const isMounted = () => readMounts().some((m) => m.id === mountId);
  const readAheadKb = opts.readAheadKb ?? 1024;
  await fsp.writeFile(`/sys/class/bdi/${entry.dev}/read_ahead_kb`, `${readAheadKb}\n`).catch((e) => {
    if (readAheadKb !== 128) log(`cannot set read-ahead to ${readAheadKb} KiB (${e.code ?? e.message}); sequential reads will be slower`);
  });

  let finished = false;

  // The loop ends when the kernel lets go: after our unmount, umount(8) or fusermount -u
  // (lazy: once the last open file is closed).
  const closed = ended.then(() => {
    finished = true;
    clearTimeout(refreshTimer);
    clearInterval(sweepTimer);
  });
  let refreshTimer: NodeJS.Timeout | undefined;
  const sweepTimer = setInterval(() => ops.sweep(Date.now()), POLL_MS);
  sweepTimer.unref();

  const stop = async (): Promise<void> => {
    if (!finished) {
      finished = true;
      clearTimeout(refreshTimer);
      // Unmount only what is still ours: after `umount` the directory may hold a new mount.
      if (isMounted()) await fusermountUnmount(mnt);
    }
    return closed;
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

  return { mountpoint: mnt, fs, closed, unmount: stop };
}

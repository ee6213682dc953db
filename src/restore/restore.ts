// Writes a snapshot (or part of it) back to disk with its metadata. Files are written in
// place (holes of sparse files stay holes), hardlinks are recreated as one inode, and a
// directory's metadata is applied after its children so its times survive.
import { closeSync, constants as C, ftruncateSync, openSync, promises as fsp, rmSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import type { Tree, TreeNode } from '../format/tree.js';
import type { Repository, Snapshot } from '../repo/repository.js';
import { TsbakError } from '../errors.js';
import { applyMetaSync, createSpecial, type ApplyMetaOptions } from './apply-meta.js';
import { withShortPath, withShortPathSync } from '../platform/long-path.js';

export interface RestoreOptions extends Partial<ApplyMetaOptions> {
  target: string;
  /** Absolute paths inside the snapshot; only these (and what is below them) are restored. */
  include?: string[];
  onWarning?: (path: string, message: string) => void;
  onFile?: (path: string, bytes: number) => void;
  concurrency?: number;
}

export interface RestoreResult {
  files: number;
  dirs: number;
  bytes: number;
  errors: Array<{ path: string; message: string }>;
}

/** Which entries a set of include paths selects: inside one, or on the way to one. */
class Selector {
  private readonly inc: string[] | null;
  constructor(include?: string[]) {
    this.inc = include && include.length ? include.map((p) => path.posix.resolve('/', p)) : null;
  }
  /** 'all': restore this and everything below; 'path': only a directory on the way; 'no'. */
  test(p: string): 'all' | 'path' | 'no' {
    if (!this.inc) return 'all';
    let r: 'all' | 'path' | 'no' = 'no';
    for (const i of this.inc) {
      if (p === i || p.startsWith(i === '/' ? '/' : i + '/')) return 'all';
      if (i.startsWith(p === '/' ? '/' : p + '/')) r = 'path';
    }
    return r;
  }
}

export async function restoreSnapshot(repo: Repository, snap: Snapshot, opts: RestoreOptions): Promise<RestoreResult> {
  const r = new RestoreRun(repo, opts);
  await fsp.mkdir(opts.target, { recursive: true });
  await r.restoreDir(await repo.loadTree(Buffer.from(snap.info.tree, 'hex')), Buffer.from(path.resolve(opts.target)), '/', false);
  return r.result;
}

function join(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, Buffer.from('/'), name]);
}

class RestoreRun {
  readonly result: RestoreResult = { files: 0, dirs: 0, bytes: 0, errors: [] };
  private readonly sel: Selector;
  /** Hardlink id -> path of the name that carries the inode, once it exists (null: it failed). */
  private readonly links = new Map<string, Promise<Buffer | null>>();
  private readonly meta: ApplyMetaOptions;
  private active = 0;
  private waiters: Array<() => void> = [];

  constructor(
    private readonly repo: Repository,
    private readonly opts: RestoreOptions,
  ) {
    this.sel = new Selector(opts.include);
    this.meta = { owner: opts.owner ?? process.getuid?.() === 0, securityXattrs: opts.securityXattrs ?? false, mapByName: opts.mapByName ?? false };
  }

  private fail(p: Buffer, e: unknown): void {
    const message = e instanceof TsbakError ? e.message : (e as any)?.code ? `${(e as any).code}: ${(e as Error).message}` : String((e as Error)?.message ?? e);
    this.result.errors.push({ path: p.toString(), message });
    this.opts.onWarning?.(p.toString(), message);
  }

  private async applyMeta(p: Buffer, node: TreeNode): Promise<void> {
    for (const w of applyMetaSync(p, node, this.meta)) this.opts.onWarning?.(p.toString(), w.message);
  }

  /** Restores the entries of `tree` into directory `dir` (which exists). */
  async restoreDir(tree: Tree, dir: Buffer, snapPath: string, all: boolean): Promise<void> {
    const dirs: Array<Promise<void>> = [];
    const files: Array<Promise<void>> = [];
    // Hardlinked names: the first name in tree order gets the data, later ones link to it.
    for (const node of tree.nodes) {
      const childSnap = path.posix.join(snapPath, node.name.toString());
      const sel = all ? 'all' : this.sel.test(childSnap);
      if (sel === 'no') continue;
      if (sel === 'path' && node.type !== 'dir') continue;
      const p = join(dir, node.name);
      if (node.type === 'dir') dirs.push(this.restoreSubdir(node, p, childSnap, sel === 'all'));
      else files.push(this.limit(() => this.restoreLeaf(node, p)));
    }
    await Promise.all(files);
    for (const d of dirs) await d;
  }

  private async restoreSubdir(node: TreeNode, p: Buffer, snapPath: string, all: boolean): Promise<void> {
    try {
      await withShortPath(p, (sp) => fsp.mkdir(sp, { mode: 0o700 })).catch((e) => {
        if (e.code !== 'EEXIST') throw e;
      });
      this.result.dirs++;
      if (node.subtree) await this.restoreDir(await this.repo.loadTree(node.subtree), p, snapPath, all);
      await this.applyMeta(p, node);
    } catch (e) {
      this.fail(p, e);
    }
  }

  private async limit<T>(fn: () => Promise<T>): Promise<T> {
    const max = this.opts.concurrency ?? 8;
    while (this.active >= max) await new Promise<void>((r) => this.waiters.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiters.shift()?.();
    }
  }

  private async restoreLeaf(node: TreeNode, p: Buffer): Promise<void> {
    // Hardlinks: the first name to get here claims the inode (synchronously, before any
    // await) and announces its path once the entry exists; later names wait for that and
    // link to it. (Before, a later name linked as soon as the first was *chosen*: its
    // link() was queued right after the first name's open(), and both run on the thread
    // pool, so nothing ordered them; and when the first name failed, every later one
    // failed with ENOENT.) If the first name could not be created, a later one is restored
    // in full instead.
    let created: ((p: Buffer | null) => void) | undefined;
    let first: Promise<Buffer | null> | undefined;
    if (node.hardlink) {
      first = this.links.get(node.hardlink);
      if (!first) this.links.set(node.hardlink, new Promise((r) => (created = r)));
    }
    try {
      // withShortPath: paths deeper than PATH_MAX are reached through a directory handle.
      withShortPathSync(p, (sp) => rmSync(sp, { force: true }));
      const firstPath = first ? await first : null;
      if (firstPath) {
        await withShortPath(firstPath, (fp) => withShortPath(p, (sp) => fsp.link(fp, sp)));
        return;
      }
      switch (node.type) {
        case 'file':
          await this.writeFile(node, p);
          this.result.files++;
          break;
        case 'symlink':
          await withShortPath(p, (sp) => fsp.symlink(node.target ?? Buffer.alloc(0), sp));
          break;
        default:
          await createSpecial(p, node);
      }
      created?.(p);
      await this.applyMeta(p, node);
    } catch (e) {
      created?.(null);
      this.fail(p, e);
    }
  }

  private async writeFile(node: TreeNode, p: Buffer): Promise<void> {
    const content = node.content ?? [];
    const extents = node.extents ?? (node.size > 0 ? [[0, node.size] as [number, number]] : []);
    if (node.size <= SMALL_FILE) {
      // Small files: fetch the chunks, then one synchronous open/write/close (cheaper than
      // three thread-pool round trips per file on trees of many small files).
      const blobs: Buffer[] = [];
      for (const id of content) blobs.push(await this.repo.loadBlob(id));
      withShortPathSync(p, (sp) => {
        const fd = openSync(sp, C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW, 0o600);
        try {
          let end = 0;
          placeChunks(extents, blobs, (data, pos) => {
            let done = 0;
            while (done < data.length) done += writeSync(fd, data, done, data.length - done, pos + done);
            end = pos + data.length;
            this.result.bytes += data.length;
          });
          if (end !== node.size) ftruncateSync(fd, node.size); // trailing hole
        } catch (e) {
          closeSync(fd);
          rmSync(sp, { force: true });
          throw e;
        }
        closeSync(fd);
      });
      this.opts.onFile?.(p.toString(), node.size);
      return;
    }
    const fh = await withShortPath(p, (sp) => fsp.open(sp, C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW, 0o600));
    let ok = false;
    try {
      let ci = 0;
      // Chunks fill the extents in order; a chunk never spans two extents.
      for (const [off, len] of extents) {
        let pos = off;
        while (pos < off + len && ci < content.length) {
          const data = await this.repo.loadBlob(content[ci++]!);
          await writeAll(fh, data, pos);
          pos += data.length;
          this.result.bytes += data.length;
        }
      }
      await fh.truncate(node.size); // trailing hole, or the size of an all-hole file
      ok = true;
    } finally {
      await fh.close();
      if (!ok) await withShortPath(p, (sp) => fsp.rm(sp, { force: true })).catch(() => {});
    }
    this.opts.onFile?.(p.toString(), node.size);
  }
}

/** Files up to this size are written with synchronous calls, their chunks held in memory. */
const SMALL_FILE = 1 << 20;

/** Calls put(data, offset) for each chunk at its place: chunks fill the extents in order. */
function placeChunks(extents: Array<[number, number]>, blobs: Buffer[], put: (data: Buffer, pos: number) => void): void {
  let ci = 0;
  for (const [off, len] of extents) {
    let pos = off;
    while (pos < off + len && ci < blobs.length) {
      const data = blobs[ci++]!;
      put(data, pos);
      pos += data.length;
    }
  }
}

async function writeAll(fh: fsp.FileHandle, data: Buffer, pos: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, pos + done);
    done += bytesWritten;
  }
}

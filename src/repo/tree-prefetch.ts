// Trees loaded ahead of a depth-first walk (`tsbak ls`), so that it waits for one round trip
// at a time at most, not one per directory. Every tree loaded names its subdirectories; they
// are queued on a stack (first child on top), so the loads run ahead in about the order the
// walk will ask for them, `concurrency` at a time. At most `window` trees are loaded and not
// yet taken: a walk that falls behind holds that much memory, no more. A tree asked for that
// is not loaded yet is loaded at once, whatever the bounds.
import type { Tree } from '../format/tree.js';

export interface TreePrefetchOptions {
  /** Loads under way at once (default 16). */
  concurrency?: number;
  /** Trees loaded (or loading) ahead of the walk (default 512). */
  window?: number;
}

export class TreePrefetch {
  private readonly ahead = new Map<string, Promise<Tree>>();
  private readonly stack: Buffer[] = [];
  private running = 0;
  private readonly concurrency: number;
  private readonly window: number;

  constructor(
    private readonly load: (id: Buffer) => Promise<Tree>,
    opts: TreePrefetchOptions = {},
  ) {
    this.concurrency = opts.concurrency ?? 16;
    this.window = opts.window ?? 512;
  }

  /** Tree `id`, loaded ahead or now; its subdirectories start loading. */
  get(id: Buffer): Promise<Tree> {
    const hex = id.toString('hex');
    const p = this.ahead.get(hex);
    if (p) {
      this.ahead.delete(hex);
      this.pump();
      return p;
    }
    // Not started yet: it is near the top of the stack (the walk goes in its order); load it
    // now, and not once more from there (a load nobody takes would hold a place in the window).
    for (let i = this.stack.length - 1; i >= Math.max(0, this.stack.length - 64); i--) {
      if (this.stack[i]!.equals(id)) {
        this.stack.splice(i, 1);
        break;
      }
    }
    return this.track(this.load(id));
  }

  private track(p: Promise<Tree>): Promise<Tree> {
    return p.then((tree) => {
      const subs = tree.nodes.filter((n) => n.type === 'dir' && n.subtree).map((n) => n.subtree!);
      // The stack is bounded too: what does not fit is loaded when the walk gets there.
      for (let i = subs.length - 1; i >= 0 && this.stack.length < this.window * 4; i--) this.stack.push(subs[i]!);
      this.pump();
      return tree;
    });
  }

  private pump(): void {
    while (this.running < this.concurrency && this.ahead.size < this.window && this.stack.length) {
      const id = this.stack.pop()!;
      const hex = id.toString('hex');
      if (this.ahead.has(hex)) continue;
      this.running++;
      const p = this.track(this.load(id)).finally(() => {
        this.running--;
        this.pump();
      });
      p.catch(() => {}); // the walk sees the error when it gets there
      this.ahead.set(hex, p);
    }
  }
}

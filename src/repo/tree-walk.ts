// Walking many trees at once: the directories waiting to be read are loaded in batches
// through Repository.loadTrees (by pack, neighbours in one ranged read), so a walk over
// S3 costs a few round trips per level rather than one per directory.
import type { Tree } from '../format/tree.js';

/** What the walk needs of the repository (the Repository facade is one). */
export interface TreesSource {
  loadTrees(ids: Buffer[]): Promise<Array<Tree | Error>>;
}

/** A directory to read: its tree id and whatever the caller keeps with it (its path). */
export interface WalkItem<T> {
  id: Buffer;
  at: T;
}

/** Trees asked for in one batch. */
const BATCH = 512;

/**
 * Loads `roots`, hands each tree (or the error loading it) to `visit`, and goes on with the
 * directories `visit` returns, batch after batch, until none is left. Visiting order is
 * level by level, not depth first: callers that print sort what they found.
 */
export async function walkTrees<T>(repo: TreesSource, roots: Array<WalkItem<T>>, visit: (item: WalkItem<T>, tree: Tree | Error) => Array<WalkItem<T>> | void): Promise<void> {
  let queue = roots;
  while (queue.length) {
    const batch = queue.slice(0, BATCH);
    queue = queue.slice(BATCH);
    const trees = await repo.loadTrees(batch.map((b) => b.id));
    const next: Array<WalkItem<T>> = [];
    batch.forEach((item, i) => {
      const more = visit(item, trees[i]!);
      if (more) for (const m of more) next.push(m);
    });
    // Children go first: the walk stays near the trees just read (their pack spans are still kept).
    queue = next.concat(queue);
  }
}

/** Runs fn over items with at most `limit` at a time; the first error wins (the rest stop being started). */
export async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let err: unknown = null;
  const run = async () => {
    while (next < items.length && !err) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        err ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  if (err) throw err;
}

// A gate for tests that must signal a client while a given request is in flight: armed
// with a request kind (and a key prefix), the server holds matching requests unanswered
// until the gate is opened, and tells a waiting test as soon as one is held. The test then
// acts on an event, not on a poll or a timer.
//   POST /__dev/gate?kind=UploadPart[&prefix=repo/packs/][&after=PutObject:repo/locks/][&limit=N]
//        arms it; with `after`, it holds nothing until a request of that kind and key
//        prefix has been answered (so what that request wrote exists); with `limit`, it
//        holds the first N matching requests only (others, e.g. another client's, pass).
//   GET  /__dev/gate/held   answers once a request is held: { kind, key }.
//   POST /__dev/gate/open   lets every held request go on and disarms the gate.

export function createGate() {
  let armed = null; // { kind, prefix, after: { kind, prefix } | null, afterSeen }
  let held = []; // { kind, key, release }
  let heldWaiters = [];

  const matches = (want, kind, key) => want.kind === kind && key.startsWith(want.prefix);

  function parseArm(q) {
    const kind = q.get('kind');
    if (!kind || !/^[A-Za-z0-9]+$/.test(kind)) throw new RangeError('kind must name a request kind, such as UploadPart');
    let after = null;
    const a = q.get('after');
    if (a !== null) {
      const i = a.indexOf(':');
      if (i <= 0) throw new RangeError('after must be KIND:PREFIX');
      after = { kind: a.slice(0, i), prefix: a.slice(i + 1) };
    }
    const limit = q.get('limit') === null ? Infinity : Number(q.get('limit'));
    if (!(limit >= 1)) throw new RangeError('limit must be a number >= 1');
    return { kind, prefix: q.get('prefix') ?? '', after, afterSeen: false, limit, taken: 0 };
  }

  function open() {
    const go = held;
    held = [];
    armed = null;
    for (const h of go) h.release();
    return go.length;
  }

  return {
    /**
     * Called for every S3 request with its kind and `bucket/key`; resolves when it may be
     * handled. `res` tells when an `after` request has been answered.
     */
    pass(kind, key, res) {
      const g = armed;
      if (!g) return Promise.resolve();
      if (g.after && !g.afterSeen) {
        if (matches(g.after, kind, key)) res.on('finish', () => (g.afterSeen = true));
        return Promise.resolve();
      }
      if (!matches(g, kind, key) || g.taken >= g.limit) return Promise.resolve();
      g.taken++;
      return new Promise((release) => {
        held.push({ kind, key, release });
        const w = heldWaiters;
        heldWaiters = [];
        for (const r of w) r({ kind, key });
      });
    },

    /** Answers a /__dev/gate route (true), or returns false when the path is not one. */
    async route(req, url, json) {
      if (req.method === 'POST' && url.pathname === '/__dev/gate') {
        open();
        armed = parseArm(url.searchParams);
        json(200, { armed: { kind: armed.kind, prefix: armed.prefix, after: armed.after } });
        return true;
      }
      if (req.method === 'GET' && url.pathname === '/__dev/gate/held') {
        const first = held[0];
        const got = first ? { kind: first.kind, key: first.key } : await new Promise((r) => heldWaiters.push(r));
        json(200, got);
        return true;
      }
      if (req.method === 'POST' && url.pathname === '/__dev/gate/open') {
        json(200, { released: open() });
        return true;
      }
      return false;
    },

    /** Lets everything go (the server is stopping). */
    close: open,
  };
}

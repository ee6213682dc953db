// S3 Object Lock for the dev server (scripts/s3-dev-server-lib.mjs calls these hooks), as the
// AWS documentation describes it:
//
//  - a bucket created with `x-amz-bucket-object-lock-enabled: true` has Object Lock (and, on
//    AWS, versioning); GET ?object-lock answers its configuration, or 404
//    ObjectLockConfigurationNotFoundError; PUT ?object-lock sets it (with a default retention
//    rule, Days or Years, applied to new objects that name none; a "day" is the server's dayMs);
//  - PutObject, CopyObject and CreateMultipartUpload with x-amz-object-lock-mode (GOVERNANCE |
//    COMPLIANCE) and x-amz-object-lock-retain-until-date: both or neither (400
//    InvalidArgument), a date in the future (400 InvalidArgument), a bucket with Object Lock
//    (400 InvalidRequest), and a checksum header, Content-MD5 or x-amz-checksum-* (400
//    InvalidRequest: AWS requires one on puts with Object Lock parameters);
//  - HEAD and GET show x-amz-object-lock-mode and x-amz-object-lock-retain-until-date;
//  - GET ?retention (GetObjectRetention; 404 NoSuchObjectLockConfiguration when none) and PUT
//    ?retention (PutObjectRetention): a COMPLIANCE retention can be extended but never
//    shortened nor turned into GOVERNANCE before its date; a GOVERNANCE one can be extended or
//    made COMPLIANCE, and shortened or removed only with x-amz-bypass-governance-retention:
//    true (403 AccessDenied otherwise);
//  - DeleteObject and overwrites (PutObject, CopyObject, CompleteMultipartUpload) of a locked
//    object: 403 AccessDenied, unless GOVERNANCE and the bypass header. The retention date is
//    judged by the server's clock, so POST /__dev/advance lets a lock expire.
//
// Where this differs from AWS: the dev server keeps one version per key. On AWS, Object Lock
// turns versioning on, a DELETE without versionId of a locked object adds a delete marker
// (the locked version stays, billed, hidden from listings) and an overwrite adds a version;
// only a DELETE of the locked version itself is refused. Here both are refused with the
// AccessDenied AWS gives for the version, so the locked bytes stay either way. There is no
// IAM: the bypass header alone stands for s3:BypassGovernanceRetention.
//
// State lives in the StateStore's JSON as `objectLock: { buckets: { name: config },
// retention: { "bucket/key": { mode, until } }, pending: { uploadId: retention } }`.

const MODES = new Set(['GOVERNANCE', 'COMPLIANCE']);

/**
 * The hooks. `store` is the StateStore (data, persist()), `now` the server's clock, `dayMs`
 * its day, `sendError(req, res, status, code, message, extra)` its error answer.
 */
export function objectLockHooks({ store, now, dayMs, sendError, drain, readAll, lockConfig }) {
  const state = () => (store.data.objectLock ??= { buckets: {}, retention: {}, pending: {} });
  // With `lockConfig` (the bucket-configuration module owns ?object-lock), a bucket's lock
  // configuration is read from there; else from this module's own state.
  const bucketConfig = (bucket) => (lockConfig ? lockConfig(bucket) : state().buckets[bucket]);
  /** The retention in force (its date after now), or null. */
  const inForce = (id) => {
    const r = state().retention[id];
    return r && r.until > now() ? r : null;
  };
  const bypass = (req) => String(req.headers['x-amz-bypass-governance-retention'] ?? '').toLowerCase() === 'true';
  const xml = (res, body) => {
    const b = `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
    res.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(b) });
    res.end(b);
  };

  /** Refuses (403) what would remove or replace a locked object. True when it answered. */
  async function refuseLocked(req, res, id) {
    const r = inForce(id);
    if (!r || (r.mode === 'GOVERNANCE' && bypass(req))) return false;
    await drain(req);
    sendError(req, res, 403, 'AccessDenied', 'Access Denied because object protected by object lock.');
    return true;
  }

  /** The retention a write asks for (headers, else the bucket's default), an error to answer, or null. */
  function requested(req, bucket) {
    const mode = req.headers['x-amz-object-lock-mode'];
    const date = req.headers['x-amz-object-lock-retain-until-date'];
    const cfg = bucketConfig(bucket);
    if (mode === undefined && date === undefined) {
      const d = cfg?.rule;
      return d ? { retention: { mode: d.mode, until: now() + (d.days ?? (d.years ?? 0) * 365) * dayMs } } : { retention: null };
    }
    if (mode === undefined || date === undefined) return { error: [400, 'InvalidArgument', 'x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied'] };
    if (!MODES.has(String(mode))) return { error: [400, 'InvalidArgument', 'Unknown wormMode directive.'] };
    const until = Date.parse(String(date));
    if (!Number.isFinite(until)) return { error: [400, 'InvalidArgument', 'The retain until date must be a valid ISO 8601 date'] };
    if (until <= now()) return { error: [400, 'InvalidArgument', 'The retain until date must be in the future!'] };
    if (!cfg) return { error: [400, 'InvalidRequest', 'Bucket is missing Object Lock Configuration'] };
    const h = req.headers;
    const checksum = h['content-md5'] !== undefined || h['x-amz-sdk-checksum-algorithm'] !== undefined || Object.keys(h).some((k) => k.startsWith('x-amz-checksum-')) || /x-amz-checksum-/.test(String(h['x-amz-trailer'] ?? ''));
    if (!checksum) return { error: [400, 'InvalidRequest', 'Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters'] };
    return { retention: { mode: String(mode), until } };
  }

  return {
    /**
     * Called before the proxy's own handling. Answers the Object Lock requests, refuses what a
     * lock forbids; returns { done: true } when it answered, else { retention } for a write
     * (to record with `written` once it succeeded). `h` are the headers to forward: the lock
     * headers are dropped from them (s3rver knows nothing of them).
     */
    async before({ kind, req, res, bucket, key, id, q, h }) {
      for (const k of ['x-amz-object-lock-mode', 'x-amz-object-lock-retain-until-date', 'x-amz-object-lock-legal-hold', 'x-amz-bucket-object-lock-enabled', 'x-amz-bypass-governance-retention']) delete h[k];
      if (!key && q.has('object-lock') && (req.method === 'GET' || req.method === 'PUT')) {
        if (req.method === 'GET') {
          await drain(req);
          const cfg = bucketConfig(bucket);
          if (!cfg) return sendError(req, res, 404, 'ObjectLockConfigurationNotFoundError', 'Object Lock configuration does not exist for this bucket', { BucketName: bucket }), { done: true };
          const rule = cfg.rule ? `<Rule><DefaultRetention><Mode>${cfg.rule.mode}</Mode>${cfg.rule.days !== undefined ? `<Days>${cfg.rule.days}</Days>` : `<Years>${cfg.rule.years}</Years>`}</DefaultRetention></Rule>` : '';
          xml(res, `<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled>${rule}</ObjectLockConfiguration>`);
          return { done: true };
        }
        const body = (await readAll(req)).toString('utf8');
        if (!/<ObjectLockEnabled>\s*Enabled\s*<\/ObjectLockEnabled>/.test(body)) return sendError(req, res, 400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema'), { done: true };
        const mode = /<DefaultRetention>[\s\S]*?<Mode>\s*([A-Z]+)\s*<\/Mode>/.exec(body)?.[1];
        const days = /<DefaultRetention>[\s\S]*?<Days>\s*(\d+)\s*<\/Days>/.exec(body)?.[1];
        const years = /<DefaultRetention>[\s\S]*?<Years>\s*(\d+)\s*<\/Years>/.exec(body)?.[1];
        let rule;
        if (/<DefaultRetention>/.test(body)) {
          if (!MODES.has(mode) || (days === undefined) === (years === undefined) || Number(days ?? years) < 1) return sendError(req, res, 400, 'MalformedXML', 'DefaultRetention needs a Mode and one of Days or Years (>= 1)'), { done: true };
          rule = days !== undefined ? { mode, days: Number(days) } : { mode, years: Number(years) };
        }
        state().buckets[bucket] = rule ? { rule } : {};
        await store.persist();
        res.writeHead(200, { 'content-length': 0 });
        res.end();
        return { done: true };
      }
      if (key && q.has('retention') && (req.method === 'GET' || req.method === 'PUT')) return { done: await retention(req, res, bucket, id) };
      switch (kind) {
        case 'CreateBucket':
          return { lockBucket: String(req.headers['x-amz-bucket-object-lock-enabled'] ?? '').toLowerCase() === 'true' };
        case 'DeleteObject':
          return { done: await refuseLocked(req, res, id) };
        case 'PutObject':
        case 'CopyObject':
        case 'CreateMultipartUpload': {
          const r = requested(req, bucket);
          if (r.error) {
            await drain(req);
            sendError(req, res, ...r.error);
            return { done: true };
          }
          // If-None-Match is judged first (412), as on AWS; the proxy does that after us.
          if (kind !== 'CreateMultipartUpload' && req.headers['if-none-match'] === undefined && (await refuseLocked(req, res, id))) return { done: true };
          return { retention: r.retention };
        }
        case 'CompleteMultipartUpload':
          if (req.headers['if-none-match'] === undefined && (await refuseLocked(req, res, id))) return { done: true };
          return { retention: state().pending[q.get('uploadId') ?? ''] ?? null };
        default:
          return {};
      }
    },

    /** After a write succeeded: the object's retention (or none), or the bucket's lock. */
    async written({ kind, bucket, id, q, before, uploadId }) {
      const s = state();
      if (kind === 'CreateBucket') {
        if (before.lockBucket) s.buckets[bucket] = {};
        else return;
      } else if (kind === 'CreateMultipartUpload') {
        if (!before.retention || !uploadId) return;
        s.pending[uploadId] = before.retention;
      } else {
        if (kind === 'CompleteMultipartUpload') delete s.pending[q.get('uploadId') ?? ''];
        if (before.retention) s.retention[id] = before.retention;
        else delete s.retention[id];
      }
      await store.persist();
    },

    /** After a delete succeeded, or a bucket went away. */
    async removed({ id, bucket }) {
      const s = state();
      if (bucket !== undefined) {
        delete s.buckets[bucket];
        for (const k of Object.keys(s.retention)) if (k.startsWith(`${bucket}/`)) delete s.retention[k];
      } else delete s.retention[id];
      await store.persist();
    },

    /** Headers HEAD and GET add. */
    headers(id) {
      const r = state().retention[id];
      return r ? { 'x-amz-object-lock-mode': r.mode, 'x-amz-object-lock-retain-until-date': new Date(r.until).toISOString() } : {};
    },

    /** GET /__dev/object-lock: buckets and retentions, dates in ISO. */
    dump() {
      const s = state();
      return {
        now: new Date(now()).toISOString(),
        buckets: s.buckets,
        retention: Object.fromEntries(Object.entries(s.retention).map(([k, r]) => [k, { mode: r.mode, until: new Date(r.until).toISOString(), in_force: r.until > now() }])),
      };
    },
  };

  async function retention(req, res, bucket, id) {
    if (!bucketConfig(bucket)) {
      await drain(req);
      sendError(req, res, 400, 'InvalidRequest', 'Bucket is missing Object Lock Configuration');
      return true;
    }
    if (store.created(id) === undefined) {
      await drain(req);
      sendError(req, res, 404, 'NoSuchKey', 'The specified key does not exist.', { Key: id.slice(bucket.length + 1) });
      return true;
    }
    const cur = state().retention[id];
    if (req.method === 'GET') {
      await drain(req);
      if (!cur) {
        sendError(req, res, 404, 'NoSuchObjectLockConfiguration', 'The specified object does not have a ObjectLock configuration');
        return true;
      }
      xml(res, `<Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Mode>${cur.mode}</Mode><RetainUntilDate>${new Date(cur.until).toISOString()}</RetainUntilDate></Retention>`);
      return true;
    }
    const body = (await readAll(req)).toString('utf8');
    const mode = /<Mode>\s*([A-Z]*)\s*<\/Mode>/.exec(body)?.[1];
    const dateText = /<RetainUntilDate>\s*([^<]*?)\s*<\/RetainUntilDate>/.exec(body)?.[1];
    const remove = !mode && !dateText;
    const until = dateText ? Date.parse(dateText) : NaN;
    if (!remove && (!MODES.has(mode) || !Number.isFinite(until))) {
      sendError(req, res, 400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema');
      return true;
    }
    if (!remove && until <= now()) {
      sendError(req, res, 400, 'InvalidArgument', 'The retain until date must be in the future!');
      return true;
    }
    const live = cur && cur.until > now() ? cur : null;
    if (live) {
      const weaker = remove || until < live.until || (live.mode === 'COMPLIANCE' && mode !== 'COMPLIANCE');
      if (weaker && !(live.mode === 'GOVERNANCE' && bypass(req))) {
        sendError(req, res, 403, 'AccessDenied', 'Access Denied because object protected by object lock.');
        return true;
      }
    }
    if (remove) delete state().retention[id];
    else state().retention[id] = { mode, until };
    await store.persist();
    res.writeHead(200, { 'content-length': 0 });
    res.end();
    return true;
  }
}

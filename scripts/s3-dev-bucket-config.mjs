// Bucket configuration APIs for the S3 dev server (s3rver has none of them), as AWS answers
// them, for `tsbak s3 check` and its tests:
//
//   ?publicAccessBlock  GET/PUT/DELETE   404 NoSuchPublicAccessBlockConfiguration when unset
//   ?policy             GET/PUT/DELETE   JSON; 404 NoSuchBucketPolicy when unset
//   ?policyStatus       GET              computed from the policy: public when an Allow
//                                        statement without a Condition names Principal "*"
//   ?acl                GET/PUT          AccessControlPolicy XML or a canned x-amz-acl
//   ?ownershipControls  GET/PUT/DELETE   404 OwnershipControlsNotFoundError when unset
//   ?encryption         GET/PUT/DELETE   404 ServerSideEncryptionConfigurationNotFoundError
//   ?versioning         GET/PUT          an empty <VersioningConfiguration/> when never set
//   ?object-lock        GET/PUT          404 ObjectLockConfigurationNotFoundError when the
//                                        bucket was not created with Object Lock
//   ?lifecycle          GET/PUT/DELETE   404 NoSuchLifecycleConfiguration when unset
//   ?location           GET              the bucket's region (LocationConstraint; empty for us-east-1)
//
// A new bucket starts as AWS makes one since April 2023: Block Public Access all on,
// BucketOwnerEnforced, SSE-S3 (AES256) default encryption; versioning, lifecycle and policy
// unset. CreateBucket with x-amz-bucket-object-lock-enabled: true turns Object Lock (and
// versioning) on, as on AWS. Bodies of PUTs are kept as sent and given back on GET.
//
// Also the two account-level calls the checks make, when the client is pointed here
// (AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL_S3_CONTROL): STS GetCallerIdentity (account
// 123456789012) and S3 Control Get/Put/DeletePublicAccessBlock.
//
// Dev routes (tests): GET /__dev/bucket-config?bucket=B dumps a bucket's configuration;
// POST /__dev/bucket-region?bucket=B&region=R sets its region; POST /__dev/deny?ops=A,B
// makes the server refuse those operations (by the kinds of GET /__dev/stats, e.g.
// DeleteObject,DeleteObjects) with 403 AccessDenied, as S3 does for a credential whose
// policy lacks them, except on keys starting with &except=BUCKET/PREFIX (a backup
// credential's own locks/); POST /__dev/deny?ops= clears it. The server has no policy engine:
// this stands in for one (a backup-mode credential) in tests of how tsbak reports refusals.
//
// State lives in <dir>/bucket-config.json, written before the answer.

import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

const SUBRESOURCES = ['publicAccessBlock', 'policyStatus', 'policy', 'acl', 'ownershipControls', 'encryption', 'versioning', 'object-lock', 'lifecycle', 'location'];
const DEV_ACCOUNT = '123456789012';
const XMLNS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"';

const NOT_FOUND = {
  publicAccessBlock: ['NoSuchPublicAccessBlockConfiguration', 'The public access block configuration was not found'],
  policy: ['NoSuchBucketPolicy', 'The bucket policy does not exist'],
  policyStatus: ['NoSuchBucketPolicy', 'The bucket policy does not exist'],
  ownershipControls: ['OwnershipControlsNotFoundError', 'The bucket ownership controls were not found'],
  encryption: ['ServerSideEncryptionConfigurationNotFoundError', 'The server side encryption configuration was not found'],
  'object-lock': ['ObjectLockConfigurationNotFoundError', 'Object Lock configuration does not exist for this bucket'],
  lifecycle: ['NoSuchLifecycleConfiguration', 'The lifecycle configuration does not exist'],
};

function newBucketConfig() {
  return {
    publicAccessBlock: `<PublicAccessBlockConfiguration ${XMLNS}><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>`,
    ownershipControls: `<OwnershipControls ${XMLNS}><Rule><ObjectOwnership>BucketOwnerEnforced</ObjectOwnership></Rule></OwnershipControls>`,
    encryption: `<ServerSideEncryptionConfiguration ${XMLNS}><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>false</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>`,
    acl: null,
    policy: null,
    versioning: null,
    'object-lock': null,
    lifecycle: null,
    region: 'us-east-1',
  };
}

const CANNED_GRANTS = {
  private: [],
  'bucket-owner-full-control': [],
  'public-read': [['AllUsers', 'READ']],
  'public-read-write': [['AllUsers', 'READ'], ['AllUsers', 'WRITE']],
  'authenticated-read': [['AuthenticatedUsers', 'READ']],
};

function aclXml(grants) {
  const owner = '<Owner><ID>123456789000</ID><DisplayName>S3rver</DisplayName></Owner>';
  const g = [`<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>123456789000</ID><DisplayName>S3rver</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant>`]
    .concat(grants.map(([group, perm]) => `<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/${group}</URI></Grantee><Permission>${perm}</Permission></Grant>`));
  return `<AccessControlPolicy ${XMLNS}>${owner}<AccessControlList>${g.join('')}</AccessControlList></AccessControlPolicy>`;
}

/** A policy is public (as GetBucketPolicyStatus says) when an Allow statement without a Condition names everyone. */
export function policyIsPublic(policyText) {
  let doc;
  try {
    doc = JSON.parse(policyText);
  } catch {
    return false;
  }
  const stmts = Array.isArray(doc?.Statement) ? doc.Statement : doc?.Statement ? [doc.Statement] : [];
  return stmts.some((s) => {
    if (s?.Effect !== 'Allow' || s.Condition) return false;
    const p = s.Principal;
    const aws = p && typeof p === 'object' ? p.AWS : undefined;
    return p === '*' || aws === '*' || (Array.isArray(aws) && aws.includes('*'));
  });
}

/**
 * Returns { handles(kind, method, bucket, key, q, headers), handle(req, res, ctx), devRoute(req, res, url),
 * isDenied(kind), objectLock(bucket) }. `readAll` reads a request body; `sendError(req, res, status, code, message)`.
 */
export function bucketConfigApi({ dir, readAll, sendError, forward }) {
  const file = path.join(dir, 'bucket-config.json');
  let data = { version: 1, buckets: {}, account: { publicAccessBlock: null }, denied: [], deniedExcept: '' };
  try {
    const loaded = JSON.parse(readFileSync(file, 'utf8'));
    if (loaded?.version === 1) data = { ...data, ...loaded };
  } catch (e) {
    if (e.code !== 'ENOENT') throw new Error(`cannot read ${file}: ${e.message}`);
  }
  let writing = Promise.resolve();
  function persist() {
    const text = JSON.stringify(data);
    writing = writing.then(async () => {
      const tmp = `${file}.tmp-${process.pid}`;
      await fsp.writeFile(tmp, text);
      await fsp.rename(tmp, file);
    });
    return writing;
  }
  const conf = (bucket) => (data.buckets[bucket] ??= newBucketConfig());

  function sendXml(res, status, xml) {
    const body = xml ? `<?xml version="1.0" encoding="UTF-8"?>\n${xml.replace(/^<\?xml[^>]*\?>\s*/, '')}` : '';
    res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), 'x-amz-request-id': randomBytes(8).toString('hex').toUpperCase() });
    res.end(body);
  }

  /** Does the bucket exist upstream (s3rver)? Answers 404 NoSuchBucket itself when not. */
  async function bucketExists(req, res, bucket) {
    const up = await forward('HEAD', `/${encodeURIComponent(bucket)}`, { authorization: req.headers.authorization ?? '', 'x-amz-date': req.headers['x-amz-date'] ?? '', 'x-amz-content-sha256': req.headers['x-amz-content-sha256'] ?? '' });
    up.resume();
    if (up.statusCode === 404) {
      sendError(req, res, 404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });
      return false;
    }
    return true;
  }

  /** PutObjectAcl: refused under BucketOwnerEnforced (as AWS does), else NoSuchKey or accepted (and not kept). */
  async function objectAcl(req, res, bucket, key) {
    await readAll(req);
    if (!(await bucketExists(req, res, bucket))) return;
    if (/BucketOwnerEnforced/.test(conf(bucket).ownershipControls ?? '')) return sendError(req, res, 400, 'AccessControlListNotSupported', 'The bucket does not allow ACLs');
    const up = await forward('HEAD', `/${encodeURIComponent(bucket)}/${key.split('/').map(encodeURIComponent).join('/')}`, { authorization: req.headers.authorization ?? '' });
    up.resume();
    if (up.statusCode === 404) return sendError(req, res, 404, 'NoSuchKey', 'The specified key does not exist.', { Key: key });
    res.writeHead(200, { 'content-length': 0 });
    return res.end();
  }

  return {
    handles(kind, method, bucket, key, q) {
      if (kind === 'PutObjectAcl') return 'objectAcl';
      if (!bucket || key) return null;
      if (method === 'PUT' && !q.size) return 'CreateBucket';
      const sub = SUBRESOURCES.find((s) => q.has(s));
      if (!sub || !['GET', 'PUT', 'DELETE'].includes(method)) return null;
      return sub;
    },

    isDenied: (kind, bucket, key) => data.denied.includes(kind) && !(data.deniedExcept && `${bucket}/${key}`.startsWith(data.deniedExcept)),

    /** The bucket's Object Lock configuration XML, or null (for the Object Lock part of the server). */
    objectLock: (bucket) => data.buckets[bucket]?.['object-lock'] ?? null,

    /** A CreateBucket went through upstream: a new configuration, with Object Lock when asked. */
    async created(bucket, headers) {
      const c = (data.buckets[bucket] = newBucketConfig());
      if (String(headers['x-amz-bucket-object-lock-enabled'] ?? '').toLowerCase() === 'true') {
        c['object-lock'] = `<ObjectLockConfiguration ${XMLNS}><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>`;
        c.versioning = `<VersioningConfiguration ${XMLNS}><Status>Enabled</Status></VersioningConfiguration>`;
      }
      await persist();
    },

    async dropped(bucket) {
      delete data.buckets[bucket];
      await persist();
    },

    async handle(req, res, bucket, sub, key) {
      if (sub === 'objectAcl') return objectAcl(req, res, bucket, key);
      const method = req.method;
      const body = method === 'PUT' ? (await readAll(req)).toString('utf8') : '';
      if (method !== 'PUT') await readAll(req);
      if (!(await bucketExists(req, res, bucket))) return;
      const c = conf(bucket);
      if (method === 'GET') {
        if (sub === 'location') return sendXml(res, 200, `<LocationConstraint ${XMLNS}>${c.region === 'us-east-1' ? '' : c.region}</LocationConstraint>`);
        if (sub === 'acl') return sendXml(res, 200, c.acl ?? aclXml([]));
        if (sub === 'versioning') return sendXml(res, 200, c.versioning ?? `<VersioningConfiguration ${XMLNS}/>`);
        if (sub === 'policyStatus') {
          if (!c.policy) return sendError(req, res, 404, ...NOT_FOUND.policyStatus);
          return sendXml(res, 200, `<PolicyStatus ${XMLNS}><IsPublic>${policyIsPublic(c.policy)}</IsPublic></PolicyStatus>`);
        }
        const v = c[sub];
        if (v === null || v === undefined) return sendError(req, res, 404, ...NOT_FOUND[sub]);
        if (sub === 'policy') {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(v) });
          return res.end(v);
        }
        return sendXml(res, 200, v);
      }
      if (method === 'PUT') {
        if (sub === 'location' || sub === 'policyStatus') return sendError(req, res, 405, 'MethodNotAllowed', 'The specified method is not allowed against this resource');
        if (sub === 'policy') {
          try {
            JSON.parse(body);
          } catch {
            return sendError(req, res, 400, 'MalformedPolicy', 'Policies must be valid JSON');
          }
          const pab = /<BlockPublicPolicy>true</.test(c.publicAccessBlock ?? '');
          if (pab && policyIsPublic(body)) return sendError(req, res, 403, 'AccessDenied', 'Access Denied (BlockPublicPolicy is on)');
        }
        if (sub === 'object-lock' && !c['object-lock']) {
          return sendError(req, res, 409, 'InvalidBucketState', 'Object Lock configuration cannot be enabled on existing buckets');
        }
        if (sub === 'acl') {
          const canned = req.headers['x-amz-acl'];
          if (canned !== undefined) {
            if (!(canned in CANNED_GRANTS)) return sendError(req, res, 400, 'InvalidArgument', `unknown canned ACL ${canned}`);
            if (CANNED_GRANTS[canned].length && /<BlockPublicAcls>true</.test(c.publicAccessBlock ?? '')) return sendError(req, res, 403, 'AccessDenied', 'Access Denied (BlockPublicAcls is on)');
            c.acl = aclXml(CANNED_GRANTS[canned]);
          } else c.acl = body;
          if (/BucketOwnerEnforced/.test(c.ownershipControls ?? '') && c.acl !== aclXml([])) {
            c.acl = null;
            return sendError(req, res, 400, 'AccessControlListNotSupported', 'The bucket does not allow ACLs');
          }
        } else c[sub] = body;
        await persist();
        res.writeHead(200, { 'content-length': 0 });
        return res.end();
      }
      // DELETE
      if (!(sub in NOT_FOUND) || sub === 'object-lock' || sub === 'policyStatus') return sendError(req, res, 405, 'MethodNotAllowed', 'The specified method is not allowed against this resource');
      c[sub] = null;
      await persist();
      res.writeHead(204, {});
      return res.end();
    },

    /** STS and S3 Control, answered when a request is theirs. Returns true when it answered. */
    async account(req, res, url) {
      if (req.method === 'POST' && url.pathname === '/' && !url.search) {
        const body = (await readAll(req)).toString('utf8');
        if (!/Action=GetCallerIdentity/.test(body)) return sendError(req, res, 400, 'InvalidAction', 'only GetCallerIdentity is served'), true;
        sendXml(res, 200, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::${DEV_ACCOUNT}:user/dev</Arn><UserId>AIDADEV</UserId><Account>${DEV_ACCOUNT}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>${randomBytes(8).toString('hex')}</RequestId></ResponseMetadata></GetCallerIdentityResponse>`);
        return true;
      }
      if (url.pathname !== '/v20180820/configuration/publicAccessBlock') return false;
      const body = (await readAll(req)).toString('utf8');
      if (String(req.headers['x-amz-account-id'] ?? '') !== DEV_ACCOUNT) return sendError(req, res, 403, 'AccessDenied', 'Access Denied'), true;
      if (req.method === 'GET') {
        if (!data.account.publicAccessBlock) return sendError(req, res, 404, 'NoSuchPublicAccessBlockConfiguration', 'The public access block configuration was not found'), true;
        sendXml(res, 200, data.account.publicAccessBlock.replace('<PublicAccessBlockConfiguration', '<GetPublicAccessBlockOutput><PublicAccessBlockConfiguration').concat('</GetPublicAccessBlockOutput>'));
        return true;
      }
      if (req.method === 'PUT') data.account.publicAccessBlock = body;
      else if (req.method === 'DELETE') data.account.publicAccessBlock = null;
      else return sendError(req, res, 405, 'MethodNotAllowed', 'The specified method is not allowed against this resource'), true;
      await persist();
      res.writeHead(req.method === 'PUT' ? 200 : 204, { 'content-length': 0 });
      res.end();
      return true;
    },

    /** /__dev/ routes of this module; false when the route is not one of them. */
    async devRoute(req, res, url, json) {
      const bucket = url.searchParams.get('bucket');
      if (req.method === 'GET' && url.pathname === '/__dev/bucket-config') {
        if (!bucket) return json(400, { error: 'bucket= is required' }), true;
        return json(200, data.buckets[bucket] ?? newBucketConfig()), true;
      }
      if (req.method === 'POST' && url.pathname === '/__dev/bucket-region') {
        const region = url.searchParams.get('region');
        if (!bucket || !region || !/^[a-z0-9-]+$/.test(region)) return json(400, { error: 'bucket= and region= are required' }), true;
        conf(bucket).region = region;
        await persist();
        return json(200, { bucket, region }), true;
      }
      if (req.method === 'POST' && url.pathname === '/__dev/deny') {
        data.denied = (url.searchParams.get('ops') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
        data.deniedExcept = url.searchParams.get('except') ?? '';
        await persist();
        return json(200, { denied: data.denied, except: data.deniedExcept }), true;
      }
      return false;
    },
  };
}

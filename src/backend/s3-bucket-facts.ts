// What an S3 bucket's configuration says, read with the credentials in use, for `tsbak s3
// check` and init: public access settings (bucket and account), policy and its status, ACL,
// object ownership, default encryption, versioning and Object Lock, lifecycle rules, the
// region, and harmless probes of what the credentials may do. No judgement here (that is
// repo/bucket-checks.ts): every read is its value or why it could not be read.

import {
  S3Client,
  GetPublicAccessBlockCommand,
  GetBucketPolicyStatusCommand,
  GetBucketPolicyCommand,
  GetBucketAclCommand,
  GetBucketOwnershipControlsCommand,
  GetBucketEncryptionCommand,
  GetBucketVersioningCommand,
  GetObjectLockConfigurationCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketLocationCommand,
  ListObjectsV2Command,
  DeleteObjectCommand,
  PutObjectAclCommand,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { accountPublicAccessBlock, type PublicAccessBlock } from './aws-account.js';

export type { PublicAccessBlock } from './aws-account.js';

/** A value read, or why not: `denied` when S3 refused the credentials (AccessDenied). */
export type Read<T> = { ok: true; value: T } | { ok: false; denied: boolean; error: string };

export interface Grant {
  grantee: string;
  permission: string;
}

export interface LifecycleRule {
  id: string;
  enabled: boolean;
  /** The key prefix the rule applies to ('' for every object). */
  prefix: string;
  /** True when the rule also filters by tags (tsbak tags no object, so it applies to none of ours). */
  tagged: boolean;
  /** True when the rule also filters by object size. */
  sized: boolean;
  transitions: { storageClass: string; days: number | null }[];
  expirationDays: number | null;
  expirationDate: string | null;
  expiredObjectDeleteMarker: boolean;
  noncurrentExpirationDays: number | null;
  abortMultipartDays: number | null;
}

export interface ObjectLockFacts {
  enabled: boolean;
  mode: string | null;
  days: number | null;
  years: number | null;
}

export type ProbeResult = 'allowed' | 'denied' | 'skipped' | 'error';

export interface Probe {
  result: ProbeResult;
  detail: string;
}

export interface BucketFacts {
  bucket: string;
  prefix: string;
  endpoint: string | null;
  /** The region requests are signed for (option, environment, else us-east-1). */
  clientRegion: string;
  region: Read<string>;
  publicAccessBlock: Read<PublicAccessBlock | null>;
  accountPublicAccessBlock: Read<{ account: string; block: PublicAccessBlock | null }>;
  policy: Read<string | null>;
  policyPublic: Read<boolean | null>;
  acl: Read<Grant[]>;
  ownership: Read<string | null>;
  encryption: Read<{ algorithm: string; kmsKey: string | null }[] | null>;
  versioning: Read<{ status: string | null; mfaDelete: string | null }>;
  objectLock: Read<ObjectLockFacts | null>;
  lifecycle: Read<LifecycleRule[] | null>;
  probes: { list: Probe; delete: Probe; putAcl: Probe } | null;
}

export interface BucketFactsOptions {
  bucket: string;
  prefix: string;
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  profile?: string;
  /** Try what the credentials may do (list, delete and ACL change of a name that does not exist). */
  probes?: boolean;
  /** Read the account's Block Public Access (STS GetCallerIdentity, then S3 Control). */
  account?: boolean;
}

const NOT_SET = new Set([
  'NoSuchPublicAccessBlockConfiguration',
  'NoSuchBucketPolicy',
  'OwnershipControlsNotFoundError',
  'ServerSideEncryptionConfigurationNotFoundError',
  'ObjectLockConfigurationNotFoundError',
  'NoSuchLifecycleConfiguration',
]);

function errName(e: any): string {
  return String(e?.Code ?? e?.name ?? 'Error');
}

function isDenied(e: any): boolean {
  const n = errName(e);
  return n === 'AccessDenied' || n === 'AllAccessDisabled' || e?.$metadata?.httpStatusCode === 403;
}

function describe(e: any): string {
  const status = e?.$metadata?.httpStatusCode;
  return `${errName(e)}${status ? ` (HTTP ${status})` : ''}: ${String(e?.message ?? e).replace(/\s+/g, ' ').trim()}`;
}

/** fn's value; null when S3 says the setting is not there; the error otherwise. */
async function read<T>(fn: () => Promise<T>, notSetValue: T): Promise<Read<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    if (NOT_SET.has(errName(e)) || (errName(e) === 'NotFound' && e && (e as any).$metadata?.httpStatusCode === 404 && notSetValue === null)) return { ok: true, value: notSetValue };
    if (errName(e) === 'NoSuchBucket') throw e;
    return { ok: false, denied: isDenied(e), error: describe(e) };
  }
}

function clientConfig(o: BucketFactsOptions, region: string): S3ClientConfig {
  const custom = o.endpoint ?? (process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL);
  return {
    region,
    maxAttempts: 2,
    followRegionRedirects: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    ...(o.forcePathStyle !== undefined ? { forcePathStyle: o.forcePathStyle } : custom ? { forcePathStyle: true } : {}),
    ...(o.profile ? { profile: o.profile } : {}),
  };
}

async function resolveRegion(o: BucketFactsOptions): Promise<string> {
  if (o.region) return o.region;
  const probe = new S3Client(clientConfig(o, undefined as unknown as string));
  try {
    const r = await probe.config.region();
    if (r) return r;
  } catch {
    // no region in the environment or the profile
  } finally {
    probe.destroy();
  }
  return 'us-east-1';
}

export async function readBucketFacts(o: BucketFactsOptions): Promise<BucketFacts> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const clientRegion = await resolveRegion(o);
  const client = new S3Client(clientConfig(o, clientRegion));
  const Bucket = o.bucket;
  const endpoint = o.endpoint ?? (process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || null);
  try {
    const [region, publicAccessBlock, policy, policyPublic, acl, ownership, encryption, versioning, objectLock, lifecycle] = await Promise.all([
      read(async () => {
        const r = await client.send(new GetBucketLocationCommand({ Bucket }));
        return r.LocationConstraint ? String(r.LocationConstraint) === 'EU' ? 'eu-west-1' : String(r.LocationConstraint) : 'us-east-1';
      }, ''),
      read(async () => {
        const c = (await client.send(new GetPublicAccessBlockCommand({ Bucket }))).PublicAccessBlockConfiguration ?? {};
        return { blockPublicAcls: !!c.BlockPublicAcls, ignorePublicAcls: !!c.IgnorePublicAcls, blockPublicPolicy: !!c.BlockPublicPolicy, restrictPublicBuckets: !!c.RestrictPublicBuckets };
      }, null as PublicAccessBlock | null),
      read(async () => (await client.send(new GetBucketPolicyCommand({ Bucket }))).Policy ?? null, null as string | null),
      read(async () => !!(await client.send(new GetBucketPolicyStatusCommand({ Bucket }))).PolicyStatus?.IsPublic, null as boolean | null),
      read(async () => {
        const r = await client.send(new GetBucketAclCommand({ Bucket }));
        return (r.Grants ?? []).map((g) => ({ grantee: g.Grantee?.URI ?? g.Grantee?.ID ?? g.Grantee?.EmailAddress ?? '?', permission: String(g.Permission ?? '?') }));
      }, [] as Grant[]),
      read(async () => (await client.send(new GetBucketOwnershipControlsCommand({ Bucket }))).OwnershipControls?.Rules?.[0]?.ObjectOwnership ?? null, null as string | null),
      read(async () => {
        const rules = (await client.send(new GetBucketEncryptionCommand({ Bucket }))).ServerSideEncryptionConfiguration?.Rules ?? [];
        return rules.map((r) => ({ algorithm: String(r.ApplyServerSideEncryptionByDefault?.SSEAlgorithm ?? '?'), kmsKey: r.ApplyServerSideEncryptionByDefault?.KMSMasterKeyID ?? null }));
      }, null as { algorithm: string; kmsKey: string | null }[] | null),
      read(async () => {
        const r = await client.send(new GetBucketVersioningCommand({ Bucket }));
        return { status: r.Status ?? null, mfaDelete: r.MFADelete ?? null };
      }, { status: null, mfaDelete: null }),
      read(async () => {
        const c = (await client.send(new GetObjectLockConfigurationCommand({ Bucket }))).ObjectLockConfiguration;
        if (!c) return null;
        const d = c.Rule?.DefaultRetention;
        return { enabled: c.ObjectLockEnabled === 'Enabled', mode: d?.Mode ?? null, days: d?.Days ?? null, years: d?.Years ?? null };
      }, null as ObjectLockFacts | null),
      read(async () => {
        const rules = (await client.send(new GetBucketLifecycleConfigurationCommand({ Bucket }))).Rules ?? [];
        return rules.map((r): LifecycleRule => {
          const f = r.Filter;
          const prefix = f?.Prefix ?? f?.And?.Prefix ?? (r as { Prefix?: string }).Prefix ?? '';
          return {
            id: r.ID ?? '',
            enabled: r.Status === 'Enabled',
            prefix,
            tagged: !!(f?.Tag || f?.And?.Tags?.length),
            sized: !!(f?.ObjectSizeGreaterThan || f?.ObjectSizeLessThan || f?.And?.ObjectSizeGreaterThan || f?.And?.ObjectSizeLessThan),
            transitions: (r.Transitions ?? []).map((t) => ({ storageClass: String(t.StorageClass ?? '?'), days: t.Days ?? null })),
            expirationDays: r.Expiration?.Days ?? null,
            expirationDate: r.Expiration?.Date ? new Date(r.Expiration.Date).toISOString() : null,
            expiredObjectDeleteMarker: !!r.Expiration?.ExpiredObjectDeleteMarker,
            noncurrentExpirationDays: r.NoncurrentVersionExpiration?.NoncurrentDays ?? null,
            abortMultipartDays: r.AbortIncompleteMultipartUpload?.DaysAfterInitiation ?? null,
          };
        });
      }, null as LifecycleRule[] | null),
    ]);
    const accountPab: Read<{ account: string; block: PublicAccessBlock | null }> = o.account === false
      ? { ok: false, denied: false, error: 'not read' }
      : await accountPublicAccessBlock({ credentials: () => client.config.credentials(), region: clientRegion, s3Endpoint: endpoint });
    const probes = o.probes ? await runProbes(client, Bucket, o.prefix, versioning.ok ? versioning.value.status : null) : null;
    return { bucket: Bucket, prefix: o.prefix, endpoint, clientRegion, region, publicAccessBlock, accountPublicAccessBlock: accountPab, policy, policyPublic, acl, ownership, encryption, versioning, objectLock, lifecycle, probes };
  } finally {
    client.destroy();
  }
}

/**
 * Harmless probes on a name that never exists (random, under the prefix): ListObjectsV2 of
 * one key; DeleteObject (on a versioned bucket that would leave a delete marker, so it is
 * skipped there); PutObjectAcl (a missing key answers NoSuchKey once the request was allowed).
 */
async function runProbes(client: S3Client, Bucket: string, prefix: string, versioning: string | null): Promise<{ list: Probe; delete: Probe; putAcl: Probe }> {
  const Key = `${prefix}tsbak-probe-${randomBytes(16).toString('hex')}`;
  const outcome = async (fn: () => Promise<unknown>, allowedErrors: string[]): Promise<Probe> => {
    try {
      await fn();
      return { result: 'allowed', detail: 'allowed' };
    } catch (e) {
      if (errName(e) === 'AccessControlListNotSupported') return { result: 'denied', detail: 'refused: ACLs are disabled on the bucket (BucketOwnerEnforced), whatever the policy says' };
      if (allowedErrors.includes(errName(e))) return { result: 'allowed', detail: `allowed (S3 answered ${errName(e)} for the missing name)` };
      if (isDenied(e)) return { result: 'denied', detail: `refused (${errName(e)})` };
      return { result: 'error', detail: describe(e) };
    }
  };
  const list = await outcome(() => client.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, MaxKeys: 1 })), []);
  const del = versioning === 'Enabled' || versioning === 'Suspended'
    ? { result: 'skipped' as const, detail: 'not tried: on a versioned bucket a delete of a missing name leaves a delete marker' }
    : await outcome(() => client.send(new DeleteObjectCommand({ Bucket, Key })), ['NoSuchKey']);
  const putAcl = await outcome(() => client.send(new PutObjectAclCommand({ Bucket, Key, ACL: 'private' })), ['NoSuchKey']);
  return { list, delete: del, putAcl };
}

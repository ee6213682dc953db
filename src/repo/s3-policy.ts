// `tsbak s3 policy`: the IAM policy a credential of one mode needs on one repository
// (bucket + prefix), built from what tsbak does in that mode (S3_NEEDS). Pure.
//
// backup: reads what a backup reads, writes new objects only (PutObject, with the overwrite
//   guard below), no delete except of its own lock files under locks/ (a lock is written,
//   refreshed by a new object and deleted when the run ends: FORMAT.md "Locks"; deleting a
//   lock can at worst let a prune run beside a backup, which then keeps that backup's new
//   data unreferenced, never an earlier snapshot's). No ACL or bucket changes.
// admin: + delete (forget, prune, repair, unlock), multipart clean-up, restores, Object Lock reads.
// read: restore and mount: Get, List, RestoreObject.

import { LOCKS } from './layout.js';

export type PolicyMode = 'backup' | 'admin' | 'read';

/** What tsbak does on S3 and the IAM action it needs, by mode. The policy is made from this table. */
export const S3_NEEDS: { action: string; on: 'bucket' | 'objects' | 'locks' | 'account'; modes: PolicyMode[]; why: string }[] = [
  { action: 's3:ListBucket', on: 'bucket', modes: ['backup', 'admin', 'read'], why: 'list index files, snapshots, packs; a HEAD of a missing object answers 404, not 403' },
  { action: 's3:GetBucketLocation', on: 'bucket', modes: ['backup', 'admin', 'read'], why: 'the region' },
  { action: 's3:GetObject', on: 'objects', modes: ['backup', 'admin', 'read'], why: 'config, keys, index, snapshots, trees, data' },
  { action: 's3:PutObject', on: 'objects', modes: ['backup', 'admin'], why: 'new packs, index files, snapshots (only with If-None-Match: *)' },
  { action: 's3:AbortMultipartUpload', on: 'objects', modes: ['backup', 'admin'], why: 'a failed or interrupted pack upload removes its parts' },
  { action: 's3:PutObjectRetention', on: 'objects', modes: ['backup', 'admin'], why: 'tsbak-write --lock-until/--lock-days (Object Lock)' },
  { action: 's3:DeleteObject', on: 'locks', modes: ['backup'], why: 'a backup removes its own lock files' },
  { action: 's3:DeleteObject', on: 'objects', modes: ['admin'], why: 'forget, prune, repair, unlock' },
  { action: 's3:ListBucketMultipartUploads', on: 'bucket', modes: ['admin'], why: 'prune finds uploads killed backups left' },
  { action: 's3:RestoreObject', on: 'objects', modes: ['admin', 'read'], why: 'restores from Glacier / Deep Archive (restore, mount, warm, prune --repack-cold)' },
  { action: 's3:GetObjectRetention', on: 'objects', modes: ['backup', 'admin'], why: 'tsbak-write --lock-* extends retention, never shortens it; prune and forget keep locked objects' },
  { action: 's3:GetObjectLegalHold', on: 'objects', modes: ['admin'], why: 'prune and forget keep objects under legal hold' },
  // tsbak s3 check, with whichever credential runs it
  ...['s3:GetBucketPublicAccessBlock', 's3:GetBucketPolicyStatus', 's3:GetBucketPolicy', 's3:GetBucketAcl', 's3:GetBucketOwnershipControls', 's3:GetEncryptionConfiguration', 's3:GetBucketVersioning', 's3:GetBucketObjectLockConfiguration', 's3:GetLifecycleConfiguration'].map((action) => ({ action, on: 'bucket' as const, modes: ['backup', 'admin', 'read'] as PolicyMode[], why: 'tsbak s3 check' })),
  { action: 's3:GetAccountPublicAccessBlock', on: 'account', modes: ['admin'], why: 'tsbak s3 check (account-level Block Public Access)' },
];

/** Actions no tsbak credential needs, denied outright: a broader policy elsewhere cannot give them back. */
export const DENIED_ALWAYS = [
  's3:PutObjectAcl',
  's3:PutObjectVersionAcl',
  's3:DeleteObjectVersion',
  's3:BypassGovernanceRetention',
  's3:PutObjectLegalHold',
  's3:PutBucket*',
  's3:DeleteBucket*',
  's3:PutLifecycleConfiguration',
  's3:PutEncryptionConfiguration',
  's3:PutReplicationConfiguration',
];

/** Object ACL headers that could grant access to others. */
const GRANT_KEYS = ['s3:x-amz-grant-read', 's3:x-amz-grant-read-acp', 's3:x-amz-grant-write-acp', 's3:x-amz-grant-full-control'];

export interface PolicyStatement {
  Sid: string;
  Effect: 'Allow' | 'Deny';
  Principal?: { AWS: string };
  Action: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

export interface GeneratedPolicy {
  mode: PolicyMode;
  form: 'iam' | 'bucket';
  document: PolicyDocument;
  /** Plain statements of what the document enforces and what it cannot. */
  notes: string[];
}

const ARN_RE = /^arn:aws[a-z-]*:(iam|sts)::(\d{12})?:[A-Za-z0-9+=,.@_/:-]+$|^\d{12}$/;

export function s3Policy(o: { bucket: string; prefix: string; mode: PolicyMode; principal?: string }): GeneratedPolicy {
  const form = o.principal ? 'bucket' : 'iam';
  if (o.principal !== undefined && !ARN_RE.test(o.principal)) throw new RangeError(`${o.principal} is not an IAM principal: give a user or role ARN (arn:aws:iam::123456789012:role/backup) or an account id`);
  const prefix = o.prefix;
  const bucketArn = `arn:aws:s3:::${o.bucket}`;
  const objects = `${bucketArn}/${prefix}*`;
  const locks = `${bucketArn}/${prefix}${LOCKS}*`;
  const account = 'arn:aws:s3:*:*:*';
  const resourceOf = { bucket: bucketArn, objects, locks, account } as const;
  const stmts: PolicyStatement[] = [];
  const principal = o.principal ? { Principal: { AWS: o.principal } } : {};

  const groups = new Map<string, { sid: string; resource: string; actions: string[] }>();
  const sidOf = { bucket: 'Bucket', objects: 'Objects', locks: 'OwnLocks', account: 'Account' } as const;
  for (const n of S3_NEEDS) {
    if (!n.modes.includes(o.mode)) continue;
    if (n.on === 'account' && form === 'bucket') continue; // an account-level action has no place in a bucket policy
    const g = groups.get(n.on) ?? { sid: `Tsbak${o.mode[0]!.toUpperCase()}${o.mode.slice(1)}${sidOf[n.on]}`, resource: resourceOf[n.on], actions: [] };
    if (!g.actions.includes(n.action)) g.actions.push(n.action);
    groups.set(n.on, g);
  }
  for (const g of groups.values()) stmts.push({ Sid: g.sid, Effect: 'Allow', ...principal, Action: g.actions.length === 1 ? g.actions[0]! : g.actions, Resource: g.resource === account ? '*' : g.resource });

  const writes = o.mode !== 'read';
  if (writes) {
    // Every object-creating request (PutObject, CompleteMultipartUpload, CopyObject) must
    // carry If-None-Match: an existing name is never replaced. CreateMultipartUpload and
    // UploadPart cannot carry it; s3:ObjectCreationOperation is false for them.
    stmts.push({ Sid: 'TsbakDenyOverwrite', Effect: 'Deny', ...principal, Action: 's3:PutObject', Resource: objects, Condition: { Null: { 's3:if-none-match': 'true' }, Bool: { 's3:ObjectCreationOperation': 'true' } } });
    stmts.push({ Sid: 'TsbakDenyPublicAcl', Effect: 'Deny', ...principal, Action: 's3:PutObject', Resource: objects, Condition: { StringNotEquals: { 's3:x-amz-acl': ['private', 'bucket-owner-full-control'] }, Null: { 's3:x-amz-acl': 'false' } } });
    GRANT_KEYS.forEach((k, i) => stmts.push({ Sid: `TsbakDenyAclGrant${i + 1}`, Effect: 'Deny', ...principal, Action: 's3:PutObject', Resource: objects, Condition: { Null: { [k]: 'false' } } }));
  } else {
    stmts.push({ Sid: 'TsbakDenyWrite', Effect: 'Deny', ...principal, Action: ['s3:PutObject', 's3:DeleteObject'], Resource: objects });
  }
  if (o.mode === 'backup') {
    stmts.push({ Sid: 'TsbakDenyDeleteExceptLocks', Effect: 'Deny', ...principal, Action: 's3:DeleteObject', NotResource: locks });
  }
  stmts.push({ Sid: 'TsbakDenyChanges', Effect: 'Deny', ...principal, Action: DENIED_ALWAYS, Resource: [bucketArn, `${bucketArn}/*`] });

  const notes: string[] = [];
  const where = prefix ? `s3://${o.bucket}/${prefix}` : `s3://${o.bucket}`;
  notes.push(`scoped to ${where}; s3:ListBucket is granted on the whole bucket (without it S3 answers a HEAD of a missing object 403 instead of 404), so key names outside the prefix can be listed, not read`);
  if (o.mode === 'backup') {
    notes.push(`no s3:DeleteObject except on ${prefix}${LOCKS} (a backup removes its lock files when it ends); forget, prune and repair need the admin credential`);
    notes.push('overwrites: denied unless the request carries If-None-Match (condition keys s3:if-none-match and s3:ObjectCreationOperation, which AWS documents for general purpose buckets since 2024); tsbak sends If-None-Match: * on every PutObject and CompleteMultipartUpload');
  }
  if (writes) {
    notes.push('where it cannot: only AWS S3 knows s3:if-none-match and s3:ObjectCreationOperation; AWS documents them for bucket policies, so also put TsbakDenyOverwrite in the bucket policy (--bucket-policy --principal ARN) if the IAM form does not enforce it there. Ceph RGW 16 (measured): it does not know them, so TsbakDenyOverwrite never applies and an overwrite without If-None-Match goes through (with it, RGW answers 412); it refuses the whole policy for s3:GetBucketOwnershipControls, s3:GetEncryptionConfiguration, s3:GetAccountPublicAccessBlock and s3:PutEncryptionConfiguration (remove them), and its x-amz-grant-* keys are set on every PUT, so drop TsbakDenyAclGrant1-4 there; rely on versioning instead. CopyObject into the prefix is refused by TsbakDenyOverwrite (tsbak never copies)');
    notes.push('public ACLs: PutObject with a canned ACL other than private/bucket-owner-full-control, or any x-amz-grant-* header, is denied; PutObjectAcl, bucket settings and version deletes are denied outright');
  }
  if (o.mode === 'read') notes.push('read: restore, mount, ls, find, diff, dump, cost; check and backup need a lock, so they need the backup or admin credential');
  if (o.mode === 'admin') notes.push('admin: keep this credential off the backup machines; it can delete the backups');
  if (form === 'bucket') notes.push(`bucket-policy form for ${o.principal}: attach with aws s3api put-bucket-policy --bucket ${o.bucket} (merge with statements already there); the principal's own account must also allow these actions in IAM when it is another account`);
  return { mode: o.mode, form, document: { Version: '2012-10-17', Statement: stmts }, notes };
}

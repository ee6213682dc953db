// Issue 19: the documents `tsbak s3 policy` prints, checked structurally: every action is a
// real S3 action and one the mode needs (S3_NEEDS), every S3 call the backend makes is
// covered for the admin, backup may delete nothing outside locks/, ACL and bucket changes
// are denied, overwrites need If-None-Match, and everything is scoped to the prefix.
// (test/rgw-policy.test.ts tries the backup policy on a real evaluator when Ceph is there.)
import t from 'tap';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { s3Policy, S3_NEEDS, DENIED_ALWAYS, type PolicyMode, type PolicyStatement } from '../src/repo/s3-policy.js';
import { run, ROOT } from './lib/cli.js';
import { checkAgainstDoc } from './lib/json-doc.js';

/** S3 IAM actions (AWS Service Authorization Reference, "Actions defined by Amazon S3") that tsbak's documents may name. */
const REAL_ACTIONS = new Set([
  's3:ListBucket', 's3:GetBucketLocation', 's3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload',
  's3:ListBucketMultipartUploads', 's3:RestoreObject', 's3:PutObjectRetention', 's3:GetObjectRetention', 's3:GetObjectLegalHold',
  's3:PutObjectLegalHold', 's3:BypassGovernanceRetention', 's3:PutObjectAcl', 's3:PutObjectVersionAcl', 's3:DeleteObjectVersion',
  's3:GetBucketPublicAccessBlock', 's3:GetBucketPolicyStatus', 's3:GetBucketPolicy', 's3:GetBucketAcl', 's3:GetBucketOwnershipControls',
  's3:GetEncryptionConfiguration', 's3:GetBucketVersioning', 's3:GetBucketObjectLockConfiguration', 's3:GetLifecycleConfiguration',
  's3:GetAccountPublicAccessBlock', 's3:PutLifecycleConfiguration', 's3:PutEncryptionConfiguration', 's3:PutReplicationConfiguration',
  's3:PutBucket*', 's3:DeleteBucket*',
]);

/** The IAM action each S3 command of the backend needs (a new command must be added here, and to S3_NEEDS). */
const COMMAND_ACTION: Record<string, string> = {
  PutObjectCommand: 's3:PutObject',
  GetObjectCommand: 's3:GetObject',
  HeadObjectCommand: 's3:GetObject',
  ListObjectsV2Command: 's3:ListBucket',
  DeleteObjectCommand: 's3:DeleteObject',
  RestoreObjectCommand: 's3:RestoreObject',
  ListMultipartUploadsCommand: 's3:ListBucketMultipartUploads',
  AbortMultipartUploadCommand: 's3:AbortMultipartUpload',
  PutObjectRetentionCommand: 's3:PutObjectRetention',
  GetObjectRetentionCommand: 's3:GetObjectRetention',
  GetObjectLockConfigurationCommand: 's3:GetBucketObjectLockConfiguration',
  GetObjectLegalHoldCommand: 's3:GetObjectLegalHold',
  Upload: 's3:PutObject',
};

const actions = (s: PolicyStatement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const resources = (s: PolicyStatement): string[] => [s.Resource ?? [], s.NotResource ?? []].flat();
const allows = (doc: { Statement: PolicyStatement[] }) => doc.Statement.filter((s) => s.Effect === 'Allow');
const denies = (doc: { Statement: PolicyStatement[] }) => doc.Statement.filter((s) => s.Effect === 'Deny');
const allowed = (doc: { Statement: PolicyStatement[] }, action: string, resource?: string) =>
  allows(doc).some((s) => actions(s).includes(action) && (resource === undefined || resources(s).includes(resource)));

t.test('every action is real, needed by the mode, and scoped to the bucket and prefix', async (t) => {
  for (const mode of ['backup', 'admin', 'read'] as PolicyMode[]) {
    const { document: doc } = s3Policy({ bucket: 'bkt', prefix: 'laptop/', mode });
    t.equal(doc.Version, '2012-10-17');
    t.equal(new Set(doc.Statement.map((s) => s.Sid)).size, doc.Statement.length, `${mode}: Sids are unique`);
    const needed = new Set(S3_NEEDS.filter((n) => n.modes.includes(mode)).map((n) => n.action));
    for (const s of doc.Statement) {
      for (const a of actions(s)) t.ok(REAL_ACTIONS.has(a), `${mode}: ${a} is an S3 action`);
      if (s.Effect === 'Allow') for (const a of actions(s)) t.ok(needed.has(a), `${mode}: ${a} is one the mode needs`);
      for (const r of resources(s)) t.ok(r === '*' || r === 'arn:aws:s3:::bkt' || r.startsWith('arn:aws:s3:::bkt/'), `${mode}: ${r} is the bucket's`);
      if (s.Effect === 'Allow') for (const r of resources(s)) if (r.startsWith('arn:aws:s3:::bkt/')) t.ok(r.startsWith('arn:aws:s3:::bkt/laptop/'), `${mode}: object access only under the prefix (${r})`);
    }
    for (const a of needed) t.ok(allowed(doc, a), `${mode}: ${a} is granted`);
    t.notOk(allows(doc).some((s) => actions(s).some((a) => DENIED_ALWAYS.includes(a) || /^s3:PutBucket/.test(a))), `${mode}: no ACL or bucket change allowed`);
    const changes = doc.Statement.find((s) => s.Sid === 'TsbakDenyChanges')!;
    t.same(actions(changes), DENIED_ALWAYS, `${mode}: ACL, bucket, version and lock changes denied outright`);
  }
});

t.test('backup: no delete outside locks/, overwrites need If-None-Match, no public ACL', async (t) => {
  const { document: doc, notes } = s3Policy({ bucket: 'bkt', prefix: 'laptop/', mode: 'backup' });
  const deletes = allows(doc).filter((s) => actions(s).some((a) => /Delete/.test(a)));
  t.same(deletes.map((s) => resources(s)), [['arn:aws:s3:::bkt/laptop/locks/*']], 'DeleteObject only on its locks');
  const exceptLocks = doc.Statement.find((s) => s.Sid === 'TsbakDenyDeleteExceptLocks')!;
  t.same([exceptLocks.Effect, exceptLocks.Action, exceptLocks.NotResource], ['Deny', 's3:DeleteObject', 'arn:aws:s3:::bkt/laptop/locks/*']);
  const overwrite = doc.Statement.find((s) => s.Sid === 'TsbakDenyOverwrite')!;
  t.same(overwrite.Condition, { Null: { 's3:if-none-match': 'true' }, Bool: { 's3:ObjectCreationOperation': 'true' } }, 'object creations without If-None-Match are denied; multipart parts are not object creations');
  const acl = doc.Statement.find((s) => s.Sid === 'TsbakDenyPublicAcl')!;
  t.same(acl.Condition, { StringNotEquals: { 's3:x-amz-acl': ['private', 'bucket-owner-full-control'] }, Null: { 's3:x-amz-acl': 'false' } });
  t.equal(denies(doc).filter((s) => s.Sid.startsWith('TsbakDenyAclGrant')).length, 4, 'every x-amz-grant-* header denied');
  t.notOk(allowed(doc, 's3:RestoreObject'), 'a backup restores nothing');
  t.ok(notes.some((n) => /where it cannot/.test(n)), 'says where the overwrite guard cannot hold');
});

t.test('admin deletes; read only reads; every S3 call of the backend is in the admin policy', async (t) => {
  const admin = s3Policy({ bucket: 'bkt', prefix: '', mode: 'admin' }).document;
  t.ok(allowed(admin, 's3:DeleteObject', 'arn:aws:s3:::bkt/*'), 'admin deletes anywhere in the repository (an empty prefix: the bucket)');
  t.notOk(admin.Statement.some((s) => s.Sid === 'TsbakDenyDeleteExceptLocks'));
  const read = s3Policy({ bucket: 'bkt', prefix: 'p/', mode: 'read' }).document;
  for (const a of ['s3:GetObject', 's3:ListBucket', 's3:RestoreObject']) t.ok(allowed(read, a), `read: ${a}`);
  for (const a of ['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload']) t.notOk(allowed(read, a), `read: no ${a}`);
  t.same(actions(read.Statement.find((s) => s.Sid === 'TsbakDenyWrite')!), ['s3:PutObject', 's3:DeleteObject']);

  const src = readFileSync(path.join(ROOT, 'src', 'backend', 's3.ts'), 'utf8');
  const used = new Set([...src.matchAll(/new (\w+Command|Upload)\(/g)].map((m) => m[1]!));
  t.ok(used.size >= 8, `found the backend's commands (${[...used].join(', ')})`);
  for (const c of used) {
    t.ok(c in COMMAND_ACTION, `${c}: its IAM action is known to this test`);
    if (c in COMMAND_ACTION) t.ok(allowed(admin, COMMAND_ACTION[c]!), `${c}: ${COMMAND_ACTION[c]} is in the admin policy`);
  }
});

t.test('bucket-policy form: every statement names the principal; a bad principal is a usage error', async (t) => {
  const p = s3Policy({ bucket: 'bkt', prefix: 'laptop/', mode: 'backup', principal: 'arn:aws:iam::123456789012:role/backup' });
  t.equal(p.form, 'bucket');
  t.ok(p.document.Statement.every((s) => s.Principal?.AWS === 'arn:aws:iam::123456789012:role/backup'));
  t.notOk(p.document.Statement.some((s) => s.Resource === '*'), 'no account-level statement in a bucket policy');
  t.throws(() => s3Policy({ bucket: 'bkt', prefix: '', mode: 'admin', principal: 'everyone' }), RangeError);

  const bad = run('tsbak', ['s3', 'policy', 's3://bkt/laptop', '--mode', 'backup', '--bucket-policy', '--principal', '*']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /^tsbak: --principal \* is not an IAM principal/);
  const noMode = run('tsbak', ['s3', 'policy', 's3://bkt/laptop']);
  t.equal(noMode.code, 2);
  t.match(noMode.stderr, /missing required option --mode/);
});

t.test('the CLI: a policy document on stdout, notes on stderr; --json as docs/JSON.md says', async (t) => {
  const r = run('tsbak', ['s3', 'policy', 's3://bkt/laptop', '--mode', 'backup']);
  t.equal(r.code, 0, r.stderr);
  t.same(JSON.parse(r.stdout), s3Policy({ bucket: 'bkt', prefix: 'laptop/', mode: 'backup' }).document, 'stdout is the document alone');
  t.match(r.stderr, /^tsbak: note: no s3:DeleteObject except on laptop\/locks\//m);
  const j = run('tsbak', ['s3', 'policy', 's3://bkt/laptop', '--mode', 'admin', '--bucket-policy', '--principal', '123456789012', '--json']);
  t.equal(j.code, 0, j.stderr);
  const doc = JSON.parse(j.stdout);
  checkAgainstDoc(t, '`tsbak s3 policy --json`', doc);
  t.equal(doc.form, 'bucket');
  t.equal(doc.principal, '123456789012');
  t.same(JSON.parse(doc.policy_document).Statement.map((s: PolicyStatement) => s.Sid), doc.statements.map((s: { sid: string }) => s.sid));
});

// Issue 19: `tsbak s3 check` on good and bad bucket setups made through the S3 API on the
// dev server (scripts/s3-dev-bucket-config.mjs), init's warning about a public bucket, and a
// credential that may not delete (the dev server refusing deletes, as S3 does under a
// backup policy): tsbak-write works, forget and prune stop with exit 12 and lose nothing.
import t, { type Test } from 'tap';
import * as http from 'node:http';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  S3Client,
  CreateBucketCommand,
  DeletePublicAccessBlockCommand,
  PutBucketPolicyCommand,
  DeleteBucketOwnershipControlsCommand,
  PutBucketAclCommand,
  DeleteBucketEncryptionCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketVersioningCommand,
  PutObjectLockConfigurationCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { run } from './lib/cli.js';
import { checkAgainstDoc } from './lib/json-doc.js';
import { DEV_CREDENTIALS, devFetch, devServerEnv, withDevServer } from './lib/s3-dev-server.js';
import { tempDir } from './lib/temp.js';

const server = await withDevServer(t);
const s3 = new S3Client({ endpoint: server.url, region: 'us-east-1', credentials: DEV_CREDENTIALS, forcePathStyle: true });
t.teardown(() => s3.destroy());
const ACCOUNT_ENV = { AWS_ENDPOINT_URL_STS: server.url, AWS_ENDPOINT_URL_S3_CONTROL: server.url };
const env = devServerEnv(server, ACCOUNT_ENV);

function raw(method: string, url: string, headers: Record<string, string>, body = ''): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const ALL_ON = '<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>';
const setAccountPab = (xml: string | null) =>
  raw(xml === null ? 'DELETE' : 'PUT', `${server.url}/v20180820/configuration/publicAccessBlock`, { 'x-amz-account-id': '123456789012' }, xml ?? '');

function check(t: Test, args: string[], code: number): { byId: Map<string, any>; doc: any; text: string } {
  const r = run('tsbak', ['s3', 'check', ...args, '--json'], env);
  t.equal(r.code, code, `s3 check ${args.join(' ')}: exit ${code} (${r.stderr})`);
  const doc = JSON.parse(r.stdout);
  checkAgainstDoc(t, '`tsbak s3 check --json`', doc);
  const text = run('tsbak', ['s3', 'check', ...args], env);
  t.equal(text.code, code, 'the same exit without --json');
  t.equal(text.stdout.split('\n').filter((l) => /^(OK|WARN|FAIL) /.test(l)).length, doc.checks.length, 'one line per check');
  return { byId: new Map(doc.checks.map((c: any) => [c.id, c])), doc, text: text.stdout };
}

t.test('a well set bucket: nothing fails, and the lines say what is there', async (t) => {
  await s3.send(new CreateBucketCommand({ Bucket: 'good-bucket' }));
  await s3.send(new PutBucketVersioningCommand({ Bucket: 'good-bucket', VersioningConfiguration: { Status: 'Enabled' } }));
  await s3.send(new PutBucketLifecycleConfigurationCommand({
    Bucket: 'good-bucket',
    LifecycleConfiguration: {
      Rules: [
        { ID: 'cleanup', Status: 'Enabled', Filter: { Prefix: '' }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 }, NoncurrentVersionExpiration: { NoncurrentDays: 30 } },
        { ID: 'data-to-deep', Status: 'Enabled', Filter: { Prefix: 'laptop/packs/data/' }, Transitions: [{ Days: 1, StorageClass: 'DEEP_ARCHIVE' }] },
      ],
    },
  }));
  t.equal(await setAccountPab(ALL_ON), 200);
  t.teardown(() => setAccountPab(null));
  const { byId, doc } = check(t, ['s3://good-bucket/laptop', '--mode', 'admin'], 0);
  t.equal(doc.fail, 0);
  t.equal(doc.prefix, 'laptop/');
  t.equal(doc.region, 'us-east-1');
  for (const id of ['block_public_access', 'account_block_public_access', 'policy_status', 'acl', 'object_ownership', 'encryption', 'versioning', 'object_lock', 'lifecycle_hot_objects', 'lifecycle_expiration', 'lifecycle_multipart', 'region', 'credentials_list', 'credentials_delete', 'credentials_acl']) {
    t.equal(byId.get(id)?.status, 'ok', `${id}: ok (${byId.get(id)?.message})`);
  }
  t.match(byId.get('account_block_public_access').message, /account 123456789012/);
  t.match(byId.get('lifecycle_multipart').message, /after 7 days/);
  t.match(byId.get('credentials_delete').message, /not tried: on a versioned bucket/);
  t.match(byId.get('credentials_acl').message, /ACLs are disabled/);
});

t.test('a bucket left open: each problem is a FAIL or WARN with what to do, exit 1', async (t) => {
  const Bucket = 'open-bucket';
  await s3.send(new CreateBucketCommand({ Bucket }));
  await s3.send(new DeletePublicAccessBlockCommand({ Bucket }));
  await s3.send(new DeleteBucketOwnershipControlsCommand({ Bucket }));
  await s3.send(new PutBucketAclCommand({ Bucket, ACL: 'public-read' }));
  await s3.send(new PutBucketPolicyCommand({ Bucket, Policy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'Everyone', Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${Bucket}/*` }] }) }));
  await s3.send(new DeleteBucketEncryptionCommand({ Bucket }));
  await s3.send(new PutBucketLifecycleConfigurationCommand({
    Bucket,
    LifecycleConfiguration: {
      Rules: [
        { ID: 'all-cold', Status: 'Enabled', Filter: { Prefix: 'repo/' }, Transitions: [{ Days: 30, StorageClass: 'GLACIER' }] },
        { ID: 'ia', Status: 'Enabled', Filter: { Prefix: 'repo/snapshots/' }, Transitions: [{ Days: 30, StorageClass: 'STANDARD_IA' }] },
        { ID: 'expire', Status: 'Enabled', Filter: { Prefix: '' }, Expiration: { Days: 365 } },
        { ID: 'tagged', Status: 'Enabled', Filter: { Tag: { Key: 'k', Value: 'v' } }, Expiration: { Days: 1 } },
      ],
    },
  }));
  t.equal(await setAccountPab(null), 204);
  const { byId, doc, text } = check(t, ['s3://open-bucket/repo', '--mode', 'backup'], 1);
  const status = (id: string) => byId.get(id)?.status;
  t.equal(status('block_public_access'), 'fail');
  t.match(byId.get('block_public_access').fix, /put-public-access-block --bucket open-bucket/);
  t.equal(status('account_block_public_access'), 'warn');
  t.equal(status('policy_status'), 'fail', 'GetBucketPolicyStatus says public');
  t.equal(status('policy_principals'), 'fail');
  t.match(byId.get('policy_principals').message, /statement Everyone allows Principal "\*"/);
  t.equal(status('acl'), 'fail');
  t.match(byId.get('acl').message, /READ to AllUsers/);
  t.equal(status('object_ownership'), 'warn');
  t.equal(status('encryption'), 'warn');
  t.equal(status('versioning'), 'warn');
  t.equal(status('lifecycle_hot_objects'), 'fail');
  t.match(byId.get('lifecycle_hot_objects').message, /rule all-cold moves config to GLACIER after 30 days/);
  t.equal(status('lifecycle_expiration'), 'fail');
  t.match(byId.get('lifecycle_expiration').message, /rule expire \(after 365 days\)/);
  t.notMatch(byId.get('lifecycle_expiration').message, /tagged/, 'a rule filtering by tag touches no tsbak object');
  t.equal(status('lifecycle_multipart'), 'warn');
  t.equal(status('credentials_delete'), 'warn', 'a backup credential that may delete');
  t.match(byId.get('credentials_delete').message, /too much for a backup credential/);
  t.equal(status('credentials_acl'), 'warn', 'ACLs in effect and PutObjectAcl allowed');
  t.equal(doc.fail, 6);
  t.match(text, /^FAIL  Block Public Access \(bucket\): not configured/m);
  t.match(text, /^      -> aws s3api put-public-access-block/m);

  // init on it warns about what is public, and still makes the repository.
  const init = run('tsbak', ['init', 's3://open-bucket/repo'], env);
  t.equal(init.code, 0, init.stderr);
  t.match(init.stderr, /warning: PUBLIC ACCESS: Block Public Access \(bucket\): not configured/);
  t.match(init.stderr, /warning: PUBLIC ACCESS: bucket ACL: grants READ to AllUsers/);
  t.match(init.stderr, /run 'tsbak s3 check s3:\/\/open-bucket\/repo'/);
});

t.test('Object Lock: the configuration and its default retention are shown', async (t) => {
  const Bucket = 'locked-bucket';
  await s3.send(new CreateBucketCommand({ Bucket, ObjectLockEnabledForBucket: true }));
  await s3.send(new PutObjectLockConfigurationCommand({ Bucket, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 30 } } } }));
  const r = await devFetch(`${server.url}/__dev/bucket-region?bucket=${Bucket}&region=eu-west-1`, { method: 'POST' });
  t.ok(r.ok, await r.text());
  const { byId, doc } = check(t, ['s3://locked-bucket'], 0);
  t.equal(doc.region, 'eu-west-1', 'the region from GetBucketLocation');
  t.match(byId.get('region').message, /^region: eu-west-1 \(endpoint http/);
  t.equal(byId.get('object_lock').status, 'ok');
  t.match(byId.get('object_lock').message, /Object Lock: enabled; default retention GOVERNANCE 30 days/);
  t.match(byId.get('versioning').message, /versioning: enabled/, 'Object Lock turns versioning on');
  // A bucket made without it cannot get it later (as on AWS).
  await t.rejects(s3.send(new PutObjectLockConfigurationCommand({ Bucket: 'good-bucket', ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled' } })), { name: 'InvalidBucketState' });
});

t.test('a public policy is refused while BlockPublicPolicy is on; a missing bucket is exit 16', async (t) => {
  await s3.send(new CreateBucketCommand({ Bucket: 'guarded-bucket' }));
  await t.rejects(s3.send(new PutBucketPolicyCommand({ Bucket: 'guarded-bucket', Policy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::guarded-bucket/*' }] }) })), { name: 'AccessDenied' });
  const r = run('tsbak', ['s3', 'check', 's3://no-such-bucket/x'], env);
  t.equal(r.code, 16, r.stderr);
  t.match(r.stderr, /^tsbak: bucket no-such-bucket does not exist/);
  const local = run('tsbak', ['s3', 'check', '/srv/repo'], env);
  t.equal(local.code, 2);
  t.match(local.stderr, /is not an S3 location/);
});

t.test('a credential that may not delete: backups work, forget and prune stop with exit 12, nothing is lost', async (t) => {
  await s3.send(new CreateBucketCommand({ Bucket: 'backup-bucket' }));
  const repo = 's3://backup-bucket/m1';
  t.equal(run('tsbak', ['init', repo], env).code, 0);
  const deny = async (ops: string) => {
    const r = await devFetch(`${server.url}/__dev/deny?ops=${ops}&except=backup-bucket/m1/locks/`, { method: 'POST' });
    t.ok(r.ok, await r.text());
  };
  t.teardown(async () => void (await devFetch(`${server.url}/__dev/deny?ops=`, { method: 'POST' })));
  await deny('DeleteObject,DeleteObjects,PutObjectAcl');
  const c = check(t, [repo, '--mode', 'backup'], 0);
  t.equal(c.byId.get('credentials_delete').status, 'ok');
  t.match(c.byId.get('credentials_delete').message, /may not delete objects/);

  const src = tempDir(t);
  writeFileSync(path.join(src, 'a'), 'first\n');
  t.equal(run('tsbak-write', [repo, src], env).code, 0, 'a backup: its locks are its own to delete');
  writeFileSync(path.join(src, 'a'), 'second, different\n');
  const w = run('tsbak-write', [repo, src, '--json'], env);
  t.equal(w.code, 0, w.stderr);
  const snaps = JSON.parse(run('tsbak', ['snapshots', repo, '--json'], env).stdout);
  t.equal(snaps.length, 2);

  const f = run('tsbak', ['forget', repo, snaps[0].id, '--json'], env);
  t.equal(f.code, 12, f.stderr);
  t.match(f.stderr, /^tsbak: S3 refused to delete s3:\/\/backup-bucket\/m1\/snapshots\/[0-9a-f]{64} \(AccessDenied\): the credentials in use may not delete/m);
  t.match(f.stderr, /"code":"WRITE_ONLY_KEY","exit":12/);
  t.equal(JSON.parse(run('tsbak', ['snapshots', repo, '--json'], env).stdout).length, 2, 'nothing forgotten');

  // The admin forgets one; then prune, with the backup credential, has data to delete.
  await deny('');
  t.equal(run('tsbak', ['forget', repo, snaps[0].id], env).code, 0);
  await deny('DeleteObject,DeleteObjects');
  const p = run('tsbak', ['prune', repo], env);
  t.equal(p.code, 12, p.stderr);
  t.match(p.stderr, /S3 refused to delete s3:\/\/backup-bucket\/m1\/\S+ \(AccessDenied\)/);
  t.equal(p.stderr.trim().split('\n').filter((l) => l.startsWith('tsbak: S3 refused')).length, 1, 'one line');
  await deny('');
  const ck = run('tsbak', ['check', repo, '--read-data'], env);
  t.equal(ck.code, 0, `the repository is whole after the refused prune: ${ck.stderr}`);
  // A credential that may not write (a read credential; its locks are still allowed here): the backup stops at its first write, exit 12.
  await deny('PutObject');
  const ro = run('tsbak-write', [repo, src, '--json'], env);
  t.equal(ro.code, 12, ro.stderr);
  t.match(ro.stderr, /^tsbak-write: S3 refused to write s3:\/\/backup-bucket\/m1\/(packs|index|snapshots)\/\S+ \(AccessDenied\): the credentials in use lack s3:PutObject there/m);
  await deny('');
  t.equal(JSON.parse(run('tsbak', ['snapshots', repo, '--json'], env).stdout).length, 1, 'no snapshot from the refused backup');
  // An overwrite is refused whatever the credential: tsbak's and any If-None-Match writer's.
  await t.rejects(s3.send(new PutObjectCommand({ Bucket: 'backup-bucket', Key: 'm1/config', Body: 'x', IfNoneMatch: '*' })), { name: 'PreconditionFailed' });
});

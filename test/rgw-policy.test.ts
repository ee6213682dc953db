// Issue 19 on a real policy evaluator: a one-node Ceph (scripts/ceph-rgw-dev.sh: monitor,
// memstore OSD, radosgw on loopback) started by the test. The bucket policy `tsbak s3 policy
// --mode backup --bucket-policy` prints is put on the bucket for the user "backup" (less
// what RGW 16 does not know, below); with that user's keys tsbak-write works, and forget,
// prune and any delete of repository data are refused by RGW: exit 12, one line, nothing lost.
// Skipped when the Debian packages radosgw, ceph-mon and ceph-osd are not installed.
//
// What RGW 16.2 cannot take of the AWS policy, measured here: the action names
// s3:GetBucketOwnershipControls, s3:GetEncryptionConfiguration, s3:GetAccountPublicAccessBlock
// and s3:PutEncryptionConfiguration (the whole policy is refused, InvalidArgument); the
// x-amz-grant-* Null conditions (RGW fills those keys on every PUT, so TsbakDenyAclGrant*
// refuses all writes); and the condition keys s3:if-none-match and s3:ObjectCreationOperation,
// which it does not know (TsbakDenyOverwrite never applies: an overwrite without
// If-None-Match goes through; with it, RGW answers 412 as AWS does).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { S3Client, CreateBucketCommand, PutBucketPolicyCommand, PutObjectCommand, DeleteObjectCommand, ListObjectsV2Command, GetObjectCommand } from '@aws-sdk/client-s3';
import { s3Policy, type PolicyStatement } from '../src/repo/s3-policy.js';
import { run, ROOT } from './lib/cli.js';
import { tempDir } from './lib/temp.js';

const NEEDED = ['radosgw', 'radosgw-admin', 'ceph-mon', 'ceph-osd', 'ceph-authtool', 'monmaptool', 'ceph'];
const missing = NEEDED.filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0);
const RGW_UNKNOWN_ACTIONS = new Set(['s3:GetBucketOwnershipControls', 's3:GetEncryptionConfiguration', 's3:GetAccountPublicAccessBlock', 's3:PutEncryptionConfiguration']);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/**
 * The bucket policy for the users backup and admin, as RGW 16 takes it (see the top of this
 * file). RGW has no Object Ownership: objects belong to the user who wrote them, so the
 * admin, though the bucket's owner, reads the backup's objects through its own statements.
 */
function rgwPolicy(bucket: string, prefix: string): string {
  const statements: PolicyStatement[] = (['backup', 'admin'] as const).flatMap((mode) =>
    s3Policy({ bucket, prefix, mode, principal: `arn:aws:iam:::user/${mode}` })
      .document.Statement.filter((s) => !s.Sid.startsWith('TsbakDenyAclGrant'))
      .map((s) => ({ ...s, Sid: `${s.Sid}For${mode}`, Action: Array.isArray(s.Action) ? s.Action.filter((a) => !RGW_UNKNOWN_ACTIONS.has(a)) : s.Action })),
  );
  return JSON.stringify({ Version: '2012-10-17', Statement: statements });
}

const TITLE = 'backup credentials under the generated bucket policy: write yes, forget, prune and deletes no';
if (missing.length) {
  t.test(TITLE, { skip: `${missing.join(', ')} not installed (Debian packages radosgw ceph-mon ceph-osd, scripts/setup.sh); the policy is checked structurally by s3-policy.test` }, async () => {});
} else {
  const dir = tempDir(t);
  const [monPort, rgwPort] = [await freePort(), await freePort()];
  const script = path.join(ROOT, 'scripts', 'ceph-rgw-dev.sh');
  t.teardown(() => void spawnSync(script, ['stop', dir], { stdio: 'ignore', timeout: 60_000 }));
  const up = spawnSync(script, ['start', dir, String(monPort), String(rgwPort)], { encoding: 'utf8', timeout: 240_000 });
  if (up.status !== 0) throw new Error(`ceph-rgw-dev.sh start: exit ${up.status}: ${up.stderr}`);
  const url = /rgw listening on (\S+)/.exec(up.stdout)![1]!;
  const base = { AWS_ENDPOINT_URL_S3: url, AWS_REGION: 'us-east-1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  const adminEnv = { ...base, AWS_ACCESS_KEY_ID: 'TSBAKADMIN', AWS_SECRET_ACCESS_KEY: 'TSBAKADMINSECRET' };
  const backupEnv = { ...base, AWS_ACCESS_KEY_ID: 'TSBAKBACKUP', AWS_SECRET_ACCESS_KEY: 'TSBAKBACKUPSECRET' };
  const client = (k: string, s: string) => new S3Client({ endpoint: url, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: k, secretAccessKey: s }, maxAttempts: 1 });
  const admin = client('TSBAKADMIN', 'TSBAKADMINSECRET');
  const backup = client('TSBAKBACKUP', 'TSBAKBACKUPSECRET');
  t.teardown(() => {
    admin.destroy();
    backup.destroy();
  });

  t.test(TITLE, async (t) => {
    await admin.send(new CreateBucketCommand({ Bucket: 'tsbak' }));
    await admin.send(new PutBucketPolicyCommand({ Bucket: 'tsbak', Policy: rgwPolicy('tsbak', 'laptop/') }));
    const repo = 's3://tsbak/laptop';
    const init = run('tsbak', ['init', repo], adminEnv);
    t.equal(init.code, 0, init.stderr);

    const src = tempDir(t);
    writeFileSync(path.join(src, 'a'), 'first\n');
    const w1 = run('tsbak-write', [repo, src], backupEnv);
    t.equal(w1.code, 0, `tsbak-write with the backup credential: ${w1.stderr}`);
    writeFileSync(path.join(src, 'a'), 'second, and different\n');
    t.equal(run('tsbak-write', [repo, src], backupEnv).code, 0);
    const snaps = JSON.parse(run('tsbak', ['snapshots', repo, '--json'], backupEnv).stdout);
    t.equal(snaps.length, 2);
    t.same((await backup.send(new ListObjectsV2Command({ Bucket: 'tsbak', Prefix: 'laptop/locks/' }))).Contents ?? [], [], 'the backups removed their own locks');

    const f = run('tsbak', ['forget', repo, snaps[0].id], backupEnv);
    t.equal(f.code, 12, f.stderr);
    t.match(f.stderr, /^tsbak: S3 refused to delete s3:\/\/tsbak\/laptop\/snapshots\/[0-9a-f]{64} \(AccessDenied\)/m);
    t.equal(JSON.parse(run('tsbak', ['snapshots', repo, '--json'], adminEnv).stdout).length, 2, 'nothing forgotten');

    t.equal(run('tsbak', ['forget', repo, snaps[0].id], adminEnv).code, 0, 'the admin (bucket owner) may');
    const p = run('tsbak', ['prune', repo], backupEnv);
    t.equal(p.code, 12, p.stderr);
    t.match(p.stderr, /^tsbak: S3 refused to (delete s3:\/\/tsbak\/laptop\/\S+|list the multipart uploads under s3:\/\/tsbak\/laptop\/) \(AccessDenied\)/m);
    const ck = run('tsbak', ['check', repo, '--read-data'], adminEnv);
    t.equal(ck.code, 0, `whole after the refused prune: ${ck.stderr}`);
    const ap = run("tsbak", ["prune", repo], adminEnv);
    t.equal(ap.code, 0, `the admin prunes: ${ap.stderr}`);

    const listed = (await backup.send(new ListObjectsV2Command({ Bucket: 'tsbak', Prefix: 'laptop/packs/' }))).Contents ?? [];
    t.ok(listed.length > 0);
    const pack = listed[0]!.Key!;
    await t.rejects(backup.send(new DeleteObjectCommand({ Bucket: 'tsbak', Key: pack })), { name: 'AccessDenied' }, 'a pack cannot be deleted');
    await t.rejects(backup.send(new DeleteObjectCommand({ Bucket: 'tsbak', Key: 'laptop/config' })), { name: 'AccessDenied' }, 'nor the config');
    await t.rejects(backup.send(new PutObjectCommand({ Bucket: 'tsbak', Key: pack, Body: 'x', IfNoneMatch: '*' })), { name: 'PreconditionFailed' }, 'an overwrite with If-None-Match is refused');
    await t.rejects(backup.send(new PutObjectCommand({ Bucket: 'tsbak', Key: 'elsewhere/x', Body: 'x', IfNoneMatch: '*' })), { name: 'AccessDenied' }, 'nothing outside the prefix');
    await t.rejects(backup.send(new PutObjectCommand({ Bucket: 'tsbak', Key: 'laptop/x', Body: 'x', ACL: 'public-read' })).then(() => Promise.reject(Object.assign(new Error('allowed'), { name: 'Allowed' }))), { name: 'Allowed' }, 'RGW 16 lets a public-read ACL through (it does not apply s3:x-amz-acl as AWS does; Object Ownership is what stops it on AWS)');
    const before = await (await backup.send(new GetObjectCommand({ Bucket: 'tsbak', Key: 'laptop/config' }))).Body!.transformToByteArray();
    t.ok(before.length > 0);
  });
}

// `tsbak s3 check` and `tsbak s3 policy` (README "S3 bucket safety"), and the bucket
// warnings `tsbak init` prints for a repository on S3.
import { parseS3Location } from '../backend/s3.js';
import { readBucketFacts } from '../backend/s3-bucket-facts.js';
import { bucketChecks, type BucketCheck, type CredentialMode } from '../repo/bucket-checks.js';
import { s3Policy, type PolicyMode } from '../repo/s3-policy.js';
import { TsbakError } from '../errors.js';
import { EXIT } from './exit-codes.js';
import { programName } from './output.js';
import { s3Options, type RepoArgs } from './open-repo.js';

type S3Args = Pick<RepoArgs, 'repo' | 's3Endpoint' | 's3Region' | 's3PathStyle' | 's3Profile'>;

const out = (s: string) => process.stdout.write(s + '\n');

function s3Location(repo: string): { bucket: string; prefix: string } {
  if (!repo.startsWith('s3://') && repo.includes('/')) throw new TsbakError('USAGE', `${repo} is not an S3 location: give s3://bucket[/prefix]`);
  return parseS3Location(repo);
}

function checkMode(mode: string | undefined): CredentialMode | undefined {
  if (mode === undefined) return undefined;
  if (mode === 'backup' || mode === 'admin' || mode === 'read') return mode;
  throw new TsbakError('USAGE', `--mode ${mode}: give backup, admin or read`);
}

async function facts(a: S3Args, o: { probes: boolean; account: boolean }) {
  const { bucket, prefix } = s3Location(a.repo);
  const s3 = s3Options(a);
  try {
    return await readBucketFacts({ bucket, prefix, region: s3.region, endpoint: s3.endpoint, forcePathStyle: s3.pathStyle, profile: s3.profile, ...o });
  } catch (e) {
    const name = String((e as any)?.Code ?? (e as any)?.name ?? '');
    if (name === 'NoSuchBucket') throw new TsbakError('NOT_FOUND', `bucket ${bucket} does not exist: create it, or check the name and the endpoint`);
    if (name === 'CredentialsProviderError') throw new TsbakError('BACKEND', `no AWS credentials found for s3://${bucket}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE`);
    throw e;
  }
}

const LABEL = { ok: 'OK  ', warn: 'WARN', fail: 'FAIL' } as const;

export async function cmdS3Check(a: S3Args & { mode?: string; json?: boolean }): Promise<number> {
  const mode = checkMode(a.mode);
  const f = await facts(a, { probes: true, account: true });
  const checks = bucketChecks(f, mode);
  const n = (s: BucketCheck['status']) => checks.filter((c) => c.status === s).length;
  if (a.json) {
    out(JSON.stringify({
      bucket: f.bucket,
      prefix: f.prefix,
      endpoint: f.endpoint,
      region: f.region.ok ? f.region.value : null,
      mode: mode ?? null,
      checks: checks.map((c) => ({ id: c.id, status: c.status, message: c.message, fix: c.fix || null })),
      ok: n('ok'),
      warn: n('warn'),
      fail: n('fail'),
    }));
  } else {
    out(`s3://${f.bucket}/${f.prefix}${f.endpoint ? ` (endpoint ${f.endpoint})` : ''}${mode ? `, credentials meant for ${mode}` : ''}`);
    for (const c of checks) out(`${LABEL[c.status]}  ${c.message}${c.fix ? `\n      -> ${c.fix}` : ''}`);
    out(`${n('ok')} ok, ${n('warn')} warnings, ${n('fail')} failed`);
  }
  return n('fail') ? EXIT.ERROR : EXIT.OK;
}

export async function cmdS3Policy(a: { repo: string; mode?: string; json?: boolean; bucketPolicy?: boolean; principal?: string }): Promise<number> {
  const { bucket, prefix } = s3Location(a.repo);
  const mode = checkMode(a.mode);
  if (!mode) throw new TsbakError('USAGE', '--mode is required: backup (a backup machine), admin (forget, prune) or read (restore, mount)');
  if (a.bucketPolicy && !a.principal) throw new TsbakError('USAGE', '--bucket-policy needs --principal ARN: the user or role the statements are for');
  if (a.principal && !a.bucketPolicy) throw new TsbakError('USAGE', '--principal goes with --bucket-policy');
  let p;
  try {
    p = s3Policy({ bucket, prefix, mode: mode as PolicyMode, ...(a.principal ? { principal: a.principal } : {}) });
  } catch (e) {
    if (e instanceof RangeError) throw new TsbakError('USAGE', `--principal ${e.message}`);
    throw e;
  }
  if (a.json) {
    out(JSON.stringify({ bucket, prefix, mode: p.mode, form: p.form, principal: a.principal ?? null, policy_document: JSON.stringify(p.document), statements: p.document.Statement.map((s) => ({ sid: s.Sid, effect: s.Effect })), notes: p.notes }));
  } else {
    out(JSON.stringify(p.document, null, 2));
    // The notes go to stderr: stdout stays a policy document that can be piped to aws iam.
    for (const n of p.notes) process.stderr.write(`${programName}: note: ${n}\n`);
  }
  return EXIT.OK;
}

/**
 * After `tsbak init` on S3: warn (stderr) about anything public, and point at `tsbak s3
 * check` for the rest. Never fails init: the repository is made by then.
 */
export async function warnAboutBucket(a: S3Args): Promise<void> {
  try {
    const f = await facts(a, { probes: false, account: !(a.s3Endpoint || process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL) || !!process.env.AWS_ENDPOINT_URL_STS });
    const checks = bucketChecks(f);
    const bad = checks.filter((c) => c.status !== 'ok');
    for (const c of bad.filter((c) => c.public)) process.stderr.write(`${programName}: ${c.status === 'fail' ? 'warning: PUBLIC ACCESS' : 'warning'}: ${c.message}${c.fix ? ` (${c.fix})` : ''}\n`);
    const others = bad.filter((c) => !c.public).length;
    if (bad.length) process.stderr.write(`${programName}: ${bad.length} bucket setting${bad.length === 1 ? '' : 's'} to look at${others ? ` (${others} not about public access)` : ''}: run 'tsbak s3 check ${a.repo}'\n`);
  } catch (e) {
    process.stderr.write(`${programName}: warning: could not check the bucket's settings (${(e as Error).message}); run 'tsbak s3 check ${a.repo}'\n`);
  }
}

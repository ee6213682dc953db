// `tsbak s3 check`'s judgement of a bucket (the facts come from backend/s3-bucket-facts.ts):
// one line per subject, OK / WARN / FAIL, and what to do. Pure: facts in, lines out. The
// repository's layout decides which objects must stay hot and which lifecycle rules touch it.

import type { BucketFacts, LifecycleRule, PublicAccessBlock, Read } from '../backend/s3-bucket-facts.js';
import { CONFIG, INDEX, KEYS, LOCKS, PARITY_GROUPS, SETTINGS, SNAPSHOTS, packPrefix } from './layout.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';
export type CredentialMode = 'backup' | 'admin' | 'read';

export interface BucketCheck {
  /** Stable name of the subject: block_public_access, policy_status, ... */
  id: string;
  status: CheckStatus;
  /** What was found. */
  message: string;
  /** What to do about it (empty when nothing). */
  fix: string;
  /** A public-access subject (init warns about these). */
  public: boolean;
}

/** Objects a restore, a mount and every backup read: they must stay instantly readable. */
const HOT: { name: string; what: string }[] = [
  { name: CONFIG, what: 'config' },
  { name: `${KEYS}x`, what: 'keys/' },
  { name: `${INDEX}x`, what: 'index/' },
  { name: `${SNAPSHOTS}x`, what: 'snapshots/' },
  { name: `${LOCKS}x`, what: 'locks/' },
  { name: `${SETTINGS}x`, what: 'settings/' },
  { name: `${packPrefix('tree')}x`, what: packPrefix('tree') },
  // Parity group records: repair plans its restores from them while the parity is archived.
  { name: `${PARITY_GROUPS}x`, what: PARITY_GROUPS },
];
/** Classes a GET reads at once (with minimum durations and retrieval fees), as opposed to GLACIER and DEEP_ARCHIVE. */
const INSTANT = new Set(['STANDARD', 'STANDARD_IA', 'ONEZONE_IA', 'GLACIER_IR', 'INTELLIGENT_TIERING', 'REDUCED_REDUNDANCY']);

const PAB_FIX = (bucket: string) => `aws s3api put-public-access-block --bucket ${bucket} --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true`;

function unreadable(id: string, what: string, r: Read<unknown> & { ok: false }, action: string, isPublic: boolean): BucketCheck {
  return {
    id,
    status: 'warn',
    message: `${what}: could not be read (${r.error})`,
    fix: r.denied ? `run the check with a credential allowed ${action} (the admin's; 'tsbak s3 policy --mode admin' grants it)` : 'run the check again; if it persists, look at it in the S3 console',
    public: isPublic,
  };
}

function pabOff(b: PublicAccessBlock): string[] {
  return (Object.entries(b) as [keyof PublicAccessBlock, boolean][]).filter(([, v]) => !v).map(([k]) => ({ blockPublicAcls: 'BlockPublicAcls', ignorePublicAcls: 'IgnorePublicAcls', blockPublicPolicy: 'BlockPublicPolicy', restrictPublicBuckets: 'RestrictPublicBuckets' })[k]);
}

/** Does a rule whose filter is `rulePrefix` apply to the object `key`? Tag filters match nothing of ours. */
function ruleApplies(rule: LifecycleRule, key: string): boolean {
  return rule.enabled && !rule.tagged && key.startsWith(rule.prefix);
}

/** Does the rule apply to some object of the repository under `prefix`? */
function ruleTouchesRepo(rule: LifecycleRule, prefix: string): boolean {
  return rule.enabled && !rule.tagged && (prefix.startsWith(rule.prefix) || rule.prefix.startsWith(prefix));
}

function publicPrincipalStatements(policy: string): { sid: string; conditional: boolean }[] | null {
  let doc: any;
  try {
    doc = JSON.parse(policy);
  } catch {
    return null;
  }
  const stmts: any[] = Array.isArray(doc?.Statement) ? doc.Statement : doc?.Statement ? [doc.Statement] : [];
  const out: { sid: string; conditional: boolean }[] = [];
  stmts.forEach((s, i) => {
    if (s?.Effect !== 'Allow') return;
    const p = s.Principal;
    const aws = p && typeof p === 'object' ? p.AWS : undefined;
    if (p === '*' || aws === '*' || (Array.isArray(aws) && aws.includes('*'))) out.push({ sid: typeof s.Sid === 'string' && s.Sid ? s.Sid : `#${i + 1}`, conditional: !!s.Condition });
  });
  return out;
}

export function bucketChecks(f: BucketFacts, mode?: CredentialMode): BucketCheck[] {
  const out: BucketCheck[] = [];
  const add = (id: string, status: CheckStatus, message: string, fix = '', isPublic = false) => out.push({ id, status, message, fix, public: isPublic });
  const b = f.bucket;
  const repoPrefix = f.prefix;

  // ---- public access ----
  const pab = f.publicAccessBlock;
  if (!pab.ok) out.push(unreadable('block_public_access', 'Block Public Access (bucket)', pab, 's3:GetBucketPublicAccessBlock', true));
  else if (!pab.value) add('block_public_access', 'fail', 'Block Public Access (bucket): not configured, so nothing stops a public policy or ACL', PAB_FIX(b), true);
  else if (pabOff(pab.value).length) add('block_public_access', 'fail', `Block Public Access (bucket): ${pabOff(pab.value).join(', ')} off`, PAB_FIX(b), true);
  else add('block_public_access', 'ok', 'Block Public Access (bucket): all four settings on', '', true);

  const acc = f.accountPublicAccessBlock;
  if (!acc.ok) add('account_block_public_access', 'warn', `Block Public Access (account): ${acc.error}`, acc.denied ? 'allow s3:GetAccountPublicAccessBlock to the checking credential, or look in the S3 console (Block Public Access settings for this account)' : 'look in the S3 console (Block Public Access settings for this account)', true);
  else if (!acc.value.block || pabOff(acc.value.block).length) {
    const off = acc.value.block ? `${pabOff(acc.value.block).join(', ')} off` : 'not configured';
    add('account_block_public_access', 'warn', `Block Public Access (account ${acc.value.account}): ${off}; only the bucket's settings protect it`, `aws s3control put-public-access-block --account-id ${acc.value.account} --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true`, true);
  } else add('account_block_public_access', 'ok', `Block Public Access (account ${acc.value.account}): all four settings on`, '', true);

  const ps = f.policyPublic;
  if (!ps.ok) out.push(unreadable('policy_status', 'bucket policy status', ps, 's3:GetBucketPolicyStatus', true));
  else if (ps.value === null) add('policy_status', 'ok', 'bucket policy: none (nothing public through a policy)', '', true);
  else if (ps.value) add('policy_status', 'fail', 'bucket policy: S3 says it makes the bucket PUBLIC (GetBucketPolicyStatus IsPublic)', `remove the statements granting "*" (aws s3api get-bucket-policy --bucket ${b}), and turn Block Public Access on`, true);
  else add('policy_status', 'ok', 'bucket policy: not public (GetBucketPolicyStatus)', '', true);

  const pol = f.policy;
  if (!pol.ok) out.push(unreadable('policy_principals', 'bucket policy statements', pol, 's3:GetBucketPolicy', true));
  else if (pol.value !== null) {
    const stars = publicPrincipalStatements(pol.value);
    if (stars === null) add('policy_principals', 'warn', 'bucket policy: not valid JSON, could not be read through', `look at it: aws s3api get-bucket-policy --bucket ${b}`, true);
    else if (stars.some((s) => !s.conditional)) add('policy_principals', 'fail', `bucket policy: statement ${stars.filter((s) => !s.conditional).map((s) => s.sid).join(', ')} allows Principal "*" without a condition`, 'remove it or name the principals (an account or role ARN)', true);
    else if (stars.length) add('policy_principals', 'warn', `bucket policy: statement ${stars.map((s) => s.sid).join(', ')} allows Principal "*" under a condition`, 'make sure the condition limits it to your account or network (aws:PrincipalAccount, aws:SourceVpce)', true);
    else add('policy_principals', 'ok', 'bucket policy: no statement allows Principal "*"', '', true);
  }

  const acl = f.acl;
  if (!acl.ok) out.push(unreadable('acl', 'bucket ACL', acl, 's3:GetBucketAcl', true));
  else {
    const pub = acl.value.filter((g) => /\/groups\/global\/(AllUsers|AuthenticatedUsers)$/.test(g.grantee));
    if (pub.length) add('acl', 'fail', `bucket ACL: grants ${pub.map((g) => `${g.permission} to ${g.grantee.replace(/.*\//, '')}`).join(', ')}`, `aws s3api put-bucket-acl --bucket ${b} --acl private, then set Object Ownership to BucketOwnerEnforced`, true);
    else add('acl', 'ok', 'bucket ACL: no public grants', '', true);
  }

  const own = f.ownership;
  if (!own.ok) out.push(unreadable('object_ownership', 'Object Ownership', own, 's3:GetBucketOwnershipControls', true));
  else if (own.value === 'BucketOwnerEnforced') add('object_ownership', 'ok', 'Object Ownership: BucketOwnerEnforced (ACLs disabled)', '', true);
  else add('object_ownership', 'warn', `Object Ownership: ${own.value ?? 'not set'}; ACLs still apply, so an object could be made public by its ACL`, `aws s3api put-bucket-ownership-controls --bucket ${b} --ownership-controls Rules=[{ObjectOwnership=BucketOwnerEnforced}]`, true);

  // ---- encryption, versioning, Object Lock ----
  const enc = f.encryption;
  if (!enc.ok) out.push(unreadable('encryption', 'default encryption', enc, 's3:GetEncryptionConfiguration', false));
  else if (!enc.value?.length) add('encryption', 'warn', 'default encryption: none (tsbak encrypts everything itself; this is defence in depth)', `aws s3api put-bucket-encryption --bucket ${b} --server-side-encryption-configuration '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'`);
  else add('encryption', 'ok', `default encryption: ${enc.value.map((e) => (e.algorithm === 'AES256' ? 'SSE-S3 (AES256)' : `${e.algorithm}${e.kmsKey ? ` key ${e.kmsKey}` : ''}`)).join(', ')}`);

  const ver = f.versioning;
  const lock = f.objectLock;
  if (!lock.ok) out.push(unreadable('object_lock', 'Object Lock', lock, 's3:GetBucketObjectLockConfiguration', false));
  else if (lock.value?.enabled) {
    const l = lock.value;
    const period = l.days ? `${l.days} days` : l.years ? `${l.years} years` : null;
    add('object_lock', 'ok', `Object Lock: enabled; default retention ${l.mode && period ? `${l.mode} ${period}` : 'none (tsbak-write --lock-until/--lock-days sets it per object)'}`, l.mode === 'COMPLIANCE' ? 'COMPLIANCE retention cannot be shortened by anyone: locked packs cannot be pruned or repacked until it ends' : '');
  } else add('object_lock', 'ok', 'Object Lock: not enabled (only a new bucket can have it; needed for tsbak-write --lock-until)');
  if (!ver.ok) out.push(unreadable('versioning', 'versioning', ver, 's3:GetBucketVersioning', false));
  else if (ver.value.status === 'Enabled') {
    const lc = f.lifecycle.ok ? f.lifecycle.value ?? [] : [];
    const bounded = lc.some((r) => ruleTouchesRepo(r, repoPrefix) && r.noncurrentExpirationDays !== null);
    add('versioning', bounded ? 'ok' : 'warn', `versioning: enabled${ver.value.mfaDelete === 'Enabled' ? ', MFA delete on' : ''}: deleted objects stay as noncurrent versions${bounded ? ', expired by a lifecycle rule' : ' and are paid for until removed'}`, bounded ? '' : 'add a lifecycle rule with NoncurrentVersionExpiration (e.g. 30 days) so that prune frees space');
  } else add('versioning', lock.ok && lock.value?.enabled ? 'ok' : 'warn', `versioning: ${ver.value.status === 'Suspended' ? 'suspended' : 'off'}: a credential that may delete can destroy backups for good`, 'keep delete on the admin credential only (tsbak s3 policy --mode backup), or enable versioning (aws s3api put-bucket-versioning)');

  // ---- lifecycle ----
  const lc = f.lifecycle;
  if (!lc.ok) out.push(unreadable('lifecycle', 'lifecycle rules', lc, 's3:GetLifecycleConfiguration', false));
  else {
    const rules = lc.value ?? [];
    const cold: string[] = [];
    const slow: string[] = [];
    for (const r of rules) {
      for (const h of HOT) {
        if (!ruleApplies(r, repoPrefix + h.name)) continue;
        for (const t of r.transitions) {
          const what = `rule ${r.id || '(no id)'} moves ${h.what} to ${t.storageClass}${t.days !== null ? ` after ${t.days} days` : ''}${r.sized ? ' (objects of some sizes)' : ''}`;
          if (t.storageClass === 'GLACIER' || t.storageClass === 'DEEP_ARCHIVE') cold.push(what);
          else if (INSTANT.has(t.storageClass) && t.storageClass !== 'STANDARD') slow.push(what);
          else cold.push(what);
        }
      }
    }
    if (cold.length) add('lifecycle_hot_objects', 'fail', `lifecycle: ${cold.join('; ')}: backups, restores and mounts need them readable at once`, `limit the rule to ${repoPrefix}${packPrefix('data')} (tsbak puts data packs in their class itself: init --data-class)`);
    else if (slow.length) add('lifecycle_hot_objects', 'warn', `lifecycle: ${slow.join('; ')}: readable, but each read pays retrieval and every object a minimum duration`, `limit the rule to ${repoPrefix}${packPrefix('data')}; 'tsbak config set' chooses the class of tree packs and index files`);
    else add('lifecycle_hot_objects', 'ok', 'lifecycle: config, keys, index, snapshots and tree packs stay in their class');

    const expiring = rules.filter((r) => ruleTouchesRepo(r, repoPrefix) && (r.expirationDays !== null || r.expirationDate !== null));
    if (expiring.length) add('lifecycle_expiration', 'fail', `lifecycle: rule ${expiring.map((r) => `${r.id || '(no id)'} (${r.expirationDays !== null ? `after ${r.expirationDays} days` : `on ${r.expirationDate}`})`).join(', ')} deletes repository objects: snapshots would lose their data`, `remove the Expiration from rules covering ${repoPrefix || 'the bucket'}; remove old snapshots with tsbak forget --prune`);
    else add('lifecycle_expiration', 'ok', 'lifecycle: no rule expires repository objects');

    const abort = rules.filter((r) => r.abortMultipartDays !== null && r.enabled && !r.tagged && !r.sized && repoPrefix.startsWith(r.prefix));
    if (abort.length) add('lifecycle_multipart', 'ok', `lifecycle: incomplete multipart uploads are aborted after ${Math.min(...abort.map((r) => r.abortMultipartDays!))} days (rule ${abort.map((r) => r.id || '(no id)').join(', ')})`);
    else add('lifecycle_multipart', 'warn', 'lifecycle: no rule aborts incomplete multipart uploads; the parts of an interrupted upload are paid for until tsbak prune removes them', `add a rule with AbortIncompleteMultipartUpload DaysAfterInitiation=7 for ${repoPrefix || 'the whole bucket'}`);
  }

  // ---- region ----
  const reg = f.region;
  if (!reg.ok) out.push(unreadable('region', 'region', reg, 's3:GetBucketLocation', false));
  else if (!f.endpoint && reg.value !== f.clientRegion) add('region', 'warn', `region: the bucket is in ${reg.value}, requests are signed for ${f.clientRegion} and redirected`, `set AWS_REGION=${reg.value} (or --s3-region ${reg.value})`);
  else add('region', 'ok', `region: ${reg.value}${f.endpoint ? ` (endpoint ${f.endpoint})` : ''}`);

  // ---- what the credentials may do ----
  if (f.probes) {
    const p = f.probes;
    if (p.list.result === 'allowed') add('credentials_list', 'ok', 'credentials: may list the repository (s3:ListBucket)');
    else add('credentials_list', p.list.result === 'denied' ? 'fail' : 'warn', `credentials: listing the repository ${p.list.detail}`, 'every mode needs s3:ListBucket: see tsbak s3 policy');
    const who = mode ? `a ${mode} credential` : 'the credentials';
    if (p.delete.result === 'allowed') {
      if (mode === 'admin') add('credentials_delete', 'ok', 'credentials: may delete objects (admin: forget, prune)');
      else add('credentials_delete', 'warn', `credentials: may delete objects (probed with a name that does not exist)${mode ? `: too much for ${who}` : ''}; whoever holds them can destroy the backups`, `give backup machines a credential without s3:DeleteObject: tsbak s3 policy s3://${b}/${repoPrefix} --mode backup`);
    } else if (p.delete.result === 'denied') add('credentials_delete', mode === 'admin' ? 'warn' : 'ok', `credentials: may not delete objects${mode === 'admin' ? ': forget and prune will fail' : ''}`, mode === 'admin' ? 'tsbak s3 policy --mode admin' : '');
    else add('credentials_delete', p.delete.result === 'skipped' ? 'ok' : 'warn', `credentials: delete ${p.delete.detail}`);
    if (p.putAcl.result === 'allowed') add('credentials_acl', 'warn', 'credentials: may change object ACLs (s3:PutObjectAcl), which tsbak never does', 'remove s3:PutObjectAcl from their policy (tsbak s3 policy denies it)');
    else add('credentials_acl', p.putAcl.result === 'error' ? 'warn' : 'ok', `credentials: object ACL change ${p.putAcl.detail}`);
  }
  return out;
}

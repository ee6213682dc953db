// The account-level S3 Block Public Access, where the credentials may read it: the account
// id from STS GetCallerIdentity, then S3 Control's GetPublicAccessBlock. Two signed HTTPS
// requests (SigV4 from @smithy/signature-v4, which client-s3 is built on) rather than two
// more SDK clients. Endpoints: AWS_ENDPOINT_URL_STS and AWS_ENDPOINT_URL_S3_CONTROL when
// set (the dev server answers both); not tried when S3 itself is a custom endpoint without
// them, since such a server has no AWS account.

import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';

export interface PublicAccessBlock {
  blockPublicAcls: boolean;
  ignorePublicAcls: boolean;
  blockPublicPolicy: boolean;
  restrictPublicBuckets: boolean;
}

type AccountRead = { ok: true; value: { account: string; block: PublicAccessBlock | null } } | { ok: false; denied: boolean; error: string };

interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** SHA-256 (or its HMAC) in the shape SignatureV4 wants. */
class Sha256 {
  private readonly h: Hash | Hmac;
  constructor(secret?: string | Uint8Array) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', secret);
  }
  update(data: string | Uint8Array): void {
    this.h.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
}

async function signedRequest(o: { url: URL; method: string; service: string; region: string; credentials: Credentials; headers?: Record<string, string>; body?: string }): Promise<{ status: number; body: string }> {
  const signer = new SignatureV4({ credentials: o.credentials, region: o.region, service: o.service, sha256: Sha256 as never });
  const headers: Record<string, string> = { host: o.url.host, ...(o.headers ?? {}) };
  if (o.body !== undefined) headers['content-length'] = String(Buffer.byteLength(o.body));
  const query: Record<string, string> = {};
  o.url.searchParams.forEach((v, k) => (query[k] = v));
  const signed = await signer.sign({ method: o.method, protocol: o.url.protocol, hostname: o.url.hostname, ...(o.url.port ? { port: Number(o.url.port) } : {}), path: o.url.pathname, query, headers, ...(o.body !== undefined ? { body: o.body } : {}) });
  const lib = o.url.protocol === 'http:' ? http : https;
  return new Promise((resolve, reject) => {
    const req = lib.request(o.url, { method: o.method, headers: signed.headers, agent: false, timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${o.url.host} within 15 s`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

const tag = (xml: string, name: string): string | undefined => new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
const errorCode = (xml: string, status: number): string => tag(xml, 'Code') ?? `HTTP ${status}`;

export async function accountPublicAccessBlock(o: { credentials: () => Promise<Credentials>; region: string; s3Endpoint: string | null }): Promise<AccountRead> {
  const stsEndpoint = process.env.AWS_ENDPOINT_URL_STS || (o.s3Endpoint ? null : `https://sts.${o.region}.amazonaws.com`);
  if (!stsEndpoint) return { ok: false, denied: false, error: 'not read: S3 is a custom endpoint (no AWS account; set AWS_ENDPOINT_URL_STS and AWS_ENDPOINT_URL_S3_CONTROL to read it there)' };
  let credentials: Credentials;
  try {
    credentials = await o.credentials();
  } catch (e) {
    return { ok: false, denied: false, error: `no credentials: ${(e as Error).message}` };
  }
  try {
    const sts = await signedRequest({
      url: new URL(stsEndpoint),
      method: 'POST',
      service: 'sts',
      region: o.region,
      credentials,
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body: 'Action=GetCallerIdentity&Version=2011-06-15',
    });
    const account = tag(sts.body, 'Account');
    if (sts.status !== 200 || !account || !/^\d{12}$/.test(account)) return { ok: false, denied: sts.status === 403, error: `STS GetCallerIdentity: ${errorCode(sts.body, sts.status)}` };
    const base = process.env.AWS_ENDPOINT_URL_S3_CONTROL || `https://${account}.s3-control.${o.region}.amazonaws.com`;
    const url = new URL('/v20180820/configuration/publicAccessBlock', base);
    const r = await signedRequest({ url, method: 'GET', service: 's3', region: o.region, credentials, headers: { 'x-amz-account-id': account } });
    if (r.status === 404 && errorCode(r.body, r.status) === 'NoSuchPublicAccessBlockConfiguration') return { ok: true, value: { account, block: null } };
    if (r.status !== 200) return { ok: false, denied: r.status === 403, error: `S3 Control GetPublicAccessBlock (account ${account}): ${errorCode(r.body, r.status)}` };
    const on = (n: string) => tag(r.body, n) === 'true';
    return { ok: true, value: { account, block: { blockPublicAcls: on('BlockPublicAcls'), ignorePublicAcls: on('IgnorePublicAcls'), blockPublicPolicy: on('BlockPublicPolicy'), restrictPublicBuckets: on('RestrictPublicBuckets') } } };
  } catch (e) {
    return { ok: false, denied: false, error: `cannot reach STS or S3 Control: ${(e as Error).message}` };
  }
}

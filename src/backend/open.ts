// Repository address -> Backend. `s3://bucket/prefix` or a bare bucket name is S3; a path
// containing '/' (./repo, /srv/repo) is a local directory; `sftp://user@host[:port]/path` a
// directory on an SSH server.
import type { Backend } from './backend.js';
import { LocalBackend } from './local.js';
import { TsbakError } from '../errors.js';
import { crashPointFromEnv, withCrashPoint } from './crash-point.js';
import type { SftpOptions } from './sftp-auth.js';

export type { SftpOptions } from './sftp-auth.js';

export interface S3Options {
  endpoint?: string;
  region?: string;
  pathStyle?: boolean;
  profile?: string;
}

export function isLocalAddress(spec: string): boolean {
  return spec.includes('/') && !/^[a-z0-9]+:\/\//i.test(spec);
}

export async function openBackend(spec: string, s3: S3Options = {}, sftp: SftpOptions = {}): Promise<Backend> {
  const backend = await backendFor(spec, s3, sftp);
  const crash = crashPointFromEnv();
  return crash ? withCrashPoint(backend, crash) : backend;
}

async function backendFor(spec: string, s3: S3Options, sftp: SftpOptions): Promise<Backend> {
  if (isLocalAddress(spec) || spec === '.' || spec === '..') return new LocalBackend(spec);
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(spec);
  if (m || /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(spec)) {
    const bucket = m ? m[1]! : spec;
    const prefix = m ? m[2]!.replace(/\/+$/, '') : '';
    // Loaded on demand: local repositories never pay for the AWS SDK's start-up time.
    const { S3Backend } = await import('./s3.js');
    const { withRetry } = await import('./retry.js');
    return withRetry(new S3Backend({ bucket, prefix, region: s3.region, endpoint: s3.endpoint, forcePathStyle: s3.pathStyle, profile: s3.profile }));
  }
  if (/^sftp:\/\//i.test(spec)) {
    // Loaded on demand, like S3: only SFTP repositories load ssh2.
    const { SftpBackend, parseSftpUrl } = await import('./sftp.js');
    const { sftpCredentials } = await import('./sftp-auth.js');
    const { withRetry } = await import('./retry.js');
    const { userInfo } = await import('node:os');
    const where = parseSftpUrl(spec, process.env.USER || userInfo().username);
    const connections = Number(process.env.TSBAK_SFTP_CONNECTIONS || 2);
    if (!Number.isInteger(connections) || connections < 1 || connections > 16) throw new TsbakError('USAGE', `TSBAK_SFTP_CONNECTIONS=${process.env.TSBAK_SFTP_CONNECTIONS}: give a number of SSH connections from 1 to 16`);
    // TSBAK_SFTP_WRITE_WINDOW: bytes of writes in flight per connection (for measuring; see sftp-write-window.ts).
    const writeWindow = process.env.TSBAK_SFTP_WRITE_WINDOW ? Number(process.env.TSBAK_SFTP_WRITE_WINDOW) : undefined;
    if (writeWindow !== undefined && (!Number.isSafeInteger(writeWindow) || writeWindow < 1)) throw new TsbakError('USAGE', `TSBAK_SFTP_WRITE_WINDOW=${process.env.TSBAK_SFTP_WRITE_WINDOW}: give a number of bytes (e.g. 524288)`);
    return withRetry(new SftpBackend({ ...where, credentials: sftpCredentials(sftp), connections, onWarning: sftp.onWarning, ...(writeWindow !== undefined ? { writeWindow } : {}) }));
  }
  throw new TsbakError('USAGE', `${spec} is not a repository address: use a path (./repo, /srv/repo), s3://bucket/prefix, a bucket name or sftp://user@host/path`);
}

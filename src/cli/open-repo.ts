// Opening the repository named on the command line with the credentials given.
import { readFileSync } from 'node:fs';
import { programName } from './output.js';
import * as path from 'node:path';
import { isLocalAddress, openBackend, type S3Options, type SftpOptions } from '../backend/open.js';
import type { Backend } from '../backend/backend.js';
import { Repository } from '../repo/repository.js';
import { isWriterKeyFile } from '../repo/keys.js';
import { TsbakError } from '../errors.js';
import { attachColdStorage } from '../glacier/cold-store.js';
import { defaultCacheRoot } from '../repo/cache-root.js';
import { getPassword, givenPassword, type SecretArgs } from './secrets.js';
import { parseSize } from './size.js';
import { makeDirs } from '../platform/make-dirs.js';

export interface RepoArgs extends SecretArgs {
  repo: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  s3Profile?: string;
  /** sftp:// repositories: --sftp-key, --sftp-key-passphrase-file, --sftp-known-hosts. */
  sftpKey?: string;
  sftpKeyPassphraseFile?: string;
  sftpKnownHosts?: string;
  /** Root of the local cache (the writer's cache, the restore journal and the cold-pack cache): <dir>/<repo id>/... */
  cacheDir?: string;
  /** Bound of the disk cache of packs fetched from cold storage, e.g. "20G" (default 10G). */
  packCacheSize?: string;
  /** Bound of the disk cache of trees, e.g. "2G" (default 1G). */
  treeCacheSize?: string;
  /** --no-cache: no local cache of snapshots or trees (cold storage keeps its own). */
  noCache?: boolean;
  /** --trust-writers (backup): dedup against every key's index entries (also TSBAK_TRUST_WRITERS=1). */
  trustWriters?: boolean;
}

export function s3Options(a: RepoArgs): S3Options {
  return { endpoint: a.s3Endpoint, region: a.s3Region, pathStyle: a.s3PathStyle, profile: a.s3Profile };
}

export function sftpOptions(a: RepoArgs): SftpOptions {
  return {
    key: a.sftpKey,
    keyPassphraseFile: a.sftpKeyPassphraseFile,
    knownHosts: a.sftpKnownHosts,
    onWarning: (m) => process.stderr.write(`${programName}: warning: ${m}\n`),
  };
}

/**
 * Opens the repository; for backends with cold storage classes (S3) it also attaches cold
 * storage (src/glacier: restore tracker, disk cache of packs) with the cache options given.
 * Change them later with repo.configureCold({ cacheDir, cacheBytes, tier, days, pollMs }).
 * The index files are fetched while the key opens, unless `index: false` (commands that
 * never load the index: snapshots, key).
 */
export async function openRepo(a: RepoArgs, opts: { index?: boolean; wrapBackend?: (b: Backend) => Promise<Backend> } = {}): Promise<Repository> {
  if (a.cacheDir !== undefined && !a.noCache) await checkCacheDir(a.cacheDir);
  const repo = await openRepoOnly(a, opts.index === false ? 'keys' : 'index', opts.wrapBackend);
  repo.onWarning = (m) => process.stderr.write(`${programName}: warning: ${m}\n`);
  repo.trustWriters = !!a.trustWriters || process.env.TSBAK_TRUST_WRITERS === '1';
  repo.useSnapshotCache(a.noCache ? null : a.cacheDir ?? defaultCacheRoot());
  // Trees of a repository on a local file system are read as fast from where they are.
  const treeCacheBytes = a.treeCacheSize !== undefined ? parseSize(a.treeCacheSize, '--tree-cache-size') : undefined;
  repo.useTreeCache(a.noCache || repo.backend.createObjectFile ? null : a.cacheDir ?? defaultCacheRoot(), treeCacheBytes);
  attachColdStorage(repo, { cacheDir: a.cacheDir, cacheBytes: a.packCacheSize !== undefined ? parseSize(a.packCacheSize, '--pack-cache-size') : undefined });
  return repo;
}

/** A --cache-dir that cannot be made fails the command at once (the caches would otherwise go quietly unused). */
async function checkCacheDir(dir: string): Promise<void> {
  try {
    await makeDirs(dir, 0o700);
  } catch (e: any) {
    throw new TsbakError('USAGE', `--cache-dir ${dir}: ${e.code === 'ENOENT' || e.code === 'EEXIST' ? 'its file system refuses new directories there' : (e.code ?? e.message)}; choose another directory`);
  }
}

/** Warnings of opening (an unsigned config), on stderr, prefixed by the program's name. */
function openWarning(message: string): void {
  process.stderr.write(`${path.basename(process.argv[1] ?? 'tsbak').replace(/^entry-|\.js$/g, '')}: warning: ${message}\n`);
}

/**
 * The backend the repository address names. A bare name (`relrepo`) is an S3 bucket, as it
 * always was; one line on stderr says so, since a restic user may mean a local directory.
 */
export async function openRepoBackend(a: RepoArgs): Promise<Backend> {
  if (!isLocalAddress(a.repo) && a.repo !== '.' && a.repo !== '..' && !a.repo.includes('://')) {
    process.stderr.write(`${programName}: '${a.repo}' is taken as the S3 bucket s3://${a.repo} (write ./${a.repo} for a local directory, or s3://${a.repo} to silence this)\n`);
  }
  return openBackend(a.repo, s3Options(a), sftpOptions(a));
}

async function openRepoOnly(a: RepoArgs, warmStart: 'keys' | 'index', wrapBackend?: (b: Backend) => Promise<Backend>): Promise<Repository> {
  // wrapBackend: checks and wrappers that must come before opening writes anything (tsbak-write --lock-days).
  const backend = wrapBackend ? await wrapBackend(await openRepoBackend(a)) : await openRepoBackend(a);
  const common = { cacheRoot: a.noCache ? null : a.cacheDir ?? defaultCacheRoot(), onWarning: openWarning, warmStart };
  if (a.keyFile) {
    let content: unknown;
    try {
      content = JSON.parse(readFileSync(a.keyFile, 'utf8'));
    } catch (e: any) {
      throw new TsbakError('USAGE', `cannot read key file ${a.keyFile}: ${e.code ?? 'not JSON'}`);
    }
    if (!isWriterKeyFile(content)) throw new TsbakError('USAGE', `${a.keyFile} is not a tsbak key file`);
    const password = content.wrapped ? await getPassword(a, `Passphrase for ${a.keyFile}: `) : givenPassword(a);
    return Repository.open(backend, { ...common, keyFile: { path: a.keyFile, content }, password });
  }
  return Repository.open(backend, { ...common, password: await getPassword(a) });
}

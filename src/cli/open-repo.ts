// Opening the repository named on the command line with the credentials given.
import { readFileSync } from 'node:fs';
import { openBackend, type S3Options } from '../backend/open.js';
import { Repository } from '../repo/repository.js';
import { isWriterKeyFile } from '../repo/keys.js';
import { TsbakError } from '../errors.js';
import { getPassword, givenPassword, type SecretArgs } from './secrets.js';

export interface RepoArgs extends SecretArgs {
  repo: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  s3Profile?: string;
}

export function s3Options(a: RepoArgs): S3Options {
  return { endpoint: a.s3Endpoint, region: a.s3Region, pathStyle: a.s3PathStyle, profile: a.s3Profile };
}

export async function openRepo(a: RepoArgs): Promise<Repository> {
  const backend = await openBackend(a.repo, s3Options(a));
  if (a.keyFile) {
    let content: unknown;
    try {
      content = JSON.parse(readFileSync(a.keyFile, 'utf8'));
    } catch (e: any) {
      throw new TsbakError('USAGE', `cannot read key file ${a.keyFile}: ${e.code ?? 'not JSON'}`);
    }
    if (!isWriterKeyFile(content)) throw new TsbakError('USAGE', `${a.keyFile} is not a tsbak key file`);
    const password = content.wrapped ? await getPassword(a, `Passphrase for ${a.keyFile}: `) : givenPassword(a);
    return Repository.open(backend, { keyFile: { path: a.keyFile, content }, password });
  }
  return Repository.open(backend, { password: await getPassword(a) });
}

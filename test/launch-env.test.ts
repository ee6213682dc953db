// The launchers (bin/tsbak, bin/tsbak-write, bin/launch-env.sh): NODE_EXTRA_CA_CERTS reaches
// node only when the command may use TLS (an S3 repository), and the launchers find the
// program by their own path or through a symlink. Node warns at start when that variable
// names a file it cannot load: the warning shows whether node was given it.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import * as path from 'node:path';
import { BIN, testEnv } from './lib/cli.js';
import { tempDir } from './lib/temp.js';

const CA = '/nonexistent/tsbak-test-ca.pem';

function warned(bin: string, args: string[], env: Record<string, string> = {}): boolean {
  const r = spawnSync(bin, args, { env: testEnv({ NODE_EXTRA_CA_CERTS: CA, ...env }), encoding: 'utf8', timeout: 60_000 });
  return r.stderr.includes('extra certs');
}

t.test('a local or SFTP repository: node starts without the extra certificates', async (t) => {
  const dir = tempDir(t);
  t.notOk(warned(BIN('tsbak-write'), [path.join(dir, 'none'), dir, '--json']), 'tsbak-write, local path');
  t.notOk(warned(BIN('tsbak'), ['snapshots', path.join(dir, 'none')]), 'tsbak snapshots, local path');
  t.notOk(warned(BIN('tsbak'), ['restore', path.join(dir, 'none'), 'latest', '--target', dir]), 'tsbak restore, local path');
  t.notOk(warned(BIN('tsbak'), ['snapshots', 'sftp://127.0.0.1:1/none', '--help']), 'an sftp:// repository');
});

t.test('anything that may be S3 keeps them', async (t) => {
  t.ok(warned(BIN('tsbak-write'), ['s3://bucket/prefix', '--help']), 's3:// repository');
  t.ok(warned(BIN('tsbak-write'), ['bucket', '--help']), 'a bare bucket name');
  t.ok(warned(BIN('tsbak-write'), ['--help']), 'an option first');
  t.ok(warned(BIN('tsbak-write'), ['/x/repo', '/y', '--help'], { TSBAK_REPOSITORY: 's3://b' }), 'TSBAK_REPOSITORY on S3');
  t.ok(warned(BIN('tsbak-write'), ['/x/repo', '/y', '--help'], { TSBAK_REPOSITORY: 'bucket' }), 'TSBAK_REPOSITORY a bucket');
  t.ok(warned(BIN('tsbak-write'), ['/x/repo', '--repo', 'b', '--help']), '--repo given');
  t.ok(warned(BIN('tsbak-write'), ['/x/repo', '-rb', '--help']), '-r given');
  t.ok(warned(BIN('tsbak-write'), ['/x/repo', '--exclude', 's3://x', '--help']), 's3:// anywhere');
  t.ok(warned(BIN('tsbak'), ['s3', 'check', '--help']), 'tsbak s3');
  t.ok(warned(BIN('tsbak'), ['snapshots', 'bucket', '--help']), 'tsbak with a bucket');
  t.ok(warned(BIN('tsbak'), ['version']), 'no repository');
});

t.test('through a symlink, as npm installs them', async (t) => {
  const dir = tempDir(t);
  const link = path.join(dir, 'tsbak');
  symlinkSync(BIN('tsbak'), link);
  const r = spawnSync(link, ['version'], { env: testEnv(), encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /\d+\.\d+/);
  t.notOk(warned(link, ['snapshots', path.join(dir, 'none')]), 'and the variable dropped the same way');
});

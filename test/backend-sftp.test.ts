// The SFTP backend against a real OpenSSH sshd on loopback (test/lib/sshd.ts): the shared
// backend contract, addresses, host keys (plain, hashed, [host]:port, wildcards; unknown,
// changed and revoked keys refused with the fingerprint), key files and passphrases,
// immutable writes under a race, and connections dropped in the middle of transfers.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { SftpBackend, parseSftpUrl } from '../src/backend/sftp.js';
import { sftpCredentials } from '../src/backend/sftp-auth.js';
import { openBackend } from '../src/backend/open.js';
import { withRetry } from '../src/backend/retry.js';
import { fingerprint, parseKnownHosts, patternsMatch, hostKeyName } from '../src/backend/known-hosts.js';
import type { Backend } from '../src/backend/backend.js';
import { backendContract } from './lib/backend-contract.js';
import { sshdOrSkip } from './lib/sshd.js';
import { whenFiles } from './lib/file-events.js';

/** No agent and no ~/.ssh of the user running the tests: only what a test names. */
const ENV = { HOME: '/nonexistent' };

t.test('addresses', async (t) => {
  t.same(parseSftpUrl('sftp://alice@host.example:2222/srv/backup', 'me'), { host: 'host.example', port: 2222, user: 'alice', path: '/srv/backup' });
  t.same(parseSftpUrl('sftp://host.example/srv/backup/', 'me'), { host: 'host.example', port: 22, user: 'me', path: '/srv/backup' }, 'user defaults, port 22, trailing slash dropped');
  t.same(parseSftpUrl('sftp://bob@[::1]:2200/r', 'me'), { host: '::1', port: 2200, user: 'bob', path: '/r' }, 'IPv6');
  t.same(parseSftpUrl('sftp://bob@h/~/backups/r', 'me'), { host: 'h', port: 22, user: 'bob', path: 'backups/r' }, '/~/ is under the login directory');
  t.same(parseSftpUrl('sftp://bob@h//srv/r', 'me').path, '/srv/r', "restic's // form is absolute too");
  t.same(parseSftpUrl('sftp://b%40x@h/a%20b', 'me'), { host: 'h', port: 22, user: 'b@x', path: '/a b' }, 'percent-decoded');
  t.throws(() => parseSftpUrl('sftp://bob:secret@h/r', 'me'), /password in the address is not accepted/);
  t.throws(() => parseSftpUrl('sftp://bob@h', 'me'), /name the repository's directory/);
  t.equal(parseSftpUrl('sftp://bob@h/a/../b', 'me').path, '/b', 'dot segments resolved as in any URL');
  t.throws(() => parseSftpUrl('sftp://bob@h/~/..%2Fx', 'me'), /may not contain '\.\.'/, 'never above the login directory');
  t.throws(() => parseSftpUrl('sftp://bob@h/r?x=1', 'me'), /no \?query/);
});

t.test('known_hosts patterns', async (t) => {
  t.equal(hostKeyName('Example.COM', 22), 'example.com');
  t.equal(hostKeyName('127.0.0.1', 2222), '[127.0.0.1]:2222');
  t.ok(patternsMatch('a.example,b.example', 'b.example'));
  t.ok(patternsMatch('*.example', 'x.example'));
  t.notOk(patternsMatch('*.example,!bad.example', 'bad.example'), 'negation wins');
  t.ok(patternsMatch('[127.0.0.1]:2222', '[127.0.0.1]:2222'));
  t.notOk(patternsMatch('127.0.0.1', '[127.0.0.1]:2222'), 'a port other than 22 needs the [host]:port form');
  t.ok(patternsMatch('[10.0.0.?]:*', '[10.0.0.7]:2222'));
  const line = 'host ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
  t.equal(parseKnownHosts(`# comment\n\n${line} comment\n@cert-authority *.x ${line.slice(5)}\n`, 'f').length, 1, 'comments, blank lines and CA lines skipped');
  t.equal(parseKnownHosts('host ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n', 'f').length, 0, 'a type that disagrees with the key blob is skipped');
});

t.test('against a real sshd', async (t) => {
  const sshd = await sshdOrSkip(t);
  if (!sshd) return;
  let n = 0;
  const repoDir = () => path.join(sshd.dir, `repo-${n++}`);
  const creds = (extra: Parameters<typeof sftpCredentials>[0] = {}) => sftpCredentials({ key: sshd.userKey, knownHosts: sshd.knownHosts, ...extra }, ENV);
  const make = (t: { teardown(f: () => unknown): void }, dir = repoDir(), extra: Partial<ConstructorParameters<typeof SftpBackend>[0]> = {}): SftpBackend => {
    const b = new SftpBackend({ host: sshd.host, port: sshd.port, user: sshd.user, path: dir, credentials: creds(), ...extra });
    t.teardown(() => b.close());
    return b;
  };

  t.test('contract, the backend alone', async (t) => backendContract(t, async (t) => make(t)));
  t.test('contract, as openBackend makes it (sftp:// address, withRetry)', async (t) =>
    backendContract(t, async (t) => {
      const b = await openBackend(sshd.url(repoDir()), {}, { key: sshd.userKey, knownHosts: sshd.knownHosts });
      t.teardown(() => b.close?.());
      return b;
    }),
  );

  t.test('objects are files under the path; temp files are never listed and never left', async (t) => {
    const dir = repoDir();
    const b = make(t, dir);
    await b.put('packs/data/ab/abcd', Buffer.from('pack bytes'));
    t.equal(readFileSync(path.join(dir, 'packs/data/ab/abcd'), 'utf8'), 'pack bytes');
    t.equal(statSync(path.join(dir, 'packs/data/ab/abcd')).mode & 0o777, 0o600, 'private to the user');
    writeFileSync(path.join(dir, 'packs/data/ab/.tmp-0011223344556677'), 'a killed writer');
    const names: string[] = [];
    for await (const o of b.list('packs/')) names.push(o.name);
    t.same(names, ['packs/data/ab/abcd']);
    const unfinished = [];
    for await (const u of b.listUnfinished()) unfinished.push(u);
    t.same(unfinished.map((u) => [u.name, u.size]), [['packs/data/ab/.tmp-0011223344556677', 15]]);
    await b.removeUnfinished(unfinished[0]!);
    t.same(readdirSync(path.join(dir, 'packs/data/ab')), ['abcd']);
    await t.rejects(b.removeUnfinished({ name: 'packs/data/ab/abcd' }), /not a temp file/);
  });

  t.test('racing puts of one name: one wins, the others are refused, nothing overwritten', async (t) => {
    const dir = repoDir();
    const b = make(t, dir);
    const c = make(t, dir);
    const bodies = Array.from({ length: 8 }, (_, i) => randomBytes(200_000 + i));
    const results = await Promise.allSettled(bodies.map((d, i) => (i % 2 ? b : c).put('index/same', d)));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    t.equal(won.length, 1, 'exactly one put succeeded');
    for (const r of results) if (r.status === 'rejected') t.match(r.reason, { code: 'BACKEND', message: /already exists; objects are never overwritten/ });
    t.same(await b.get('index/same'), bodies[won[0]!], 'the stored bytes are the winner\'s');
    t.same(readdirSync(path.join(dir, 'index')), ['same'], 'no temp file left');
  });

  t.test('uploads sharing one connection and a one-request write window: every object whole', async (t) => {
    const dir = repoDir();
    const b = make(t, dir, { connections: 1, writeWindow: 1 });
    const bodies = Array.from({ length: 6 }, (_, i) => randomBytes(700_000 + 4099 * i));
    await Promise.all(bodies.map((d, i) => b.put(`packs/data/0${i}/obj${i}`, d)));
    for (let i = 0; i < bodies.length; i++) t.ok(readFileSync(path.join(dir, `packs/data/0${i}/obj${i}`)).equals(bodies[i]!), `object ${i}`);
  });

  t.test("the server's clock", async (t) => {
    const b = make(t);
    const now = await b.now();
    t.ok(Math.abs(now.getTime() - Date.now()) < 5000, `near this machine's clock on loopback (${now.toISOString()})`);
  });

  t.test('host keys', async (t) => {
    const hostFp = fingerprint(Buffer.from(sshd.hostPublicKey.split(' ')[1]!, 'base64'));
    const sshKeygenFp = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', path.join(sshd.dir, 'host_ed25519.pub')], { encoding: 'utf8' }).stdout.split(' ')[1];
    t.equal(hostFp, sshKeygenFp, "our fingerprint is ssh-keygen's");
    const khDir = path.join(sshd.dir, `kh-${n++}`);
    mkdirSync(khDir);
    const tryWith = async (knownHostsText: string | null) => {
      const file = path.join(khDir, `known_hosts-${n++}`);
      if (knownHostsText !== null) writeFileSync(file, knownHostsText);
      const b = new SftpBackend({ host: sshd.host, port: sshd.port, user: sshd.user, path: repoDir(), credentials: sftpCredentials({ key: sshd.userKey, ...(knownHostsText !== null ? { knownHosts: file } : {}) }, ENV) });
      try {
        return await b.head('config').then(() => 'connected');
      } finally {
        await b.close();
      }
    };
    t.equal(await tryWith(`[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n`), 'connected', 'plain [host]:port entry');
    t.equal(await tryWith(`[127.0.0.*]:${sshd.port},!other ${sshd.hostPublicKey}\n`), 'connected', 'wildcard entry');
    const hashedFile = path.join(khDir, 'hashed');
    writeFileSync(hashedFile, `[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n`);
    const h = spawnSync('ssh-keygen', ['-H', '-f', hashedFile], { encoding: 'utf8' });
    t.equal(h.status, 0, `ssh-keygen -H hashes the file ${h.stderr}`);
    const hashed = readFileSync(hashedFile, 'utf8');
    t.match(hashed, /^\|1\|/, 'hashed by ssh-keygen');
    t.equal(await tryWith(hashed), 'connected', 'hashed entry (HashKnownHosts)');

    const unknown = await tryWith(null).catch((e) => e);
    t.match(unknown, { code: 'BACKEND', retryable: false, message: /host key of \[127\.0\.0\.1\]:\d+ is not known \(ssh-ed25519 key SHA256:/ }, 'no known_hosts entry: refused');
    t.ok(unknown.message.includes(hostFp), 'with the fingerprint');
    t.match(unknown.message, /ssh-keyscan -p \d+ 127\.0\.0\.1 >> ~\/\.ssh\/known_hosts/, 'and what to do');
    t.match(await tryWith(`[127.0.0.1]:${sshd.port + 1} ${sshd.hostPublicKey}\n`).catch((e) => e), /is not known/, 'an entry for another port does not count');

    const other = path.join(khDir, 'other_key');
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const otherPub = readFileSync(`${other}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    const changed = await tryWith(`# first line\n[127.0.0.1]:${sshd.port} ${otherPub}\n`).catch((e) => e);
    t.match(changed, { code: 'BACKEND', retryable: false, message: /host key of \[127\.0\.0\.1\]:\d+ has CHANGED: it offers ssh-ed25519 key SHA256:\S+, \S+:2 records another/ }, 'a changed key: refused, naming the line');
    t.ok(changed.message.includes(hostFp), 'with the new fingerprint');
    t.match(changed.message, /ssh-keygen -R '\[127\.0\.0\.1\]:\d+'/, 'and how to replace the entry');
    const revoked = await tryWith(`[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n@revoked * ${sshd.hostPublicKey}\n`).catch((e) => e);
    t.match(revoked, /marked @revoked/, 'a revoked key is refused even when listed');
  });

  t.test('keys: passphrases, refused keys', async (t) => {
    const dir = path.join(sshd.dir, `keys-${n++}`);
    mkdirSync(dir);
    const enc = path.join(dir, 'enc');
    // The same key as authorized, re-encrypted with a passphrase.
    writeFileSync(enc, readFileSync(sshd.userKey), { mode: 0o600 });
    t.equal(spawnSync('ssh-keygen', ['-p', '-q', '-N', 'horse battery', '-f', enc]).status, 0);
    writeFileSync(path.join(dir, 'pass'), 'horse battery\n');
    writeFileSync(path.join(dir, 'wrong'), 'staple\n');
    t.throws(() => sftpCredentials({ key: enc, knownHosts: sshd.knownHosts }, ENV), /SSH key \S+ is encrypted: pass --sftp-key-passphrase-file/);
    t.throws(() => sftpCredentials({ key: enc, keyPassphraseFile: path.join(dir, 'wrong'), knownHosts: sshd.knownHosts }, ENV), /cannot decrypt SSH key \S+ with the passphrase in \S+wrong: wrong passphrase/);
    t.throws(() => sftpCredentials({ key: path.join(dir, 'pass'), knownHosts: sshd.knownHosts }, ENV), /is not an SSH private key/);
    t.throws(() => sftpCredentials({ key: path.join(dir, 'missing'), knownHosts: sshd.knownHosts }, ENV), /cannot read SSH key \S+missing \(--sftp-key\): ENOENT/);
    t.throws(() => sftpCredentials({ knownHosts: path.join(dir, 'missing') }, ENV), /cannot read known_hosts file/);
    const ok = new SftpBackend({ host: sshd.host, port: sshd.port, user: sshd.user, path: repoDir(), credentials: sftpCredentials({ key: enc, keyPassphraseFile: path.join(dir, 'pass'), knownHosts: sshd.knownHosts }, ENV) });
    await ok.put('config', Buffer.from('x'));
    t.equal((await ok.head('config'))?.size, 1, 'an encrypted key with its passphrase file works');
    await ok.close();

    const stranger = path.join(dir, 'stranger');
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
    const refused = new SftpBackend({ host: sshd.host, port: sshd.port, user: sshd.user, path: repoDir(), credentials: sftpCredentials({ key: stranger, knownHosts: sshd.knownHosts }, ENV) });
    const e = await refused.head('config').catch((e) => e);
    t.match(e, { code: 'BACKEND', retryable: false, message: /refused every key offered \(\S+stranger\); add the key to ssh-agent, or pass --sftp-key FILE/ });
    await refused.close();
    const none = new SftpBackend({ host: sshd.host, port: sshd.port, user: sshd.user, path: repoDir(), credentials: sftpCredentials({ knownHosts: sshd.knownHosts }, ENV) });
    t.match(await none.head('config').catch((e) => e), /no key: SSH_AUTH_SOCK unset and no --sftp-key/);
    await none.close();
  });

  t.test('a session lost with a request in flight: the SSH worker keeps the process alive until it is answered', async (t) => {
    // In a process of its own: with nothing else to wait for, a worker let go too early ends
    // the process with the request unanswered (a backup once exited 0 that way, unsaved).
    const dir = repoDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'object'), 'x');
    const script = path.join(dir, 'lost.mjs');
    writeFileSync(
      script,
      [
        `import { ThreadedSftpSession } from ${JSON.stringify(new URL('../src/backend/sftp-thread.js', import.meta.url).href)};`,
        `import { sftpCredentials } from ${JSON.stringify(new URL('../src/backend/sftp-auth.js', import.meta.url).href)};`,
        `const s = await ThreadedSftpSession.connect({ host: ${JSON.stringify(sshd.host)}, port: ${sshd.port}, user: ${JSON.stringify(sshd.user)} }, sftpCredentials({ key: ${JSON.stringify(sshd.userKey)}, knownHosts: ${JSON.stringify(sshd.knownHosts)} }, { HOME: '/nonexistent' }));`,
        `const asked = s.stat(${JSON.stringify(path.join(dir, 'object'))}).then(() => 'answered', (e) => 'failed: ' + e.message);`,
        `s.lost(new Error('dropped by the test'));`,
        `console.log(await asked);`,
      ].join('\n'),
    );
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8' });
    t.equal(r.status, 0, `exits 0 once answered: ${r.stderr}`);
    t.match(r.stdout, /^(answered|failed: .+)\n$/, `the request was answered: ${r.stdout}`);
  });

  t.test('a dropped connection: requests in flight fail as retryable, withRetry reconnects, no temp file stays', async (t) => {
    const dir = repoDir();
    const warnings: string[] = [];
    const raw = make(t, dir, { connections: 1, onWarning: (m) => warnings.push(m) });
    const retries: string[] = [];
    const b: Backend = withRetry(raw, { baseMs: 10, onRetry: (i) => retries.push(`${i.op} ${(i.error as Error).message}`) });
    await b.put('keys/k0', Buffer.from('before'));
    // A large put, cut off while its bytes are being written.
    const big = randomBytes(48 << 20);
    const putting = b.put('packs/data/00/0000big', big);
    const tmpDir = path.join(dir, 'packs/data/00');
    // Each write to the temp file wakes a look (inotify), until it has bytes.
    await whenFiles(dir, () => existsSync(tmpDir) && readdirSync(tmpDir).some((f) => f.startsWith('.tmp-') && statSync(path.join(tmpDir, f)).size > 0), { recursive: true });
    t.ok(sshd.killSessions() > 0, 'the sessions were killed');
    await putting;
    t.ok(retries.some((r) => /^put SFTP connection to 127\.0\.0\.1:\d+ lost/.test(r)), `the put was retried after the loss (${retries.join('; ')})`);
    t.ok(warnings.some((w) => /lost .*; reconnecting/.test(w)), 'the backend said it reconnects');
    t.same(await b.get('packs/data/00/0000big'), big, 'the object is whole');
    // The temp file of the cut-off put is removed over the new connection.
    await whenFiles(tmpDir, () => readdirSync(tmpDir).every((f) => !f.startsWith('.tmp-')));
    // A large read, cut off the same way.
    const got = b.get('packs/data/00/0000big');
    sshd.killSessions();
    t.same(await got, big, 'a read cut off is read again');
    t.same(await b.get('keys/k0'), Buffer.from('before'));
  });

  t.test('the server gone: a clear, retryable error; back: it works again', async (t) => {
    const b = make(t);
    await b.put('config', Buffer.from('c'));
    await sshd.stop();
    t.teardown(() => sshd.start());
    const e = await b.get('config').catch((e) => e);
    t.match(e, { code: 'BACKEND', retryable: true, message: /SFTP connection to 127\.0\.0\.1:\d+ lost|cannot connect to SFTP server 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/ });
    const e2 = await b.get('config').catch((e) => e);
    t.match(e2, { retryable: true, message: /cannot connect to SFTP server 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/ });
    await sshd.start();
    t.equal((await b.get('config')).toString(), 'c');
  });
});

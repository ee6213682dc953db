#!/usr/bin/env node
// Throughput of the ssh2 library's SFTP client against a real sshd on loopback, next to
// OpenSSH's own sftp client on the same server: large puts and gets (16 MiB objects, the
// pack size, written as tsbak writes them: temp name, pipelined writes, rename) and the rate
// of small objects. The measurement behind the library choice in docs/DESIGN.md.
//   node scripts/bench-ssh2.mjs [MiB]       (needs `tsc` output in dist/ and openssh-server)
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import ssh2 from 'ssh2';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const { startSshd } = await import(path.join(root, 'dist/test/lib/sshd.js'));
const { removeDir } = await import(path.join(root, 'dist/test/lib/temp.js'));

const MiB = 1 << 20;
const totalMiB = Number(process.argv[2] ?? 256);
const sshd = await startSshd();
const remote = path.join(sshd.dir, 'remote');
mkdirSync(remote);

const conn = new ssh2.Client();
await new Promise((resolve, reject) => {
  conn.once('ready', resolve).once('error', reject);
  conn.connect({ host: sshd.host, port: sshd.port, username: sshd.user, privateKey: readFileSync(sshd.userKey), hostVerifier: () => true });
});
const sftp = await new Promise((resolve, reject) => conn.sftp((e, s) => (e ? reject(e) : resolve(s))));
const p = (f) => (...a) => new Promise((resolve, reject) => f.call(sftp, ...a, (e, r) => (e ? reject(e) : resolve(r))));
const open = p(sftp.open), close = p(sftp.close), rename = p(sftp.rename), unlink = p(sftp.unlink), stat = p(sftp.stat);
const write = (h, buf, off, len, pos) => new Promise((resolve, reject) => sftp.write(h, buf, off, len, pos, (e) => (e ? reject(e) : resolve())));
const read = (h, buf, off, len, pos) => new Promise((resolve, reject) => sftp.read(h, buf, off, len, pos, (e, n) => (e ? reject(e) : resolve(n))));
const CHUNK = sftp._maxWriteLen;

async function putObject(name, data) {
  const tmp = `${remote}/.tmp-${randomBytes(6).toString('hex')}`;
  const h = await open(tmp, 'wx');
  const writes = [];
  for (let off = 0; off < data.length; off += CHUNK) writes.push(write(h, data, off, Math.min(CHUNK, data.length - off), off));
  await Promise.all(writes);
  await close(h);
  await rename(tmp, `${remote}/${name}`);
}

async function getObject(name, size) {
  const h = await open(`${remote}/${name}`, 'r');
  const buf = Buffer.allocUnsafe(size);
  const reads = [];
  for (let off = 0; off < size; off += CHUNK) reads.push(read(h, buf, off, Math.min(CHUNK, size - off), off));
  await Promise.all(reads);
  await close(h);
  return buf;
}

async function timed(label, bytes, fn) {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  await fn();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  const rate = bytes ? `${(bytes / MiB / s).toFixed(0)} MiB/s` : '';
  console.log(`${label.padEnd(44)} ${s.toFixed(2).padStart(6)} s  ${rate.padStart(10)}  node CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s`);
  return s;
}

const objSize = 16 * MiB;
const n = Math.max(1, Math.round(totalMiB / 16));
const data = randomBytes(objSize);
console.log(`ssh2 ${JSON.parse(readFileSync(path.join(root, 'node_modules/ssh2/package.json'), 'utf8')).version}, sftp read/write length ${sftp._maxReadLen}/${sftp._maxWriteLen}`);
for (const inFlight of [1, 4]) {
  await timed(`ssh2 put ${n} x 16 MiB, ${inFlight} at once`, n * objSize, async () => {
    let next = 0;
    await Promise.all(Array.from({ length: inFlight }, async () => {
      for (let i; (i = next++) < n; ) await putObject(`big-${inFlight}-${i}`, data);
    }));
  });
  await timed(`ssh2 get ${n} x 16 MiB, ${inFlight} at once`, n * objSize, async () => {
    let next = 0;
    await Promise.all(Array.from({ length: inFlight }, async () => {
      for (let i; (i = next++) < n; ) {
        const b = await getObject(`big-${inFlight}-${i}`, objSize);
        if (b.length !== objSize) throw new Error('short');
      }
    }));
  });
}
const small = randomBytes(4096);
const smallN = 2000;
const sSmall = await timed(`ssh2 put ${smallN} x 4 KiB, 16 at once`, 0, async () => {
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    for (let i; (i = next++) < smallN; ) await putObject(`small-${i}`, small);
  }));
});
console.log(`  ${(smallN / sSmall).toFixed(0)} objects/s`);
const sGet = await timed(`ssh2 get ${smallN} x 4 KiB, 16 at once`, 0, async () => {
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    for (let i; (i = next++) < smallN; ) await getObject(`small-${i}`, 4096);
  }));
});
console.log(`  ${(smallN / sGet).toFixed(0)} objects/s`);
conn.end();

// OpenSSH's client on the same server, for what sshd itself can do on this machine.
const local = path.join(sshd.dir, 'local.bin');
writeFileSync(local, Buffer.concat(Array.from({ length: n }, () => data)));
const sftpArgs = ['-q', '-i', sshd.userKey, '-o', `UserKnownHostsFile=${sshd.knownHosts}`, '-o', 'BatchMode=yes', '-P', String(sshd.port), '-b', '-', `${sshd.user}@${sshd.host}`];
await timed(`OpenSSH sftp put ${n * 16} MiB`, n * objSize, async () => {
  const r = spawnSync('sftp', sftpArgs, { input: `put ${local} ${remote}/openssh.bin\n`, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
});
await timed(`OpenSSH sftp get ${n * 16} MiB`, n * objSize, async () => {
  const r = spawnSync('sftp', sftpArgs, { input: `get ${remote}/openssh.bin ${local}.back\n`, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  if (statSync(`${local}.back`).size !== n * objSize) throw new Error('short');
});
await sshd.stop();
removeDir(sshd.dir);

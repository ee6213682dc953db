#!/usr/bin/env node
// Prototype measurement for issue 20: where the SSH transport of the SFTP backend should run.
// Three transports against the same sshd on loopback, the same work (16 MiB objects written
// as the backend writes them, 255 KiB requests 16 in flight, 4 objects at once; then read back):
//   main     ssh2 on node's main thread (what the backend did)
//   worker   ssh2 in a worker_thread, requests as messages, data as transferred ArrayBuffers
//   openssh  OpenSSH's `ssh -s sftp` as a child process, SFTP v3 spoken over its pipes
// Prints wall seconds, the main thread's CPU (what competes with the restore's own work),
// the whole process's CPU and the ssh child's CPU.
//   node scripts/bench-sftp-transport.mjs [MiB] [transports...]
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import ssh2 from 'ssh2';

const MiB = 1 << 20;

async function ssh2Sftp(cfg) {
  const conn = new ssh2.Client();
  await new Promise((resolve, reject) => {
    conn.once('ready', resolve).once('error', reject);
    conn.connect({ host: cfg.host, port: cfg.port, username: cfg.user, privateKey: readFileSync(cfg.userKey), hostVerifier: () => true });
  });
  const sftp = await new Promise((resolve, reject) => conn.sftp((e, s) => (e ? reject(e) : resolve(s))));
  return { conn, sftp };
}

if (!isMainThread) {
  // the worker: ssh2, answering {id, op, args}
  const { conn, sftp } = await ssh2Sftp(workerData);
  const handles = new Map();
  let nextH = 1;
  parentPort.on('message', (m) => {
    const done = (e, v, transfer) => parentPort.postMessage({ id: m.id, err: e ? String(e.message ?? e) : undefined, v }, transfer ?? []);
    switch (m.op) {
      case 'open': return sftp.open(m.path, m.flags, (e, h) => { if (e) return done(e); const k = nextH++; handles.set(k, h); done(null, k); });
      case 'close': { const h = handles.get(m.h); handles.delete(m.h); return sftp.close(h, (e) => done(e)); }
      case 'write': return sftp.write(handles.get(m.h), Buffer.from(m.data), 0, m.data.byteLength, m.pos, (e) => done(e));
      case 'read': { const b = Buffer.allocUnsafeSlow(m.len); return sftp.read(handles.get(m.h), b, 0, m.len, m.pos, (e, n) => done(e, { n, buf: b.buffer }, e ? [] : [b.buffer])); }
      case 'rename': return sftp.rename(m.from, m.to, (e) => done(e));
      case 'end': conn.end(); return done(null);
    }
  });
  parentPort.postMessage({ ready: true, maxWrite: sftp._maxWriteLen });
} else {
  const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
  const { startSshd } = await import(path.join(root, 'dist/test/lib/sshd.js'));
  const { removeDir } = await import(path.join(root, 'dist/test/lib/temp.js'));
  const totalMiB = Number(process.argv[2] ?? 256);
  const which = process.argv.slice(3).length ? process.argv.slice(3) : ['main', 'worker', 'openssh'];
  const sshd = await startSshd();
  const remote = path.join(sshd.dir, 'remote');
  mkdirSync(remote);
  const cfg = { host: sshd.host, port: sshd.port, user: sshd.user, userKey: sshd.userKey };

  // each transport: { open(path, flags) -> h, close(h), write(h, buf, off, len, pos), read(h, buf, off, len, pos) -> n, rename, end, chunk, childPid }
  const transports = {
    async main() {
      const { conn, sftp } = await ssh2Sftp(cfg);
      const p = (f) => (...a) => new Promise((res, rej) => f.call(sftp, ...a, (e, r) => (e ? rej(e) : res(r))));
      return {
        chunk: sftp._maxWriteLen,
        open: p(sftp.open), close: p(sftp.close), rename: p(sftp.rename),
        write: (h, b, o, l, pos) => new Promise((res, rej) => sftp.write(h, b, o, l, pos, (e) => (e ? rej(e) : res()))),
        read: (h, b, o, l, pos) => new Promise((res, rej) => sftp.read(h, b, o, l, pos, (e, n) => (e ? rej(e) : res(n)))),
        end: () => conn.end(),
      };
    },
    async worker() {
      const w = new Worker(fileURLToPath(import.meta.url), { workerData: cfg });
      const waiting = new Map();
      let nextId = 1;
      const ready = new Promise((res) => w.once('message', res));
      const r0 = await ready;
      w.on('message', (m) => { const f = waiting.get(m.id); waiting.delete(m.id); f(m); });
      const call = (msg, transfer) => new Promise((res, rej) => { const id = nextId++; waiting.set(id, (m) => (m.err ? rej(new Error(m.err)) : res(m.v))); w.postMessage({ ...msg, id }, transfer); });
      return {
        chunk: r0.maxWrite,
        open: (p, flags) => call({ op: 'open', path: p, flags }),
        close: (h) => call({ op: 'close', h }),
        rename: (from, to) => call({ op: 'rename', from, to }),
        write: (h, b, o, l, pos) => { const c = new Uint8Array(l); c.set(b.subarray(o, o + l)); return call({ op: 'write', h, data: c.buffer, pos }, [c.buffer]); },
        read: async (h, b, o, l, pos) => { const v = await call({ op: 'read', h, len: l, pos }); b.set(new Uint8Array(v.buf, 0, v.n), o); return v.n; },
        end: async () => { await call({ op: 'end' }); await w.terminate(); },
      };
    },
    async openssh() {
      const child = spawn('ssh', ['-i', cfg.userKey, '-o', `UserKnownHostsFile=${sshd.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-p', String(cfg.port), '-s', `${cfg.user}@${cfg.host}`, 'sftp'], { stdio: ['pipe', 'pipe', 'inherit'] });
      const waiting = new Map();
      let nextId = 1;
      let pend = [];
      let pendLen = 0;
      let onVersion;
      // frames: the next packet's bytes are gathered from the pipe's chunks; a DATA answer's payload is copied straight into the read's buffer
      let need = -1;
      child.stdout.on("data", (chunk) => {
        pend.push(chunk);
        pendLen += chunk.length;
        for (;;) {
          if (need < 0) {
            if (pendLen < 4) return;
            const head = take(4);
            need = head.readUInt32BE(0);
          }
          if (pendLen < need) return;
          const pkt = take(need);
          need = -1;
          handle(pkt);
        }
      });
      function take(n) {
        if (pend[0].length >= n) {
          const b = pend[0].subarray(0, n);
          if (pend[0].length === n) pend.shift(); else pend[0] = pend[0].subarray(n);
          pendLen -= n;
          return b;
        }
        const out = Buffer.allocUnsafe(n);
        let o = 0;
        while (o < n) {
          const c = pend[0];
          const k = Math.min(c.length, n - o);
          c.copy(out, o, 0, k);
          o += k;
          if (k === c.length) pend.shift(); else pend[0] = c.subarray(k);
        }
        pendLen -= n;
        return out;
      }
      function handle(p) {
        const type = p[0];
        if (type === 2) return onVersion(p);
        const id = p.readUInt32BE(1);
        const f = waiting.get(id);
        waiting.delete(id);
        f(type, p);
      }
      const send = (type, parts) => new Promise((res, rej) => {
        const id = nextId++;
        const len = 1 + 4 + parts.reduce((s, b) => s + b.length, 0);
        const head = Buffer.allocUnsafe(9);
        head.writeUInt32BE(len, 0); head[4] = type; head.writeUInt32BE(id, 5);
        waiting.set(id, (t, p) => {
          if (t === 101) { const code = p.readUInt32BE(5); return code === 0 ? res(null) : rej(new Error(`status ${code}`)); }
          res(p);
        });
        child.stdin.cork();
        child.stdin.write(head);
        for (const b of parts) child.stdin.write(b);
        child.stdin.uncork();
      });
      const str = (s) => { const b = typeof s === 'string' ? Buffer.from(s) : s; const l = Buffer.allocUnsafe(4); l.writeUInt32BE(b.length); return [l, b]; };
      const u32 = (n) => { const b = Buffer.allocUnsafe(4); b.writeUInt32BE(n); return b; };
      const u64 = (n) => { const b = Buffer.allocUnsafe(8); b.writeBigUInt64BE(BigInt(n)); return b; };
      const version = new Promise((res) => (onVersion = res));
      child.stdin.write(Buffer.from([0, 0, 0, 5, 1, 0, 0, 0, 3]));
      await version;
      const lim = await send(200, str('limits@openssh.com'));
      const maxWrite = Number(lim.readBigUInt64BE(5 + 16));
      return {
        chunk: maxWrite,
        childPid: child.pid,
        open: async (p, flags) => { const r = await send(3, [...str(p), u32(flags === 'r' ? 1 : 2 | 8 | 0x20), u32(4), u32(0o600)]); return r.subarray(9, 9 + r.readUInt32BE(5)); },
        close: (h) => send(4, str(h)),
        rename: (a, b) => send(18, [...str(a), ...str(b)]),
        write: (h, b, o, l, pos) => send(6, [...str(h), u64(pos), u32(l), b.subarray(o, o + l)]),
        read: async (h, b, o, l, pos) => { const r = await send(5, [...str(h), u64(pos), u32(l)]); if (!r) return 0; const n = r.readUInt32BE(5); r.copy(b, o, 9, 9 + n); return n; },
        end: () => new Promise((res) => { child.once('exit', res); child.stdin.end(); }),
      };
    },
  };

  const objSize = 16 * MiB;
  const n = Math.max(1, Math.round(totalMiB / 16));
  const data = randomBytes(objSize);
  const childCpu = (pid) => { try { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').slice(readFileSync(`/proc/${pid}/stat`, 'utf8').lastIndexOf(')') + 2).split(' '); return (Number(f[11]) + Number(f[12])) / 100; } catch { return 0; } };
  async function timed(label, t, fn) {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    const m0 = mainCpu();
    const k0 = t.childPid ? childCpu(t.childPid) : 0;
    await fn();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    const m = mainCpu() - m0;
    const k = t.childPid ? childCpu(t.childPid) - k0 : 0;
    console.log(`${label.padEnd(30)} ${s.toFixed(2).padStart(6)} s ${((n * objSize) / MiB / s).toFixed(0).padStart(5)} MiB/s  main thread ${m.toFixed(2)} s  process ${((c.user + c.system) / 1e6).toFixed(2)} s  ssh ${k.toFixed(2)} s`);
  }
  // the main thread's own CPU time, from /proc/self/task/<pid>/stat
  function mainCpu() {
    const st = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  }
  for (const [k, name] of which.entries()) {
    const t = await transports[name]();
    const tag = `${name}${k}`;
    const CH = t.chunk;
    const putObject = async (obj) => {
      const tmp = `${remote}/.tmp-${randomBytes(6).toString('hex')}`;
      const h = await t.open(tmp, 'wx');
      let next = 0;
      await Promise.all(Array.from({ length: 16 }, async () => { for (let off; (off = next) < data.length; ) { next += CH; await t.write(h, data, off, Math.min(CH, data.length - off), off); } }));
      await t.close(h);
      await t.rename(tmp, `${remote}/${obj}`);
    };
    const buffers = Array.from({ length: 4 }, () => Buffer.allocUnsafe(objSize));
    const getObject = async (obj, buf) => {
      const h = await t.open(`${remote}/${obj}`, 'r');
      let next = 0;
      await Promise.all(Array.from({ length: 16 }, async () => { for (let off; (off = next) < objSize; ) { next += CH; const got = await t.read(h, buf, off, Math.min(CH, objSize - off), off); if (got !== Math.min(CH, objSize - off)) throw new Error('short read'); } }));
      await t.close(h);
    };
    await timed(`${name} put ${n} x 16 MiB`, t, async () => { let next = 0; await Promise.all(Array.from({ length: 4 }, async () => { for (let i; (i = next++) < n; ) await putObject(`${tag}-${i}`); })); });
    await timed(`${name} get ${n} x 16 MiB`, t, async () => { let next = 0; await Promise.all(Array.from({ length: 4 }, async (_, w) => { for (let i; (i = next++) < n; ) { await getObject(`${tag}-${i}`, buffers[w]); } })); });
    if (!buffers[0].equals(data)) throw new Error(`${name}: the data read back differs`);
    await t.end();
  }
  await sshd.stop();
  removeDir(sshd.dir);
}

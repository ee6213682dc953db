// A tar stream (POSIX pax/ustar, as GNU tar and bsdtar read it) for dump: ustar headers,
// and a pax extended header before an entry whose path or link is over 100 bytes, whose
// size, ids or owner names do not fit ustar, or whose mtime has a fraction of a second or
// is before 1970 (then the pax mtime keeps it to the nanosecond).
import type { ArchiveEntry, ArchiveWriter, ByteSink, EntryKind } from './archive.js';
import { isUtf8 } from 'node:buffer';

const TYPE: Record<EntryKind, string> = { file: '0', hardlink: '1', symlink: '2', chardev: '3', blockdev: '4', dir: '5', fifo: '6' };
const BLOCK = 512;
const MAX_OCTAL_11 = 0o77777777777;
const MAX_OCTAL_7 = 0o7777777;

function octal(h: Buffer, off: number, width: number, v: number): void {
  h.write(v.toString(8).padStart(width - 1, '0') + '\0', off, width, 'latin1');
}

/** One pax record: "<len> key=value\n", len counting itself. */
function record(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function paxTime(ns: bigint): string {
  const neg = ns < 0n;
  const a = neg ? -ns : ns;
  const s = a / 1_000_000_000n;
  const f = a % 1_000_000_000n;
  return `${neg ? '-' : ''}${s}${f ? `.${f.toString().padStart(9, '0')}` : ''}`;
}

export class TarWriter implements ArchiveWriter {
  constructor(private readonly sink: ByteSink) {}

  holds(): boolean {
    return true;
  }

  private header(name: Buffer, type: string, e: { mode: number; uid: number; gid: number; user: string; group: string; mtime: number; size: number; link?: Buffer; devMajor?: number; devMinor?: number }): Buffer {
    const h = Buffer.alloc(BLOCK);
    name.copy(h, 0, 0, Math.min(name.length, 100));
    octal(h, 100, 8, e.mode & 0o7777);
    octal(h, 108, 8, e.uid <= MAX_OCTAL_7 ? e.uid : 0);
    octal(h, 116, 8, e.gid <= MAX_OCTAL_7 ? e.gid : 0);
    octal(h, 124, 12, e.size <= MAX_OCTAL_11 ? e.size : 0);
    octal(h, 136, 12, e.mtime >= 0 && e.mtime <= MAX_OCTAL_11 ? e.mtime : 0);
    h.write(type, 156, 1, 'latin1');
    if (e.link) e.link.copy(h, 157, 0, Math.min(e.link.length, 100));
    h.write('ustar\0' + '00', 257, 8, 'latin1');
    const user = Buffer.from(e.user);
    const group = Buffer.from(e.group);
    if (user.length <= 32) user.copy(h, 265);
    if (group.length <= 32) group.copy(h, 297);
    if (e.devMajor !== undefined) {
      octal(h, 329, 8, e.devMajor <= MAX_OCTAL_7 ? e.devMajor : 0);
      octal(h, 337, 8, (e.devMinor ?? 0) <= MAX_OCTAL_7 ? e.devMinor ?? 0 : 0);
    }
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
    return h;
  }

  async add(e: ArchiveEntry, body?: AsyncIterable<Buffer>): Promise<void> {
    const name = e.kind === 'dir' ? Buffer.concat([e.path, Buffer.from('/')]) : e.path;
    const size = e.kind === 'file' ? e.size : 0;
    const secNs = e.mtimeNs / 1_000_000_000n - (e.mtimeNs % 1_000_000_000n < 0n ? 1n : 0n);
    const mtime = Number(secNs);
    const pax: Buffer[] = [];
    const binary = !isUtf8(name) || (e.link !== undefined && !isUtf8(e.link));
    if (binary) pax.push(record('hdrcharset', Buffer.from('BINARY')));
    if (name.length > 100) pax.push(record('path', name));
    if (e.link && e.link.length > 100) pax.push(record('linkpath', e.link));
    if (size > MAX_OCTAL_11) pax.push(record('size', Buffer.from(String(size))));
    if (e.uid > MAX_OCTAL_7) pax.push(record('uid', Buffer.from(String(e.uid))));
    if (e.gid > MAX_OCTAL_7) pax.push(record('gid', Buffer.from(String(e.gid))));
    if (Buffer.byteLength(e.user) > 32) pax.push(record('uname', Buffer.from(e.user)));
    if (Buffer.byteLength(e.group) > 32) pax.push(record('gname', Buffer.from(e.group)));
    if (e.mtimeNs % 1_000_000_000n !== 0n || mtime < 0 || mtime > MAX_OCTAL_11) pax.push(record('mtime', Buffer.from(paxTime(e.mtimeNs))));
    if (pax.length) {
      const data = Buffer.concat(pax);
      const base = name.subarray(name.lastIndexOf(0x2f, name.length - 2) + 1);
      const paxName = Buffer.concat([Buffer.from('PaxHeaders/'), base]).subarray(0, 100);
      await this.sink.write(this.header(paxName, 'x', { mode: 0o644, uid: 0, gid: 0, user: '', group: '', mtime: Math.max(0, Math.min(mtime, MAX_OCTAL_11)), size: data.length }));
      await this.sink.write(Buffer.concat([data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]));
    }
    await this.sink.write(this.header(name, TYPE[e.kind], { ...e, mtime, size }));
    if (e.kind !== 'file') return;
    let written = 0;
    for await (const b of body ?? []) {
      written += b.length;
      if (written > size) break;
      await this.sink.write(b);
    }
    if (written !== size) throw new Error(`tar: ${e.path.toString()} gave ${written} bytes, not ${size}`);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad) await this.sink.write(Buffer.alloc(pad));
  }

  async finish(): Promise<void> {
    await this.sink.write(Buffer.alloc(2 * BLOCK));
  }
}

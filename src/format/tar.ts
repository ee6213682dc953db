// Minimal POSIX ustar writer/reader: just what packs need. Every member is a regular file
// with mode 0644, uid/gid 0, mtime 0 (packs are deterministic for the same content).
// Layout of a member: 512-byte header, data, zero padding to a multiple of 512.
// An archive ends with two 512-byte zero blocks.

export const BLOCK = 512;

export function padLen(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

function octal(buf: Buffer, off: number, width: number, value: number): void {
  // width-1 octal digits, then NUL
  const s = value.toString(8).padStart(width - 1, '0');
  if (s.length > width - 1) throw new Error(`tar field overflow: ${value}`);
  buf.write(s, off, 'ascii');
  buf[off + width - 1] = 0;
}

export function tarHeader(name: string, size: number): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar member name too long: ${name}`);
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 'utf8');
  octal(h, 100, 8, 0o644); // mode
  octal(h, 108, 8, 0); // uid
  octal(h, 116, 8, 0); // gid
  octal(h, 124, 12, size); // size
  octal(h, 136, 12, 0); // mtime
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  h[156] = 0x30; // typeflag '0': regular file
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  h.write(sum.toString(8).padStart(6, '0'), 148, 'ascii');
  h[154] = 0;
  h[155] = 0x20;
  return h;
}

export interface TarMember {
  name: string;
  /** Offset of the member's data (not its header) in the archive. */
  dataOffset: number;
  size: number;
}

/** Lists the members of a complete archive held in memory. */
export function parseTar(bytes: Uint8Array): TarMember[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const out: TarMember[] = [];
  let pos = 0;
  while (pos + BLOCK <= buf.length) {
    const h = buf.subarray(pos, pos + BLOCK);
    if (h.every((b) => b === 0)) break;
    if (h.toString('ascii', 257, 262) !== 'ustar') throw new Error(`not a tar header at ${pos}`);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    if (sum !== parseInt(h.toString('ascii', 148, 154), 8)) throw new Error(`bad tar checksum at ${pos}`);
    const nul = h.indexOf(0);
    const name = h.toString('utf8', 0, nul >= 0 && nul < 100 ? nul : 100);
    const size = parseInt(h.toString('ascii', 124, 135), 8);
    out.push({ name, dataOffset: pos + BLOCK, size });
    pos += BLOCK + size + padLen(size);
  }
  return out;
}

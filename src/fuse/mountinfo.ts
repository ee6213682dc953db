// /proc/self/mountinfo: is something mounted on a directory, and is our mount still there.
import { readFileSync } from 'node:fs';

export interface MountEntry {
  id: number;
  /** major:minor of the file system (st_dev); also the name of its entry in /sys/class/bdi. */
  dev: string;
  mountpoint: string;
  fstype: string;
  source: string;
}

/** Undoes the kernel's octal escapes (\040 for a space, ...); names are bytes, read as UTF-8. */
function unescape(s: string): string {
  const bytes = Buffer.from(s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), 'latin1');
  return bytes.toString('utf8');
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f.length < sep + 3) continue;
    out.push({ id: Number(f[0]), dev: f[2]!, mountpoint: unescape(f[4]!), fstype: f[sep + 1]!, source: unescape(f[sep + 2]!) });
  }
  return out;
}

export function readMounts(): MountEntry[] {
  // latin1 keeps every byte; unescape() turns the result into UTF-8 strings.
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'latin1'));
}

/** The mounts on exactly this directory, the topmost last. */
export function mountsOn(dir: string): MountEntry[] {
  return readMounts().filter((m) => m.mountpoint === dir);
}

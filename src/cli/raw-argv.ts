// The command line as bytes. Node decodes argv as UTF-8 and replaces bytes that are not
// (a name like $'\xff') with U+FFFD, so two different paths would arrive as one string;
// Linux keeps the bytes in /proc/self/cmdline.
import { readFileSync } from 'node:fs';

/** The raw bytes of each of `argv` (the program's arguments, process.argv.slice(2)); each one's UTF-8 when the kernel's copy cannot be matched. */
export function rawArgv(argv: string[]): Buffer[] {
  const fallback = () => argv.map((s) => Buffer.from(s));
  let all: Buffer;
  try {
    all = readFileSync('/proc/self/cmdline');
  } catch {
    return fallback();
  }
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < all.length; i++) {
    if (all[i] === 0) {
      parts.push(all.subarray(start, i));
      start = i + 1;
    }
  }
  if (start < all.length) parts.push(all.subarray(start));
  if (parts.length < argv.length) return fallback();
  const tail = parts.slice(parts.length - argv.length);
  // The last arguments are the program's: check that each decodes to what node gave us.
  return tail.every((b, i) => b.toString() === argv[i]) ? tail : fallback();
}

// Inode numbers for the mount (64-bit in the kernel protocol), handed out in order rather
// than hashed: a hash could collide, and `cp -a` would then hardlink unrelated files. A number, once
// given, stays with its entry for the life of the mount, as tools that stat twice expect.
//
// Keys are short strings: `<parent ino>/<name>` for an entry inside a snapshot,
// `h<snapshot no>:<hardlink id>` for every name of a hardlinked inode (one number for all
// of them), `s:<snapshot id>` for a snapshot's root, `v:<path>` for the virtual entries.

export const ROOT_INO = 1;

export class InodeTable {
  private readonly byKey = new Map<string, number>([['v:/', ROOT_INO]]);
  private next = ROOT_INO + 1;

  get(key: string): number {
    let ino = this.byKey.get(key);
    if (ino === undefined) {
      ino = this.next++;
      // Past 2^32 - 1 numbers would repeat; the table would need ~400 GB of memory first.
      if (this.next > 0xffffffff) this.next = ROOT_INO + 1;
      this.byKey.set(key, ino);
    }
    return ino;
  }

  get size(): number {
    return this.byKey.size;
  }
}

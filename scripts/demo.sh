#!/usr/bin/env bash
# The README's first command: set up, then back up a sample tree into a local repository,
# list it, restore it, mount the whole history with FUSE, list and copy a file out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/bin:$PATH"
# One fixed directory, kept afterwards (the last step names the repository in it); each
# run starts it afresh. A mount a previous run left on it goes first: rm must not walk it.
demo=${TSBAK_DEMO_DIR:-/tmp/tsbak-demo}
if mountpoint -q "$demo/mnt" 2>/dev/null; then fusermount -u -z "$demo/mnt" || umount -l "$demo/mnt"; fi
rm -rf --one-file-system "$demo"; mkdir -p "$demo"
export TSBAK_PASSWORD=${TSBAK_PASSWORD:-demo-passphrase}
export TSBAK_CACHE_DIR="$demo/cache"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "a sample tree: text, binary, a sparse file, a symlink, a hardlink, xattrs"
src="$demo/sample"
mkdir -p "$src/docs" "$src/photos"
cp -r /usr/share/doc/bash "$src/docs/" 2>/dev/null || echo "hello" > "$src/docs/hello.txt"
head -c 5000000 /dev/urandom > "$src/photos/img0001.raw"
truncate -s 1G "$src/sparse.img"; echo "data in the middle" | dd of="$src/sparse.img" bs=1 seek=500000000 conv=notrunc status=none
ln -s docs "$src/docs-link"; ln "$src/photos/img0001.raw" "$src/photos/same-inode.raw"
setfattr -n user.comment -v "kept by tsbak" "$src/photos/img0001.raw" 2>/dev/null || true
echo "note $(date)" > "$src/notes.txt"

step "tsbak init"
tsbak init "$demo/repo"
step "tsbak-write (first backup)"
tsbak-write "$demo/repo" "$src" --tag demo
echo "changed $(date +%N)" >> "$src/notes.txt"
step "tsbak-write (second backup: only the changed file is read)"
tsbak-write "$demo/repo" "$src" --tag demo --json
step "tsbak snapshots"
tsbak snapshots "$demo/repo"
step "tsbak ls latest"
tsbak ls "$demo/repo" latest "$src" -l
step "tsbak restore latest"
tsbak restore "$demo/repo" latest --target "$demo/restore"
diff -r "$src" "$demo/restore$src" && echo "restored tree is identical"
du -h --apparent-size "$demo/restore$src/sparse.img"; du -h "$demo/restore$src/sparse.img"
step "tsbak check --read-data"
tsbak check "$demo/repo" --read-data

step "mount.tsbak: the whole history as a read-only file system"
mnt="$demo/mnt"; mkdir -p "$mnt"
trap 'fusermount -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || true' EXIT
mount.tsbak "$demo/repo" "$mnt"
ls -l "$mnt" "$mnt/snapshots"
ls -la "$mnt/snapshots/latest$src"
cp -a "$mnt/snapshots/latest$src/notes.txt" "$demo/notes-from-mount.txt"
echo "copied out of the mount: $(cat "$demo/notes-from-mount.txt")"
fusermount -u "$mnt"
trap - EXIT
step "done: repository at $demo/repo (passphrase: \$TSBAK_PASSWORD)"

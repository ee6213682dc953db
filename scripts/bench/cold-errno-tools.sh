#!/usr/bin/env bash
# What python3, cat, cp and rsync do when a read fails with a given errno (how the mount's
# answer to a read of cold data was chosen: src/fuse/cold.ts COLD_ERRNO, README "In a mount").
# Mounts scripts/bench/errno-fs.py (one file, every read fails with the errno; python3-llfuse,
# which borgbackup brings) and runs each tool on it.
#
#   scripts/bench/cold-errno-tools.sh EAGAIN EIO ENODATA ETIMEDOUT      (root, or FUSE allowed)
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
d=$(mktemp -d /var/tmp/tsbak-errno.XXXXXX)
trap 'mountpoint -q "$d/mnt" && fusermount -u "$d/mnt"; rm -rf "$d"' EXIT
[ $# -gt 0 ] || set -- EAGAIN EIO ENODATA
for e in "$@"; do
  mkdir -p "$d/mnt" "$d/out"
  rm -rf "${d:?}/out/"*
  /usr/bin/python3 "$here/errno-fs.py" "$d/mnt" "$e" &
  pid=$!
  for _ in $(seq 100); do [ -e "$d/mnt/f" ] && break; sleep 0.1; done
  echo "== $e"
  set +e
  /usr/bin/python3 -c "
import sys
try:
    d = open(sys.argv[1], 'rb').read(); print('python3: read() returned', repr(d)[:40])
except OSError as x:
    print('python3: OSError', x.errno, x.strerror); sys.exit(1)" "$d/mnt/f"
  echo "  python3 exit $?"
  cat "$d/mnt/f" > /dev/null 2> "$d/err"; echo "cat exit $?: $(cat "$d/err")"
  cp "$d/mnt/f" "$d/out/cp" 2> "$d/err"; echo "cp exit $?: $(cat "$d/err"); copy: $(stat -c %s "$d/out/cp" 2>/dev/null || echo none) bytes"
  rsync "$d/mnt/f" "$d/out/rs" > /dev/null 2> "$d/err"; echo "rsync exit $?: $(tr '\n' ' ' < "$d/err"); copy: $(stat -c %s "$d/out/rs" 2>/dev/null || echo none)"
  set -e
  fusermount -u "$d/mnt"
  wait "$pid"
done

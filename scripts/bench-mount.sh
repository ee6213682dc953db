#!/usr/bin/env bash
# Reading out of a mounted repository: `mount.tsbak` against `restic mount`, same data,
# same machine, same run. Builds a 1 GiB random file and a tree of 50,000 small files,
# backs both up into a tsbak and a restic repository (local directories), mounts both,
# then times a sequential read of the big file (dd to /dev/null) and `cp -a` of the tree
# out of each mount. Prints MB/s (10^6 bytes per second) and the tsbak/restic ratio.
#
#   scripts/bench-mount.sh            (root, or a user allowed to use FUSE)
#   BENCH_BIG_MIB=256 BENCH_FILES=5000 scripts/bench-mount.sh    smaller, quicker
#   BENCH_DROP_CACHES=1 ...           drop the page cache before each measurement (root)
#   BENCH_DIR=/path BENCH_KEEP=1 ...  where to work, and keep it afterwards
#
# Needs: node (and a built dist/: npx tsc -p tsconfig.json), restic, fusermount, python3.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
big_mib=${BENCH_BIG_MIB:-1024}
nfiles=${BENCH_FILES:-50000}
work=${BENCH_DIR:-$(mktemp -d /var/tmp/tsbak-bench.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)

export TSBAK_PASSWORD=bench-password TSBAK_FAST_KDF=1 RESTIC_PASSWORD=bench-password
export RESTIC_CACHE_DIR="$work/restic-cache"
restic_pid=

cleanup() {
  set +e
  mountpoint -q "$work/mnt-tsbak" && fusermount -u -z "$work/mnt-tsbak"
  if [ -n "$restic_pid" ] && kill -0 "$restic_pid" 2>/dev/null; then
    kill -INT "$restic_pid"
    wait "$restic_pid" 2>/dev/null
  fi
  mountpoint -q "$work/mnt-restic" && fusermount -u -z "$work/mnt-restic"
  if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
drop_caches() {
  sync
  if [ -n "${BENCH_DROP_CACHES:-}" ]; then echo 3 > /proc/sys/vm/drop_caches; fi
}

# ---- data ----
say "building $big_mib MiB file and $nfiles small files in $work/data"
mkdir -p "$work/data/tree"
head -c "${big_mib}M" /dev/urandom > "$work/data/big.bin"
python3 - "$work/data/tree" "$nfiles" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(42)
per_dir = 200
for i in range(n):
    d = os.path.join(root, f"d{i // per_dir:04d}")
    if i % per_dir == 0:
        os.makedirs(d, exist_ok=True)
    size = random.randint(64, 8192)
    # Half random bytes, half text: like source trees and documents.
    data = os.urandom(size) if i % 2 else (f"line {i} of a small text file\n" * (size // 30 + 1)).encode()[:size]
    with open(os.path.join(d, f"f{i:06d}.dat"), "wb") as f:
        f.write(data)
PY
tree_bytes=$(du -sb --apparent-size "$work/data/tree" | cut -f1)
big_bytes=$(stat -c %s "$work/data/big.bin")

# ---- backups ----
say "backing up with tsbak"
t0=$(now)
"$here/bin/tsbak" init "$work/repo-tsbak" > /dev/null
"$here/bin/tsbak-write" --quiet "$work/repo-tsbak" "$work/data"
t1=$(now)
say "backing up with restic"
restic --quiet init --repo "$work/repo-restic" > /dev/null
restic --quiet --repo "$work/repo-restic" backup "$work/data" > /dev/null
t2=$(now)
say "$(awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "backup time: tsbak %.1fs, restic %.1fs", b - a, c - b }')"

# ---- mounts ----
mkdir -p "$work/mnt-tsbak" "$work/mnt-restic"
"$here/bin/mount.tsbak" "$work/repo-tsbak" "$work/mnt-tsbak"
restic --repo "$work/repo-restic" mount "$work/mnt-restic" > "$work/restic-mount.log" 2>&1 &
restic_pid=$!
for _ in $(seq 1 300); do
  [ -e "$work/mnt-restic/snapshots/latest" ] && break
  sleep 0.1
done
[ -e "$work/mnt-restic/snapshots/latest" ] || { say "restic mount did not come up:"; cat "$work/restic-mount.log" >&2; exit 1; }

# Both show the backed-up path under the snapshot directory. Paths name the snapshot, not
# the `latest` symlink: the kernel does not cache FUSE symlinks (libfuse 2 cannot ask it
# to), so every path through `latest` costs both mounts one more request per lookup.
src_tsbak="$work/mnt-tsbak/snapshots/$(readlink "$work/mnt-tsbak/snapshots/latest")$work/data"
src_restic="$work/mnt-restic/snapshots/$(readlink "$work/mnt-restic/snapshots/latest")$work/data"
for d in "$src_tsbak" "$src_restic"; do [ -f "$d/big.bin" ] || { say "no big.bin under $d"; exit 1; }; done

# ---- measurements ----
declare -A secs
time_it() { # name command...
  local name=$1
  shift
  drop_caches
  local a b
  a=$(now)
  "$@"
  b=$(now)
  secs[$name]=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b - a }')
  say "$name: ${secs[$name]} s"
}

time_it read-restic dd if="$src_restic/big.bin" of=/dev/null bs=1M status=none
time_it read-tsbak dd if="$src_tsbak/big.bin" of=/dev/null bs=1M status=none
time_it cp-restic cp -a "$src_restic/tree" "$work/out-restic"
time_it cp-tsbak cp -a "$src_tsbak/tree" "$work/out-tsbak"

# The copies must be the data that was backed up.
for who in tsbak restic; do
  if ! diff -rq "$work/data/tree" "$work/out-$who" > /dev/null; then say "copy from $who differs from the original"; exit 1; fi
done
rm -rf "$work/out-tsbak" "$work/out-restic"

# ---- table ----
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", n / s / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", b / a }'; }
printf '\n%-34s %12s %12s %10s\n' "mount read ($(nproc) cores)" "tsbak MB/s" "restic MB/s" "tsbak/restic"
printf '%-34s %12s %12s %10s\n' "sequential read, $big_mib MiB file" "$(rate "$big_bytes" "${secs[read-tsbak]}")" "$(rate "$big_bytes" "${secs[read-restic]}")" "$(ratio "${secs[read-tsbak]}" "${secs[read-restic]}")"
printf '%-34s %12s %12s %10s\n' "cp -a, $nfiles files ($((tree_bytes / 1000000)) MB)" "$(rate "$tree_bytes" "${secs[cp-tsbak]}")" "$(rate "$tree_bytes" "${secs[cp-restic]}")" "$(ratio "${secs[cp-tsbak]}" "${secs[cp-restic]}")"
printf '%-34s %12s %12s\n' "cp -a, files per second" "$(awk -v n="$nfiles" -v s="${secs[cp-tsbak]}" 'BEGIN { printf "%.0f", n / s }')" "$(awk -v n="$nfiles" -v s="${secs[cp-restic]}" 'BEGIN { printf "%.0f", n / s }')"

#!/usr/bin/env bash
# Reading out of a mounted repository: `mount.tsbak` against `restic mount` and `borg mount`,
# the same data backed up by each into a local repository, same machine, same run.
#
# Data: a tree (a copy of /usr/include by default), one large random file and 8 random
# files of the same size for the parallel readers, in one snapshot (one archive for borg).
# Each measurement runs on a fresh mount of each tool (so no tool reads out of page cache
# another measurement filled), with the repositories warm in the page cache (they were just
# written), interleaved tool by tool:
#   ls -lR      of the whole snapshot
#   cp -a       of the whole snapshot (checked against the original afterwards)
#   seq read    dd of the large file, MB/s
#   8 readers   cat of the 8 files at once, MB/s of all of them together
# Prints a table (markdown, also written to $work/results.md): seconds or MB/s per tool,
# then tsbak/restic and tsbak/borg: for times tsbak's seconds over the other's (below 1:
# tsbak faster), for MB/s tsbak's rate over the other's (above 1: tsbak faster).
# MB is 10^6 bytes.
#
#   scripts/bench-mount.sh                         (root, or a user allowed to use FUSE)
#   BENCH_TREE=/some/dir ...                       the tree to copy in (default /usr/include)
#   BENCH_BIG_MIB=1024 BENCH_PAR_MIB=64 ...        the large file, each parallel reader's file
#   BENCH_TOOLS="tsbak restic" ...                 leave a tool out
#   BENCH_DIR=/path BENCH_KEEP=1 ...               where to work, and keep it afterwards
#   BENCH_REUSE=1 ...                              with BENCH_DIR/BENCH_KEEP: reuse the data and
#                                                  repositories a kept run left there
#   BENCH_STEPS="seq par" ...                      only these measurements (ls seq par cp)
#   BENCH_TSBAK_MOUNT_OPTS="-o readahead=8" ...    options for mount.tsbak
#   BENCH_OUT_DIR=/path ...                        where `cp -a` writes its copy (default: a
#                                                  directory in /dev/shm when it has room, so
#                                                  that the disk, which every tool writes the
#                                                  same copy to, does not set the time; else $BENCH_DIR)
#
# Needs: node (and a built dist/: npx tsc -p tsconfig.json), restic, borg (borgbackup with
# python3-llfuse), fusermount.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
tree_src=${BENCH_TREE:-/usr/include}
big_mib=${BENCH_BIG_MIB:-512}
par_mib=${BENCH_PAR_MIB:-32}
tools=${BENCH_TOOLS:-tsbak restic borg}
steps=${BENCH_STEPS:-ls seq par cp}
reuse=${BENCH_REUSE:-}
work=${BENCH_DIR:-$(mktemp -d /var/tmp/tsbak-bench.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)

export TSBAK_PASSWORD=bench-password TSBAK_FAST_KDF=1 TSBAK_CACHE_DIR="$work/tsbak-cache"
export RESTIC_PASSWORD=bench-password RESTIC_CACHE_DIR="$work/restic-cache"
export BORG_PASSPHRASE=bench-password BORG_BASE_DIR="$work/borg-base" BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
restic_pid=
out_tmp=

unmount_all() {
  set +e
  mountpoint -q "$work/mnt-tsbak" && fusermount -u -z "$work/mnt-tsbak"
  if [ -n "$restic_pid" ] && kill -0 "$restic_pid" 2>/dev/null; then
    kill -INT "$restic_pid"
    wait "$restic_pid" 2>/dev/null
  fi
  restic_pid=
  mountpoint -q "$work/mnt-restic" && fusermount -u -z "$work/mnt-restic"
  mountpoint -q "$work/mnt-borg" && { borg umount "$work/mnt-borg" || fusermount -u -z "$work/mnt-borg"; }
  set -e
}
cleanup() {
  unmount_all
  [ -n "$out_tmp" ] && rm -rf "$out_tmp"
  if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
has() { [[ " $tools " == *" $1 "* ]]; }
step() { [[ " $steps " == *" $1 "* ]]; }

# ---- data ----
if [ -n "$reuse" ] && [ -d "$work/data" ]; then
  say "reusing the data and repositories in $work"
else
  reuse=
  say "copying $tree_src, building a $big_mib MiB file and 8 files of $par_mib MiB in $work/data"
  mkdir -p "$work/data/par"
  cp -a "$tree_src" "$work/data/tree"
  head -c "${big_mib}M" /dev/urandom > "$work/data/big.bin"
  for i in 0 1 2 3 4 5 6 7; do head -c "${par_mib}M" /dev/urandom > "$work/data/par/p$i.bin"; done
fi
data_bytes=$(du -sb --apparent-size "$work/data" | cut -f1)
data_files=$(find "$work/data" | wc -l)
big_bytes=$(stat -c %s "$work/data/big.bin")
par_bytes=$((8 * $(stat -c %s "$work/data/par/p0.bin")))
if [ -n "${BENCH_OUT_DIR:-}" ]; then
  out_base=$BENCH_OUT_DIR
elif [ -d /dev/shm ] && [ "$(df -B1 --output=avail /dev/shm | tail -1)" -gt $((2 * data_bytes)) ]; then
  out_tmp=$(mktemp -d /dev/shm/tsbak-bench-out.XXXXXX)
  out_base=$out_tmp
else
  out_base=$work
fi
mkdir -p "$out_base"
out="$out_base/out"
say "cp -a copies to $out"

# ---- backups ----
if has tsbak && ! [ -n "$reuse" -a -d "$work/repo-tsbak" ]; then
  say "backing up with tsbak"
  "$here/bin/tsbak" init "$work/repo-tsbak" --parity "${BENCH_TSBAK_PARITY:-off}" > /dev/null
  "$here/bin/tsbak-write" --quiet "$work/repo-tsbak" "$work/data"
fi
if has restic && ! [ -n "$reuse" -a -d "$work/repo-restic" ]; then
  say "backing up with restic"
  restic --quiet init --repo "$work/repo-restic" > /dev/null
  restic --quiet --repo "$work/repo-restic" backup "$work/data" > /dev/null
fi
if has borg && ! [ -n "$reuse" -a -d "$work/repo-borg" ]; then
  say "backing up with borg"
  borg init --encryption=repokey-blake2 "$work/repo-borg" > /dev/null 2>&1
  borg create --compression lz4 "$work/repo-borg::bench" "$work/data"
fi

# ---- mounts: one fresh mount per measurement ----
mkdir -p "$work/mnt-tsbak" "$work/mnt-restic" "$work/mnt-borg"
wait_for() { # path log
  for _ in $(seq 1 600); do
    [ -e "$1" ] && return 0
    sleep 0.1
  done
  say "mount did not come up ($1):"
  cat "$2" >&2
  exit 1
}
# Mounts $1 and sets `src` to the backed-up data directory in it. Paths name the
# snapshot, not a `latest` symlink: every path through a symlink costs one more request.
mount_tool() {
  case $1 in
    tsbak)
      # shellcheck disable=SC2086
      "$here/bin/mount.tsbak" "$work/repo-tsbak" "$work/mnt-tsbak" ${BENCH_TSBAK_MOUNT_OPTS:-}
      src="$work/mnt-tsbak/snapshots/$(readlink "$work/mnt-tsbak/snapshots/latest")$work/data" ;;
    restic)
      restic --repo "$work/repo-restic" mount "$work/mnt-restic" > "$work/restic-mount.log" 2>&1 &
      restic_pid=$!
      wait_for "$work/mnt-restic/snapshots/latest" "$work/restic-mount.log"
      src="$work/mnt-restic/snapshots/$(readlink "$work/mnt-restic/snapshots/latest")$work/data" ;;
    borg)
      borg mount "$work/repo-borg::bench" "$work/mnt-borg" > "$work/borg-mount.log" 2>&1
      src="$work/mnt-borg/${work#/}/data" ;;
  esac
  [ -f "$src/big.bin" ] || { say "no big.bin under $src"; exit 1; }
}

declare -A secs
measure() { # op command... (with $src set by mount_tool)
  local op=$1 tool
  shift
  step "$op" || return 0
  for tool in $tools; do
    mount_tool "$tool"
    local a b
    a=$(now)
    "$@"
    b=$(now)
    secs[$op-$tool]=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b - a }')
    say "$op $tool: ${secs[$op-$tool]} s"
    if [ "$op" = cp ]; then
      diff -r "$work/data" "$out" > /dev/null || { say "the copy out of $tool's mount differs from the original"; exit 1; }
      rm -rf "$out"
    fi
    unmount_all
  done
}
ls_lr() { ls -lR "$src" > /dev/null; }
cp_a() { cp -a "$src" "$out"; }
seq_read() { dd if="$src/big.bin" of=/dev/null bs=1M status=none; }
par_read() {
  local i pids=()
  for i in 0 1 2 3 4 5 6 7; do cat "$src/par/p$i.bin" > /dev/null & pids+=($!); done
  for i in "${pids[@]}"; do wait "$i"; done
}

measure ls ls_lr
measure seq seq_read
measure par par_read
measure cp cp_a

# ---- table ----
ver() {
  case $1 in
    tsbak) "$here/bin/tsbak" --version 2>/dev/null | head -1 | awk '{ print $NF }' ;;
    restic) restic version | awk '{ print $2 }' ;;
    borg) borg --version | awk '{ print $2 }' ;;
  esac
}
row() { # label op kind(time|rate) bytes
  local line="| $1 |" t r
  step "$2" || return 0
  for t in $tools; do
    if [ "$3" = time ]; then line+=" $(awk -v s="${secs[$2-$t]}" 'BEGIN { printf "%.2f s", s }') |"
    else line+=" $(awk -v n="$4" -v s="${secs[$2-$t]}" 'BEGIN { printf "%.0f MB/s", n / s / 1e6 }') |"; fi
  done
  if has tsbak; then
    for r in $tools; do
      [ "$r" = tsbak ] && continue
      line+=" $(awk -v a="${secs[$2-tsbak]}" -v b="${secs[$2-$r]}" -v k="$3" 'BEGIN { printf "%.2fx", k == "time" ? a / b : b / a }') |"
    done
  fi
  printf '%s\n' "$line"
}
{
  head="| $(nproc) cores, $(date -u +%Y-%m-%d) |"
  sep="|---|"
  for t in $tools; do head+=" $t $(ver "$t") |"; sep+="---|"; done
  if has tsbak; then for r in $tools; do [ "$r" = tsbak ] || { head+=" tsbak/$r |"; sep+="---|"; }; done; fi
  printf '%s\n%s\n' "$head" "$sep"
  row "\`ls -lR\`, $data_files entries" ls time
  row "\`cp -a\` of the snapshot, $((data_bytes / 1000000)) MB" cp time
  row "sequential read, $big_mib MiB file" seq rate "$big_bytes"
  row "8 parallel readers, 8 x $par_mib MiB" par rate "$par_bytes"
} | tee "$work/results.md"

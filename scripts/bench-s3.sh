#!/usr/bin/env bash
# Reading and writing over S3 at WAN latencies: tsbak against restic 0.14, same data, same
# S3 server, same run (issue 23). The server is scripts/s3-dev-server.mjs on loopback
# (s3rver behind our proxy), which waits --latency-ms before each request and counts them;
# it decodes restic's aws-chunked uploads, so restic can use it too.
#
# For each latency (default 0, 40 and 100 ms), for each tool, into a fresh repository:
#   backup          of the corpus
#   restore         of that snapshot into an empty directory (peak RSS too)
#   mount ls -lR    of the snapshot's tree through the tool's FUSE mount
#   mount cp -a     of the snapshot's tree out of the mount
#   check           --read-data (restic: check --read-data)
#   ls -l (tsbak)   `tsbak ls -l` twice: a cold cache, then a warm one (trees cached?)
# Every step starts with an empty client cache (a machine that never saw the repository),
# except the second ls. Plus, right before tsbak's S3 mount `cp -a` at each latency: the
# same `cp -a` out of a mount of a local-disk repository of the corpus, the reference for
# "S3 mount at 100 ms within 2x of a local mount" (measured next to it: load moves both).
# Prints a table: seconds, requests (GETs among them), MB/s of corpus bytes, the ratio to
# the same step at 0 ms, tsbak/restic, peak RSS of the restores; writes it to
# $BENCH_DIR/results-s3.md with the machine and the date.
#
#   npm run bench:s3                  or   bash scripts/bench-s3.sh
#   BENCH_CORPUS=/usr/include/linux   what to copy as the corpus (default /usr/include)
#   BENCH_LATENCIES="0 100"           latencies in ms (default "0 40 100")
#   BENCH_TOOLS="tsbak"               a subset of: tsbak restic
#   BENCH_STEPS="backup restore"      a subset of: backup restore mount check ls
#   BENCH_DIR=/path BENCH_KEEP=1      where to work (default a new /var/tmp dir), keep it
#   BENCH_OUT_DIR=/path               where the mounts' `cp -a` writes its copy (default: a
#                                     directory in /dev/shm when it has room, so that the
#                                     disk, the same for every tool, does not set the time)
#
# Needs: node with a built dist/, restic, fusermount, /usr/bin/time, curl, python3.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
corpus_src=${BENCH_CORPUS:-/usr/include}
latencies=${BENCH_LATENCIES:-0 40 100}
tools=${BENCH_TOOLS:-tsbak restic}
steps=${BENCH_STEPS:-backup restore mount check ls}
work=${BENCH_DIR:-$(mktemp -d /var/tmp/tsbak-bench-s3.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
logs=$work/logs
mkdir -p "$logs"
: > "$work/results-s3.tsv"

say() { printf '%s\n' "$*" >&2; }
die() { say "bench-s3: $*"; exit 1; }
has() { case " $1 " in *" $2 "*) return 0 ;; esac; return 1; }
for t in $tools; do case $t in tsbak|restic) ;; *) die "unknown tool in BENCH_TOOLS: $t" ;; esac; done
for s in $steps; do case $s in backup|restore|mount|check|ls) ;; *) die "unknown step in BENCH_STEPS: $s" ;; esac; done
for c in node restic fusermount curl python3; do command -v $c > /dev/null || die "needs $c"; done
[ -x /usr/bin/time ] || die "needs /usr/bin/time (apt-get install time)"
[ -d "$corpus_src" ] || die "no such directory: $corpus_src"

export TSBAK_PASSWORD=bench-password TSBAK_FAST_KDF=1 RESTIC_PASSWORD=bench-password
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
bucket=bench
server_pid=
restic_pid=
mounted=()
out_tmp=

cleanup() {
  set +e
  for m in "${mounted[@]}"; do mountpoint -q "$m" && fusermount -u -z "$m"; done
  # never recurse into a mount that is still there (rm would walk the snapshots)
  for m in "${mounted[@]}"; do mountpoint -q "$m" && { say "still mounted: $m; kept $work"; return; }; done
  if [ -n "$restic_pid" ] && kill -0 "$restic_pid" 2>/dev/null; then kill -INT "$restic_pid"; wait "$restic_pid" 2>/dev/null; fi
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null; fi
  [ -n "$out_tmp" ] && rm -rf "$out_tmp"
  if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$work"; else say "kept $work"; fi
}
trap cleanup EXIT

# ---- the corpus ----
corpus=$work/corpus
say "copying $corpus_src to $corpus"
mkdir -p "$corpus"
cp -a "$corpus_src/." "$corpus/"
corpus_bytes=$(find "$corpus" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d\n", s }')
corpus_files=$(find "$corpus" -type f | wc -l)
say "corpus: $corpus_bytes bytes in $corpus_files files"
find "$corpus" -type f -print0 | xargs -0 -r cat > /dev/null # warm the page cache
if [ -n "${BENCH_OUT_DIR:-}" ]; then
  copies=$BENCH_OUT_DIR
elif [ -d /dev/shm ] && [ "$(df -B1 --output=avail /dev/shm | tail -1)" -gt $((3 * corpus_bytes)) ]; then
  out_tmp=$(mktemp -d /dev/shm/tsbak-bench-s3-out.XXXXXX)
  copies=$out_tmp
else
  copies=$work
fi
mkdir -p "$copies"
say "the mounts' cp -a copies to $copies"

# ---- the S3 server ----
node "$here/scripts/s3-dev-server.mjs" --port 0 --dir "$work/s3" --bucket "$bucket" > "$work/server.out" 2> "$work/server.err" &
server_pid=$!
for _ in $(seq 1 300); do grep -q 'listening on' "$work/server.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^s3-dev-server listening on //p' "$work/server.out")
[ -n "$url" ] || { cat "$work/server.err" >&2; die "the S3 dev server did not start"; }
export AWS_ENDPOINT_URL_S3=$url
say "S3 dev server at $url"

dev() { curl -sf -X "$1" "$url/__dev/$2"; }
set_latency() { dev POST "latency?ms=$1" > /dev/null; }
# "requests gets" since the last reset
req_counts() {
  dev GET stats | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["total"], j["requests"].get("GetObject", 0))'
}

# measure LATENCY TOOL STEP CMD...: one timed step; appends latency tool step secs rss requests gets
measure() {
  local lat=$1 tool=$2 step=$3; shift 3
  local name=$tool-$step-$lat rc=0 secs rss req gets
  sync
  dev POST reset-stats > /dev/null
  /usr/bin/time -f '%e %M' -o "$logs/$name.time" "$@" > "$logs/$name.out" 2> "$logs/$name.err" || rc=$?
  if [ $rc -ne 0 ]; then
    say "bench-s3: FAILED ($tool $step at $lat ms, exit code $rc): $*"
    tail -n 30 "$logs/$name.err" >&2
    exit 1
  fi
  read -r secs rss < <(tail -n 1 "$logs/$name.time")
  read -r req gets < <(req_counts)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$lat" "$tool" "$step" "$secs" "$rss" "$req" "$gets" >> "$work/results-s3.tsv"
  say "$(printf '  %3s ms  %-6s %-10s %8.2f s %7d requests (%d GET) %6d MB RSS' "$lat" "$tool" "$step" "$secs" "$req" "$gets" $((rss * 1024 / 1000000)))"
}

# timed LATENCY TOOL STEP CMD...: like measure, for commands run in this shell (no RSS)
timed() {
  local lat=$1 tool=$2 step=$3; shift 3
  local a b req gets
  sync
  dev POST reset-stats > /dev/null
  a=$(date +%s.%N)
  "$@"
  b=$(date +%s.%N)
  read -r req gets < <(req_counts)
  printf '%s\t%s\t%s\t%s\t\t%s\t%s\n' "$lat" "$tool" "$step" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b - a }')" "$req" "$gets" >> "$work/results-s3.tsv"
  say "$(printf '  %3s ms  %-6s %-10s %8.2f s %7d requests (%d GET)' "$lat" "$tool" "$step" "$(awk -v a="$a" -v b="$b" 'BEGIN { print b - a }')" "$req" "$gets")"
}

fresh() { rm -rf "$1"; mkdir -p "$1"; echo "$1"; }
lsr() { ls -lR "$1" > /dev/null; }
cpa() { cp -a "$1" "$2"; }
same_tree() { diff -rq "$corpus" "$1" > /dev/null || die "$2 differs from the corpus"; }

# The mount functions run in this shell, not in $(...), so that `mounted` (what cleanup
# unmounts) sees every mount: MNT is mounted on return and $src is the corpus's path in it.
tsbak_mount() { # REPO MNT CACHE
  mkdir -p "$2"
  mounted+=("$2")
  TSBAK_CACHE_DIR=$3 "$here/bin/mount.tsbak" "$1" "$2"
  src="$2/snapshots/$(readlink "$2/snapshots/latest")$corpus"
}
restic_mount() { # REPO MNT CACHE
  mkdir -p "$2"
  mounted+=("$2")
  RESTIC_CACHE_DIR=$3 restic --repo "$1" mount "$2" > "$logs/restic-mount.log" 2>&1 &
  restic_pid=$!
  for _ in $(seq 1 1200); do [ -e "$2/snapshots/latest" ] && break; sleep 0.1; done
  [ -e "$2/snapshots/latest" ] || { cat "$logs/restic-mount.log" >&2; die "restic mount did not come up"; }
  src="$2/snapshots/$(readlink "$2/snapshots/latest")$corpus"
}
unmount() { # MNT
  fusermount -u "$1" 2>/dev/null || fusermount -u -z "$1"
  if [ -n "$restic_pid" ]; then wait "$restic_pid" 2>/dev/null || true; restic_pid=; fi
}

# ---- the local reference: a local-disk repository, its mount's cp -a timed next to S3's ----
lrepo=
if has "$steps" mount && has "$tools" tsbak; then
  say "local reference repository"
  lrepo=$work/repo-local
  "$here/bin/tsbak" init "$lrepo" --parity "${BENCH_TSBAK_PARITY:-off}" > /dev/null
  TSBAK_CACHE_DIR=$(fresh "$work/cache/local") "$here/bin/tsbak-write" --quiet "$lrepo" "$corpus"
fi
local_cp() { # LATENCY: cp -a out of a new mount of the local repository, recorded as tsbak mount-cp-local
  tsbak_mount "$lrepo" "$work/mnt/local" "$(fresh "$work/cache/local-mount")"
  out=$(fresh "$copies/out")/c
  timed "$1" tsbak mount-cp-local cpa "$src" "$out"
  same_tree "$out" "cp -a out of the local mount"
  unmount "$work/mnt/local"
  rm -rf "$copies/out"
}

# ---- over S3 ----
for lat in $latencies; do
  set_latency "$lat"
  say "latency $lat ms"
  for tool in $tools; do
    repo=s3://$bucket/$tool-$lat
    rrepo=s3:$url/$bucket/$tool-$lat
    if [ "$tool" = tsbak ]; then
      "$here/bin/tsbak" init "$repo" > /dev/null
    else
      restic --repo "$rrepo" init > /dev/null
    fi
    # backup: always (the other steps need it), measured
    if [ "$tool" = tsbak ]; then
      measure "$lat" tsbak backup env TSBAK_CACHE_DIR="$(fresh "$work/cache/t")" "$here/bin/tsbak-write" --quiet "$repo" "$corpus"
    else
      measure "$lat" restic backup env RESTIC_CACHE_DIR="$(fresh "$work/cache/r")" restic --repo "$rrepo" backup --quiet "$corpus"
    fi
    if has "$steps" restore; then
      out=$(fresh "$work/out")
      if [ "$tool" = tsbak ]; then
        measure "$lat" tsbak restore env TSBAK_CACHE_DIR="$(fresh "$work/cache/t")" "$here/bin/tsbak" restore "$repo" latest --target "$out"
      else
        measure "$lat" restic restore env RESTIC_CACHE_DIR="$(fresh "$work/cache/r")" restic --repo "$rrepo" restore latest --target "$out"
      fi
      same_tree "$out$corpus" "$tool's restore"
      rm -rf "$out"
    fi
    if has "$steps" mount; then
      mnt=$work/mnt/$tool-$lat
      if [ "$tool" = tsbak ]; then tsbak_mount "$repo" "$mnt" "$(fresh "$work/cache/t")"; else restic_mount "$rrepo" "$mnt" "$(fresh "$work/cache/r")"; fi
      timed "$lat" "$tool" mount-ls lsr "$src"
      unmount "$mnt"
      # cp -a from a new mount: the listing above must not have warmed it
      if [ "$tool" = tsbak ]; then local_cp "$lat"; fi
      if [ "$tool" = tsbak ]; then tsbak_mount "$repo" "$mnt" "$(fresh "$work/cache/t")"; else restic_mount "$rrepo" "$mnt" "$(fresh "$work/cache/r")"; fi
      out=$(fresh "$copies/out")/c
      timed "$lat" "$tool" mount-cp cpa "$src" "$out"
      unmount "$mnt"
      same_tree "$out" "cp -a out of $tool's mount"
      rm -rf "$copies/out"
    fi
    if has "$steps" check; then
      if [ "$tool" = tsbak ]; then
        measure "$lat" tsbak check env TSBAK_CACHE_DIR="$(fresh "$work/cache/t")" "$here/bin/tsbak" check "$repo" --read-data
      else
        measure "$lat" restic check env RESTIC_CACHE_DIR="$(fresh "$work/cache/r")" restic --repo "$rrepo" check --read-data
      fi
    fi
    if has "$steps" ls && [ "$tool" = tsbak ]; then
      cache=$(fresh "$work/cache/t")
      measure "$lat" tsbak ls-cold env TSBAK_CACHE_DIR="$cache" "$here/bin/tsbak" ls "$repo" latest --long
      measure "$lat" tsbak ls-warm env TSBAK_CACHE_DIR="$cache" "$here/bin/tsbak" ls "$repo" latest --long
    fi
  done
done

# ---- the table ----
node "$here/scripts/bench/s3-table.mjs" "$work/results-s3.tsv" "$corpus_bytes" "$corpus_files" "$corpus_src" | tee "$work/results-s3.md"

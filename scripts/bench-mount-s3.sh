#!/usr/bin/env bash
# Reading out of a mount of an S3 repository at a given latency, against a mount of the same
# data in a local repository, same run: `ls -lR` and `cp -a` of the snapshot, seconds and
# requests. The S3 server is scripts/s3-dev-server.mjs on loopback, behind
# scripts/s3-count-proxy.mjs, which counts the requests and waits BENCH_LATENCY_MS before
# passing each one on. Each mount starts with an empty local cache (then, for the S3 mount,
# a second `ls -lR` on a new mount with the cache kept: the trees come from disk).
#
#   scripts/bench-mount-s3.sh                          /usr/include, at 0 and 100 ms
#   BENCH_SRC=/some/dir BENCH_LATENCIES="0 40" ...     other data, other latencies
#   BENCH_BUILDS="/path/to/other/checkout ." ...       compare builds (each with a built dist/)
#
# Needs: node (and a built dist/), fusermount.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
src=${BENCH_SRC:-/usr/include}
latencies=${BENCH_LATENCIES-0 100}
builds=${BENCH_BUILDS:-$here}
work=$(mktemp -d /var/tmp/tsbak-bench-mount-s3.XXXXXX)
export TSBAK_PASSWORD=bench-password TSBAK_FAST_KDF=1
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
pids=()

cleanup() {
  set +e
  mountpoint -q "$work/mnt" && fusermount -u -z "$work/mnt"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

# A child that prints "... listening on URL", started in the background (in this shell, so
# that cleanup stops it); url_of waits for its URL.
start_listener() {
  local log=$1
  shift
  "$@" > "$log" 2>&1 < /dev/null &
  pids+=($!)
}
url_of() {
  for _ in $(seq 100); do
    if grep -q 'listening on' "$1"; then sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$1" | head -1; return; fi
    sleep 0.1
  done
  say "no server in $1: $(cat "$1")"
  exit 1
}

start_listener "$work/s3.log" node "$here/scripts/s3-dev-server.mjs" --port 0 --dir "$work/s3" --bucket bench
s3=$(url_of "$work/s3.log")
start_listener "$work/proxy.log" node "$here/scripts/s3-count-proxy.mjs" --target "$s3" --port 0
proxy=$(url_of "$work/proxy.log")
export AWS_ENDPOINT_URL_S3=$proxy
requests() { curl -s "$proxy/__proxy/requests" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);const g=r.filter(([m])=>m==="GET");console.log(`${r.length} requests (${g.filter(([,p])=>p.includes("/packs/data/")).length} data GETs, ${g.filter(([,p])=>p.includes("/packs/tree/")).length} tree GETs)`)})'; }
reset() { curl -s -X POST "$proxy/__proxy/reset" > /dev/null; }
latency() { curl -s -X POST "$proxy/__proxy/latency?ms=$1" > /dev/null; }

say "backing up $src ($(du -sh "$src" | cut -f1)) to s3://bench/repo and $work/local"
first=${builds%% *}
# The backup goes to the server itself: only the mounts' requests are counted.
AWS_ENDPOINT_URL_S3=$s3 "$first/bin/tsbak" init s3://bench/repo > /dev/null
AWS_ENDPOINT_URL_S3=$s3 "$first/bin/tsbak-write" s3://bench/repo "$src" -q --cache-dir "$work/wcache"
"$first/bin/tsbak" init "$work/local" --parity "${BENCH_TSBAK_PARITY:-off}" > /dev/null
"$first/bin/tsbak-write" "$work/local" "$src" -q --cache-dir "$work/wcache"
mkdir -p "$work/mnt" "$work/out"

# measure <build> <repo> <label>: ls -lR, then cp -a, on a fresh mount with an empty cache.
measure() {
  local build=$1 repo=$2 label=$3 cache="$work/cache-$RANDOM" t
  local opts="cache_dir=$cache"
  [[ $repo == s3://* ]] && opts="$opts,s3_endpoint=$proxy,s3_path_style"
  "$build/bin/mount.tsbak" "$repo" "$work/mnt" -o "$opts"
  local snap
  snap=$(ls "$work/mnt/snapshots" | grep -v latest | head -1)
  reset
  t=$(now)
  ls -lR "$work/mnt/snapshots/$snap" > /dev/null
  printf '%-28s ls -lR  %6.1f s  %s\n' "$label" "$(since "$t")" "$(requests)"
  reset
  t=$(now)
  cp -a "$work/mnt/snapshots/$snap" "$work/out/copy"
  printf '%-28s cp -a   %6.1f s  %s\n' "$label" "$(since "$t")" "$(requests)"
  diff -r --no-dereference "$src" "$work/out/copy$src" > /dev/null || { say "$label: the copy differs from $src"; exit 1; }
  rm -rf "$work/out/copy"
  fusermount -u "$work/mnt"
  while pgrep -f "cli/mount.js $repo $work/mnt" > /dev/null; do sleep 0.2; done
  if [[ $repo == s3://* ]]; then
    "$build/bin/mount.tsbak" "$repo" "$work/mnt" -o "$opts"
    reset
    t=$(now)
    ls -lR "$work/mnt/snapshots/$snap" > /dev/null
    printf '%-28s ls -lR  %6.1f s  %s (second mount, cache kept)\n' "$label" "$(since "$t")" "$(requests)"
    fusermount -u "$work/mnt"
    while pgrep -f "cli/mount.js $repo $work/mnt" > /dev/null; do sleep 0.2; done
  fi
}

for build in $builds; do
  name=$(basename "$(cd "$build" && pwd)")
  measure "$build" "$work/local" "$name local"
  for ms in $latencies; do
    latency "$ms"
    measure "$build" s3://bench/repo "$name s3 ${ms} ms"
  done
  latency 0
done

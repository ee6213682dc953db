#!/usr/bin/env bash
# `tsbak watch` at scale (issue 21): a tree of BENCH_WATCH_DIRS directories (default 100,000),
# one small file in every 100th.
#   1. inotify: the watcher's start (watches, seconds, RSS), its first snapshot (full check),
#      its CPU time over BENCH_WATCH_IDLE idle seconds (default 60; from /proc/PID/stat),
#      then one file changed deep in the tree: the snapshot's time, directories re-read.
#   2. the watch limit: TSBAK_WATCH_MAX_WATCHES=BENCH_WATCH_LIMIT (default 10,000): the
#      subtrees beyond it are scanned every --interval; one change there is found.
# Prints one line per measurement; RSS is VmRSS of the watcher after its first snapshot.
# Usage: bash scripts/bench-watch.sh        (BENCH_DIR: work directory, default /tmp/tsbak-bench-watch)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dir="${BENCH_DIR:-/tmp/tsbak-bench-watch}"
dirs="${BENCH_WATCH_DIRS:-100000}"
idle="${BENCH_WATCH_IDLE:-60}"
limit="${BENCH_WATCH_LIMIT:-10000}"
export TSBAK_PASSWORD=bench TSBAK_CACHE_DIR="$dir/cache"
rm -rf "$dir" && mkdir -p "$dir"
echo "machine: $(nproc) cores, $(uname -r), fs.inotify.max_user_watches=$(cat /proc/sys/fs/inotify/max_user_watches)"
node "$here/scripts/bench/mk-dir-tree.mjs" "$dir/tree" "$dirs"
"$here/bin/tsbak" init "$dir/repo" >/dev/null 2>&1
node "$here/scripts/bench/watch-run.mjs" "$here/bin/tsbak" "$dir/repo" "$dir/tree" "$idle" inotify
rm -rf "$dir/cache" "$dir/repo" && "$here/bin/tsbak" init "$dir/repo" >/dev/null 2>&1
TSBAK_WATCH_MAX_WATCHES="$limit" node "$here/scripts/bench/watch-run.mjs" "$here/bin/tsbak" "$dir/repo" "$dir/tree" 0 fallback
rm -rf "$dir"

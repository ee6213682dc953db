#!/usr/bin/env bash
# A first backup with parity across packs against one without (issue 20: target within
# 1.15x), on the same corpus, in alternating pairs so that both see the same machine state.
#
# Usage: bash scripts/bench-parity-backup.sh DIR...
#   BENCH_PAIRS=3            pairs per corpus (the first of a pair alternates: with, without, ...)
#   BENCH_PARITY=10+2        the parity of the "with" runs (init --parity)
#   BENCH_NO_PARITY=off      what init is given for the "without" runs
#   BENCH_WORK=/tmp/x        repositories and caches (default /tmp/tsbak-bench-parity; removed after each run)
#   BENCH_ENV="A=1 B=2"      extra environment of the backups (both kinds)
# Each run: a fresh repository (init, not timed), the page cache warm over the corpus, sync,
# then `tsbak-write REPO DIR --json` under /usr/bin/time. Prints one line per run (wall,
# user, sys, max RSS, parity objects and bytes) and, per corpus, the medians and the ratio.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
work=${BENCH_WORK:-/tmp/tsbak-bench-parity}
pairs=${BENCH_PAIRS:-3}
with=${BENCH_PARITY:-10+2}
without=${BENCH_NO_PARITY:-off}
export TSBAK_PASSWORD=bench-password
unset TSBAK_FAST_KDF TSBAK_PASSWORD_FILE
[ $# -ge 1 ] || { echo "usage: $0 DIR..." >&2; exit 2; }
echo "# $(date -u +%FT%TZ) $(uptime)"
echo "# $(git -C "$here" rev-parse --short HEAD 2>/dev/null) parity=$with env=${BENCH_ENV:-}"
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
for dir in "$@"; do
  bytes=$(du -sb "$dir" | cut -f1)
  find "$dir" -type f -print0 | xargs -0 cat > /dev/null
  rm -f "$work/runs"
  for ((i = 0; i < pairs; i++)); do
    if ((i % 2 == 0)); then order="with without"; else order="without with"; fi
    for kind in $order; do
      rm -rf "$work/repo" "$work/cache"
      mkdir -p "$work"
      spec=$with
      [ "$kind" = without ] && spec=$without
      "$here/bin/tsbak" init "$work/repo" --parity "$spec" > /dev/null
      sync
      t=$(env ${BENCH_ENV:-} /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$here/bin/tsbak-write" "$work/repo" "$dir" --json --cache-dir "$work/cache" > "$work/out.json" && cat "$work/time")
      pobj=0 pbytes=0
      if [ -d "$work/repo/packs/parity" ]; then
        pobj=$(find "$work/repo/packs/parity" -type f | wc -l)
        pbytes=$(du -sb "$work/repo/packs/parity" | cut -f1)
      fi
      packs=$(du -sb "$work/repo/packs" | cut -f1)
      read -r e u s m <<< "$t"
      cpu=$(echo "$u $s" | awk '{printf "%.2f", $1 + $2}')
      printf '%s %-7s wall %6.2f s  cpu %6.2f s (user %s sys %s)  rss %s MB  packs %s MB  parity %s objects %s MB\n' \
        "$(basename "$dir")" "$kind" "$e" "$cpu" "$u" "$s" "$((m / 1024))" "$((packs / 1000000))" "$pobj" "$((pbytes / 1000000))"
      echo "$kind $e $cpu" >> "$work/runs"
    done
  done
  ww=$(awk '$1=="with"{print $2}' "$work/runs" | median); wo=$(awk '$1=="without"{print $2}' "$work/runs" | median)
  cw=$(awk '$1=="with"{print $3}' "$work/runs" | median); co=$(awk '$1=="without"{print $3}' "$work/runs" | median)
  echo "$(basename "$dir") ($((bytes / 1000000)) MB): median wall with $ww s, without $wo s: $(echo "$ww $wo" | awk '{printf "%.3f", $1/$2}')x; cpu with $cw s, without $co s: $(echo "$cw $co" | awk '{printf "%.3f", $1/$2}')x"
  rm -rf "$work/repo" "$work/cache"
done

#!/usr/bin/env bash
# Restores of one corpus by tsbak and restic, in pairs, the order alternating, each deleted
# and synced before the next: wall / user / system seconds and peak RSS of each, and the
# median ratio. For comparing restore targets (docs/PERFORMANCE.md, "Restores to disk").
#
#   bash scripts/bench/restore-pairs.sh CORPUS_DIR PAIRS TARGET_DIR [WORK_DIR]
#
# The repositories (one backup of CORPUS_DIR each) are made in WORK_DIR (default
# /var/tmp/tsbak-restore-pairs/<corpus name>) and kept for the next call.
# TSBAK_ENV="VAR=value ..." is put in tsbak's environment (e.g. UV_THREADPOOL_SIZE=2).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 CORPUS_DIR PAIRS TARGET_DIR [WORK_DIR]" >&2; exit 2; }
here=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
corpus=$(cd "$1" && pwd); pairs=$2; target=$3
work=${4:-/var/tmp/tsbak-restore-pairs/$(basename "$corpus")}
mkdir -p "$work" "$target"
export TSBAK_PASSWORD=bench RESTIC_PASSWORD=bench
if [ ! -d "$work/tsbak" ]; then
  "$here/bin/tsbak" init "$work/tsbak" --parity none > /dev/null
  "$here/bin/tsbak-write" "$work/tsbak" "$corpus" --cache-dir "$work/tsbak-cache" -q > /dev/null
  restic init -q -r "$work/restic" > /dev/null
  restic -q -r "$work/restic" backup "$corpus" --cache-dir "$work/restic-cache" > /dev/null
fi
one() {
  local d=$target/$1
  mkdir -p "$d"; sync
  if [ "$1" = tsbak ]; then
    # shellcheck disable=SC2086
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" env ${TSBAK_ENV:-} "$here/bin/tsbak" restore "$work/tsbak" latest --target "$d" --cache-dir "$work/tsbak-cache" > /dev/null
  else
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" restic -q -r "$work/restic" restore latest --target "$d" --cache-dir "$work/restic-cache" > /dev/null
  fi
  tail -1 "$work/time"
  rm -rf "$d"; sync
}
ratios=()
for i in $(seq "$pairs"); do
  if [ $((i % 2)) = 1 ]; then a=$(one tsbak); b=$(one restic); else b=$(one restic); a=$(one tsbak); fi
  r=$(awk -v a="${a%% *}" -v b="${b%% *}" 'BEGIN { printf "%.3f", a / b }')
  ratios+=("$r")
  echo "tsbak [$a] restic [$b] (wall user sys s, RSS KB): $r"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print "tsbak/restic median", a[int((NR + 1) / 2)], "min", a[1], "max", a[NR] }'

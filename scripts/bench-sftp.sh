#!/usr/bin/env bash
# tsbak against restic over SFTP: same data, same sshd on loopback, same run (issue 20).
#
# Starts an OpenSSH sshd on a free loopback port (a temporary host key and user key), copies
# the corpus (bench.sh's README corpus: /usr/share and /usr/include, ~840 MB, ~58k files;
# BENCH_CORPORA adds bench.sh's "files" corpus of medium-size files and its "images" corpus of
# a few large binaries), warms the page cache,
# then BENCH_RUNS times, each tool into a fresh repository on the server:
#   backup    first backup of the corpus, an empty client cache
#   restore   of that snapshot into an empty directory, an empty client cache (then
#             compared with the corpus: diff -r)
# tsbak uses its SFTP backend (ssh2, sftp://user@127.0.0.1:PORT/path); restic its own,
# which runs OpenSSH's ssh: -o sftp.command="ssh ... -p PORT -i KEY -o UserKnownHostsFile=..".
# Steps alternate between the tools, so both see the same machine state; which tool goes
# first alternates between runs (run 1 tsbak, run 2 restic, ...). Prints a table of
# seconds, MB/s of corpus bytes and peak RSS per run, the tsbak/restic ratio, and writes it
# to $BENCH_DIR/results-sftp.md with the machine, the load and the versions.
#
#   bash scripts/bench-sftp.sh
#   BENCH_RUNS=2                      runs (default 2: the machine is shared, take the spread)
#   BENCH_SOURCES="/usr/include"      what the README corpus copies (default /usr/share /usr/include)
#   BENCH_CORPORA="usr files images"  corpora, a subset of: usr files images (default usr)
#   BENCH_FILES_COUNT=7000 BENCH_FILES_MIB=400    the files corpus (scripts/bench/mkcorpus.mjs)
#   BENCH_IMAGES_MIB=512              the images corpus (scripts/bench/mkcorpus.mjs)
#   BENCH_TOOLS="tsbak"               a subset of: tsbak restic tsbak-main (tsbak-main: tsbak with
#                                     ssh2 on the main thread, TSBAK_SFTP_TRANSPORT=main, to weigh the
#                                     SSH worker thread in the same run; it is in the log, not the table)
#   BENCH_DIR=/path BENCH_KEEP=1      where to work (default a new /var/tmp dir), keep it
#
# sshd serves SFTP with internal-sftp (sftp-server's code inside sshd): no login shell per
# connection, whose start-up files (a root .bashrc running pyenv here) cost ~1 s a session
# and would measure the machine, not the tools. Both tools connect to the same server.
# "sshd CPU s" is what the server spent on each step (user+sys of the sshd sessions the step
# opened, from the listener's reaped children): on a 2-core machine it competes with the client.
# Settings: defaults of both tools (tsbak zstd 3; restic repository v2, compression auto),
# real KDFs, caches under the work dir. Needs root (sshd), openssh-server, restic, /usr/bin/time.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
runs=${BENCH_RUNS:-2}
sources=${BENCH_SOURCES:-/usr/share /usr/include}
corpora=${BENCH_CORPORA:-usr}
tools=${BENCH_TOOLS:-tsbak restic}
files_count=${BENCH_FILES_COUNT:-7000}
files_mib=${BENCH_FILES_MIB:-400}
images_mib=${BENCH_IMAGES_MIB:-512}
work=${BENCH_DIR:-$(mktemp -d /var/tmp/tsbak-bench-sftp.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
logs=$work/logs
rm -rf "$logs" "$work/results-sftp.tsv"
mkdir -p "$logs"
: > "$work/results-sftp.tsv"

say() { printf '%s\n' "$*" >&2; }
die() { say "bench-sftp: $*"; exit 1; }
for t in $tools; do case $t in tsbak|tsbak-main|restic) ;; *) die "unknown tool in BENCH_TOOLS: $t" ;; esac; done
for c in $corpora; do case $c in usr|files|images) ;; *) die "unknown corpus in BENCH_CORPORA: $c" ;; esac; done
for c in node restic ssh ssh-keygen; do command -v $c > /dev/null || die "needs $c"; done
[ -x /usr/sbin/sshd ] || die "needs /usr/sbin/sshd (apt-get install openssh-server)"
[ -x /usr/bin/time ] || die "needs /usr/bin/time (apt-get install time)"
[ -f "$here/dist/src/cli/entry-tsbak-write.js" ] || die "tsbak is not built: run npm ci (or npm run build) first"

export TSBAK_PASSWORD=bench-password RESTIC_PASSWORD=bench-password
unset TSBAK_FAST_KDF TSBAK_PASSWORD_FILE RESTIC_REPOSITORY RESTIC_PASSWORD_FILE SSH_AUTH_SOCK
sshd_pid=

cleanup() {
  set +e
  if [ -n "$sshd_pid" ] && kill -0 "$sshd_pid" 2>/dev/null; then kill -TERM "$sshd_pid"; wait "$sshd_pid" 2>/dev/null; fi
  if [ -z "${BENCH_KEEP:-}" ] || [ "${BENCH_KEEP:-}" = 0 ]; then rm -rf "$work/corpora" "$work/repos" "$work/out" "$work/cache"; fi
}
trap cleanup EXIT

# ---- sshd on loopback ----
ssh_dir=$work/ssh
rm -rf "$ssh_dir"
mkdir -p "$ssh_dir"
ssh-keygen -q -t ed25519 -N '' -C bench-host -f "$ssh_dir/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -C bench-user -f "$ssh_dir/user_ed25519"
cp "$ssh_dir/user_ed25519.pub" "$ssh_dir/authorized_keys"
[ -d /run/sshd ] || mkdir -p /run/sshd
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
user=$(id -un)
cat > "$ssh_dir/sshd_config" << EOF
Port $port
ListenAddress 127.0.0.1
HostKey $ssh_dir/host_ed25519
PidFile $ssh_dir/sshd.pid
AuthorizedKeysFile $ssh_dir/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
MaxStartups 100
MaxSessions 100
Subsystem sftp internal-sftp
LogLevel INFO
EOF
/usr/sbin/sshd -D -E "$ssh_dir/sshd.log" -f "$ssh_dir/sshd_config" &
sshd_pid=$!
for _ in $(seq 1 300); do grep -q 'Server listening' "$ssh_dir/sshd.log" 2>/dev/null && break; kill -0 "$sshd_pid" 2>/dev/null || break; sleep 0.1; done
grep -q 'Server listening' "$ssh_dir/sshd.log" 2>/dev/null || { cat "$ssh_dir/sshd.log" >&2; die "sshd did not start"; }
echo "[127.0.0.1]:$port $(cut -d' ' -f1-2 "$ssh_dir/host_ed25519.pub")" > "$ssh_dir/known_hosts"
export TSBAK_SFTP_KEY=$ssh_dir/user_ed25519 TSBAK_SFTP_KNOWN_HOSTS=$ssh_dir/known_hosts
restic_ssh="ssh $user@127.0.0.1 -p $port -i $ssh_dir/user_ed25519 -o UserKnownHostsFile=$ssh_dir/known_hosts -o IdentitiesOnly=yes -o BatchMode=yes -s sftp"
say "sshd on 127.0.0.1:$port (OpenSSH $(ssh -V 2>&1 | sed 's/^OpenSSH_\([^,]*\).*/\1/'))"

# ---- the corpora ----
mkdir -p "$work/corpora"
declare -A corpus_bytes corpus_files
for c in $corpora; do
  d=$work/corpora/$c
  rm -rf "$d"
  mkdir -p "$d"
  case $c in
    usr) for s in $sources; do cp -a "$s" "$d/$(basename "$s")"; done ;;
    files) node "$here/scripts/bench/mkcorpus.mjs" files "$d" "$files_count" $((files_mib * 1048576)) ;;
    images) node "$here/scripts/bench/mkcorpus.mjs" images "$d" $((images_mib * 1048576)) ;;
  esac
  corpus_bytes[$c]=$(find "$d" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d\n", s }')
  corpus_files[$c]=$(find "$d" -type f | wc -l)
  # warm the page cache, and move the atimes reading moves before any tool runs
  find "$d" -type f -print0 | xargs -0 -r cat > /dev/null
  find "$d" -type d -print0 | xargs -0 -r ls -f > /dev/null
  say "corpus $c: ${corpus_bytes[$c]} bytes in ${corpus_files[$c]} files"
done

fresh() { rm -rf "$1"; mkdir -p "$1"; echo "$1"; }
# tsbak's SFTP transport: the SSH worker thread (the default), or ssh2 on the main thread for tsbak-main
transport() { if [ "$1" = tsbak-main ]; then echo main; else echo worker; fi; }

# sshd_cpu: user+sys seconds of the sshd sessions that have ended (the listener's reaped children)
sshd_cpu() { awk '{ printf "%.2f\n", ($16 + $17) / 100 }' "/proc/$sshd_pid/stat"; }
# sessions_done: waits (up to 10 s) until the listener has reaped every session of the last step
sessions_done() { for _ in $(seq 1 100); do pgrep -P "$sshd_pid" > /dev/null || return 0; sleep 0.1; done; }

# measure RUN CORPUS TOOL STEP CMD...: one timed step; appends run corpus tool step secs rss load cpu sshd_cpu
measure() {
  local run=$1 corpus=$2 tool=$3 step=$4; shift 4
  local name=$tool-$corpus-$step-$run rc=0 secs rss load usr sys sshd0 sshd1
  sync
  load=$(cut -d' ' -f1 /proc/loadavg)
  sessions_done
  sshd0=$(sshd_cpu)
  /usr/bin/time -f '%e %M %U %S' -o "$logs/$name.time" "$@" > "$logs/$name.out" 2> "$logs/$name.err" || rc=$?
  if [ $rc -ne 0 ]; then
    say "bench-sftp: FAILED ($tool $step, run $run, exit code $rc): $*"
    tail -n 30 "$logs/$name.err" >&2
    exit 1
  fi
  read -r secs rss usr sys < <(tail -n 1 "$logs/$name.time")
  sessions_done
  sshd1=$(sshd_cpu)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$corpus" "$tool" "$step" "$secs" "$rss" "$load" "$(echo "$usr $sys" | awk '{ printf "%.2f", $1 + $2 }')" "$(echo "$sshd1 $sshd0" | awk '{ printf "%.2f", $1 - $2 }')" >> "$work/results-sftp.tsv"
  say "$(printf '  run %s %-6s %-6s %-8s %8.2f s %6d MB RSS, %s s CPU, sshd %s s CPU (load %s)' "$run" "$corpus" "$tool" "$step" "$secs" $((rss * 1024 / 1000000)) "$(echo "$usr $sys" | awk '{ printf "%.2f", $1 + $2 }')" "$(echo "$sshd1 $sshd0" | awk '{ printf "%.2f", $1 - $2 }')" "$load")"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for run in $(seq 1 "$runs"); do
  order=$tools
  if [ $((run % 2)) -eq 0 ]; then order=$(printf '%s\n' $tools | tac | tr '\n' ' '); fi
  for c in $corpora; do
    corpus=$work/corpora/$c
    for tool in $tools; do
      remote=$work/repos/$tool-$c-$run
      rm -rf "$remote"
      if [ "$tool" != restic ]; then
        "$here/bin/tsbak" init "sftp://$user@127.0.0.1:$port$remote" --parity "${BENCH_TSBAK_PARITY:-off}" > "$logs/init-$tool-$c-$run.log" 2>&1 || { cat "$logs/init-$tool-$c-$run.log" >&2; die "tsbak init failed"; }
      else
        restic --repo "sftp:$user@127.0.0.1:$remote" -o sftp.command="$restic_ssh" init > "$logs/init-$tool-$c-$run.log" 2>&1 || { cat "$logs/init-$tool-$c-$run.log" >&2; die "restic init failed"; }
      fi
    done
    for tool in $order; do
      remote=$work/repos/$tool-$c-$run
      if [ "$tool" != restic ]; then
        measure "$run" "$c" "$tool" backup env TSBAK_SFTP_TRANSPORT="$(transport "$tool")" TSBAK_CACHE_DIR="$(fresh "$work/cache/t")" "$here/bin/tsbak-write" --quiet "sftp://$user@127.0.0.1:$port$remote" "$corpus"
      else
        measure "$run" "$c" restic backup env RESTIC_CACHE_DIR="$(fresh "$work/cache/r")" restic --repo "sftp:$user@127.0.0.1:$remote" -o sftp.command="$restic_ssh" backup --quiet "$corpus"
      fi
    done
    for tool in $order; do
      remote=$work/repos/$tool-$c-$run
      out=$(fresh "$work/out")
      if [ "$tool" != restic ]; then
        measure "$run" "$c" "$tool" restore env TSBAK_SFTP_TRANSPORT="$(transport "$tool")" TSBAK_CACHE_DIR="$(fresh "$work/cache/t")" "$here/bin/tsbak" restore "sftp://$user@127.0.0.1:$port$remote" latest --target "$out"
      else
        measure "$run" "$c" restic restore env RESTIC_CACHE_DIR="$(fresh "$work/cache/r")" restic --repo "sftp:$user@127.0.0.1:$remote" -o sftp.command="$restic_ssh" restore latest --target "$out"
      fi
      diff -r --no-dereference "$corpus" "$out$corpus" > "$logs/diff-$tool-$c-$run.log" 2>&1 || { head -n 20 "$logs/diff-$tool-$c-$run.log" >&2; die "$tool's restore differs from the corpus"; }
      rm -rf "$out"
    done
    rm -rf "$work/repos"/*-"$c"-"$run"
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table ----
{
  echo "# tsbak vs restic over SFTP (loopback)"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $load_start at start, $load_end at the end."
  echo "tsbak $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?') (ssh2 $(node -p "require('$here/node_modules/ssh2/package.json').version")), $(restic version | cut -d' ' -f1-2) (OpenSSH's ssh), sshd OpenSSH $(ssh -V 2>&1 | sed 's/^OpenSSH_\([^,]*\).*/\1/')."
  for c in $corpora; do echo "Corpus $c: ${corpus_bytes[$c]} bytes in ${corpus_files[$c]} files."; done
  echo
  awk -F'\t' -v corpora="$corpora" '
    BEGIN { split(corpora, cs, " ") }
    { key = $1 SUBSEP $2 SUBSEP $4; secs[key, $3] = $5; rss[key, $3] = $6; load[key, $3] = $7; cpu[key, $3] = $8; sshd[key, $3] = $9; if (!(key in seen)) { seen[key] = 1; order[++n] = key } }
    END {
      print "| run | corpus | step | tsbak s | restic s | tsbak/restic | tsbak CPU s | restic CPU s | tsbak sshd CPU s | restic sshd CPU s | tsbak MB RSS | restic MB RSS | load at start |"
      print "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
      for (i = 1; i <= n; i++) {
        split(order[i], k, SUBSEP)
        t = secs[order[i], "tsbak"]; r = secs[order[i], "restic"]
        ratio = (t != "" && r != "" && r > 0) ? sprintf("%.2fx", t / r) : "-"
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s |\n", k[1], k[2], k[3], (t == "" ? "-" : t), (r == "" ? "-" : r), ratio, (t == "" ? "-" : cpu[order[i], "tsbak"]), (r == "" ? "-" : cpu[order[i], "restic"]), (t == "" ? "-" : sshd[order[i], "tsbak"]), (r == "" ? "-" : sshd[order[i], "restic"]), (t == "" ? "-" : int(rss[order[i], "tsbak"] * 1024 / 1000000)), (r == "" ? "-" : int(rss[order[i], "restic"] * 1024 / 1000000)), load[order[i], "tsbak"], load[order[i], "restic"]
      }
    }' "$work/results-sftp.tsv"
  if printf '%s\n' $tools | grep -qx tsbak-main; then
    echo
    echo "tsbak with its SSH worker thread (tsbak) against ssh2 on the main thread (tsbak-main, TSBAK_SFTP_TRANSPORT=main):"
    echo
    awk -F'\t' '
      { key = $1 SUBSEP $2 SUBSEP $4; secs[key, $3] = $5; cpu[key, $3] = $8; if (!(key in seen)) { seen[key] = 1; order[++n] = key } }
      END {
        print "| run | corpus | step | tsbak s | tsbak-main s | tsbak/tsbak-main | tsbak CPU s | tsbak-main CPU s |"
        print "|---|---|---|---:|---:|---:|---:|---:|"
        for (i = 1; i <= n; i++) {
          split(order[i], k, SUBSEP)
          t = secs[order[i], "tsbak"]; m = secs[order[i], "tsbak-main"]
          ratio = (t != "" && m != "" && m > 0) ? sprintf("%.2fx", t / m) : "-"
          printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", k[1], k[2], k[3], (t == "" ? "-" : t), (m == "" ? "-" : m), ratio, (t == "" ? "-" : cpu[order[i], "tsbak"]), (m == "" ? "-" : cpu[order[i], "tsbak-main"])
        }
      }' "$work/results-sftp.tsv"
  fi
} > "$work/results-sftp.md"
cat "$work/results-sftp.md"
say "results: $work/results-sftp.md, logs in $logs"

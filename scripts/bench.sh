#!/usr/bin/env bash
# tsbak against restic and borg: same data, same machine, same run (issue 6).
#
# Builds a corpus (a copy of /usr/share and /usr/include, ~700 MB, ~54k files), warms
# the page cache over it once, then for each tool measures, phase by phase so that all
# tools see the same machine state:
#   1. first backup into a fresh local repository
#   2. re-backup, nothing changed
#   3. re-backup after appending a line to every 100th file (sorted order; done once,
#      after every tool's step 2, so all tools back up the same modified tree)
#   4. full restore of the latest snapshot into an empty directory
#   5. backup of one 2 GiB file of mixed data (alternating 4 MiB blocks of random and
#      text data, deterministic: scripts/bench/mkbig.mjs) into a fresh repository
# Then, for each of the other corpora (BENCH_CORPORA; issue 23: data unlike the README
# corpus's tiny text files, built deterministically on this machine, no network):
#   files   ~7k medium-size files of mixed compressibility (scripts/bench/mkcorpus.mjs)
#   images  a raw VM image (zeros, repeated blocks, random, text, copied regions), a later
#           snapshot of it, an archive and a database-like file (mkcorpus.mjs)
#   srcgit  a source tree with its .git: BENCH_GIT_SOURCES committed in three commits (the
#           first packed by git gc, the others loose objects)
#   usr     a copy of BENCH_SOURCES, like the phases above (to compare at a reduced size)
# and for each tool: first backup, unchanged re-backup, restore to a tmpfs and to a
# directory on disk, and the repository's size after both backups.
# Wall seconds and peak RSS come from /usr/bin/time -f '%e %M' (CPU seconds, user + sys, are
# printed beside them), repository sizes from
# du -sb (caches live outside the repositories). Prints one table and writes it as
# markdown, with the machine, the date and the versions, to $BENCH_DIR/results.md.
#
# Usage (as root on Debian; installs restic, borgbackup and time with apt-get if missing):
#   npm run bench                       or   bash scripts/bench.sh
#   BENCH_DIR=/path                     work directory (default /tmp/tsbak-bench); needs
#                                       ~8 GB free; results.md and logs/ stay there
#   BENCH_KEEP=1                        keep corpus, repositories and restores afterwards
#   BENCH_TOOLS="tsbak restic"          a subset of: tsbak restic borg
#   BENCH_TSBAK_PARITY=off              init --parity of the tsbak repositories (default off:
#                                       restic and borg have no parity; 10+2 to include it)
#   BENCH_SOURCES="/usr/include"        what to copy into the corpus
#   BENCH_BIG_MIB=512                   size of the big file (default 2048)
#   BENCH_VERIFY=0                      skip the diff of tsbak's restore against the corpus
#   BENCH_MAIN=0                        skip phases 1-5 (the README corpus and the big file)
#   BENCH_CORPORA="files images"        the other corpora, a subset of: files images srcgit usr
#                                       (default "files images srcgit"; "" for none)
#   BENCH_FILES_COUNT=7000 BENCH_FILES_MIB=400    the files corpus: how many, how big in all
#   BENCH_IMAGES_MIB=512                the images corpus, in all
#   BENCH_GIT_SOURCES="/usr/include"    the text the srcgit corpus commits
#   BENCH_CORPUS_STEPS="backup1"        the steps run on the other corpora, a subset of:
#                                       backup1 backup2 restore (default all; backup1 is
#                                       always run: the others need its repository; the
#                                       repository size comes with backup2)
#   BENCH_CORPUS_RUNS=3                 how many times each step runs on the other corpora,
#                                       the tools' order alternating; the table shows the
#                                       median run (one run varies by more than 10% here)
#   BENCH_TMPFS_DIR=/dev/shm/x          the tmpfs restores of the other corpora go to
#                                       (default /dev/shm/tsbak-bench-restore)
#   BENCH_DISK_DIR=/mnt/x               the disk restores of the other corpora go to (checked
#                                       not to be a tmpfs). Default, as root: a new ext4 made
#                                       by mkfs.ext4 with its defaults (journal included), on
#                                       a loop device (direct I/O) over a sparse image in
#                                       $BENCH_DIR, mounted on $BENCH_DIR/restore-disk; else
#                                       $BENCH_DIR/restore-disk itself. Why a new file system:
#                                       an ext4 without a journal (this machine's root) skips,
#                                       at every inode it allocates, the inodes freed in the
#                                       last 1-6 minutes, one buffer lookup each, and the
#                                       bench deletes each restore before the next: both
#                                       tools then spend most of a restore in that search.
#   BENCH_RESTORE_DIR=/dev/shm/x        where restores go (default $BENCH_DIR/restore): a tmpfs
#                                       takes the disk's state out (after many runs that
#                                       create and delete 54k files, ext4's inode allocator
#                                       made every file creation slow here)
#
# Settings: tsbak defaults (zstd 3), real KDF (TSBAK_FAST_KDF is unset), --cache-dir under
# the work dir; restic defaults (repository v2, compression auto), RESTIC_CACHE_DIR under
# the work dir; borg init -e repokey-blake2, create --compression zstd,3, BORG_BASE_DIR
# under the work dir. A tool that exits non-zero stops the run and its output is printed.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
work=${BENCH_DIR:-/tmp/tsbak-bench}
tools=${BENCH_TOOLS:-tsbak restic borg}
sources=${BENCH_SOURCES:-/usr/share /usr/include}
main=${BENCH_MAIN:-1}
corpora=${BENCH_CORPORA-files images srcgit}
files_count=${BENCH_FILES_COUNT:-7000}
files_mib=${BENCH_FILES_MIB:-400}
images_mib=${BENCH_IMAGES_MIB:-512}
git_sources=${BENCH_GIT_SOURCES:-/usr/include}
tmpfs_dir=${BENCH_TMPFS_DIR:-/dev/shm/tsbak-bench-restore}
corpus_steps=${BENCH_CORPUS_STEPS:-backup1 backup2 restore}
corpus_runs=${BENCH_CORPUS_RUNS:-3}
big_mib=${BENCH_BIG_MIB:-2048}
big_bytes=$((big_mib * 1048576))
if [ "$big_mib" -ge 1024 ] && [ $((big_mib % 1024)) -eq 0 ]; then
  big_label="$((big_mib / 1024)) GiB"
else
  big_label="$big_mib MiB"
fi

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: $*"; exit 1; }
t_start=$(date +%s)

for t in $tools; do
  case $t in tsbak|restic|borg) ;; *) die "unknown tool in BENCH_TOOLS: $t" ;; esac
done
for c in $corpora; do
  case $c in files|images|srcgit|usr) ;; *) die "unknown corpus in BENCH_CORPORA: $c" ;; esac
done
for s in $corpus_steps; do
  case $s in backup1|backup2|restore) ;; *) die "unknown step in BENCH_CORPUS_STEPS: $s (backup1 backup2 restore)" ;; esac
done
corpus_step() { case " $corpus_steps " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
case $corpus_runs in '' | *[!0-9]* | 0) die "BENCH_CORPUS_RUNS=$corpus_runs: give a whole number of runs, 1 or more" ;; esac
# the tools in run N's order: as given in odd runs, reversed in even ones (the first tool
# to read a corpus after a pause may find pages of it evicted; the first run pays for it)
tools_in_run() {
  if [ $(($1 % 2)) -eq 1 ]; then echo "$tools"; else echo "$tools" | tr ' ' '\n' | tac | tr '\n' ' '; fi
}

# ---- prerequisites ----
need_pkgs=()
command -v restic > /dev/null || need_pkgs+=(restic)
command -v borg > /dev/null || need_pkgs+=(borgbackup)
[ -x /usr/bin/time ] || need_pkgs+=(time)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "need root to install: ${need_pkgs[*]}"
  say "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need_pkgs[@]}" > /dev/null 2>&1 || {
    apt-get update > /dev/null
    apt-get install -y --no-install-recommends "${need_pkgs[@]}" > /dev/null
  }
fi
[ -f "$here/dist/src/cli/entry-tsbak-write.js" ] ||
  die "tsbak is not built: run npm ci (or npm run build) first"

# which build of tsbak is measured: a hash of the compiled JavaScript (dist/ is what runs)
dist_hash() { find "$here/dist/src" -name '*.js' -type f -print0 | LC_ALL=C sort -z | xargs -0 cat | sha256sum | cut -c1-12; }
dist_start=$(dist_hash)

mkdir -p "$work"
work=$(cd "$work" && pwd)
corpus=$work/corpus
logs=$work/logs
big_dir=$work/big
big_file=$big_dir/big.bin
disk_dir=${BENCH_DISK_DIR:-$work/restore-disk}
disk_img=$work/restore-disk.img
disk_loop=
disk_kind=
big_dirs=("$corpus" "$work/repos" "$work/restore" "$big_dir" "$work/cache" "$work/corpora" "$tmpfs_dir")
# A directory of the user's is emptied of our restores only; ours goes with the rest.
[ -n "${BENCH_DISK_DIR:-}" ] || big_dirs+=("$disk_dir")

# The disk the other corpora are restored to (see BENCH_DISK_DIR above).
make_disk() {
  mkdir -p "$disk_dir"
  if [ -z "${BENCH_DISK_DIR:-}" ] && [ "$(id -u)" = 0 ] && command -v mkfs.ext4 > /dev/null && command -v losetup > /dev/null; then
    rm -f "$disk_img"
    truncate -s "${BENCH_DISK_GIB:-8}G" "$disk_img"
    mkfs.ext4 -q -F "$disk_img"
    if disk_loop=$(losetup -f --show --direct-io=on "$disk_img") && mount "$disk_loop" "$disk_dir"; then
      disk_kind="a new ext4 (mkfs.ext4 defaults, journal) on $disk_loop, direct I/O over $disk_img"
      return
    fi
    say "  WARNING: could not mount a new ext4 on a loop device: restoring to $disk_dir as it is"
    [ -z "$disk_loop" ] || losetup -d "$disk_loop" || true
    disk_loop=
  fi
  disk_kind="$(fstype "$disk_dir") at $disk_dir"
}
drop_disk() {
  [ -n "$disk_loop" ] || return 0
  umount "$disk_dir" || true
  losetup -d "$disk_loop" || true
  disk_loop=
  rm -f "$disk_img"
}

cleanup() {
  drop_disk
  if [ -z "${BENCH_KEEP:-}" ] || [ "${BENCH_KEEP:-}" = 0 ]; then rm -rf "${big_dirs[@]}"; fi
}
trap cleanup EXIT
rm -rf "${big_dirs[@]}" "$logs" "$work/results.tsv" "$work/meta.env" "$work/results.md"
mkdir -p "$logs" "$work/repos" "$work/restore" "$work/cache" "$big_dir" "$work/corpora"

export TSBAK_PASSWORD=bench-password
unset TSBAK_FAST_KDF TSBAK_PASSWORD_FILE
export TSBAK_CACHE_DIR=$work/cache/tsbak
export RESTIC_PASSWORD=bench-password RESTIC_CACHE_DIR=$work/cache/restic
unset RESTIC_REPOSITORY RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND
export BORG_PASSPHRASE=bench-password BORG_BASE_DIR=$work/cache/borg
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_DISPLAY_PASSPHRASE=no
unset BORG_REPO BORG_PASSCOMMAND BORG_PASSPHRASE_FD

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
say "load average at start: $load_start"
say "tsbak repositories: init --parity ${BENCH_TSBAK_PARITY:-off} (restic and borg have no parity; BENCH_TSBAK_PARITY=10+2 includes it)"

# run CMD..., logging to $logs/NAME.{out,err}; on failure print both and stop
run() {
  local name=$1; shift
  local rc=0
  "$@" > "$logs/$name.out" 2> "$logs/$name.err" || rc=$?
  if [ $rc -ne 0 ]; then
    say "bench: FAILED ($name, exit code $rc): $*"
    say "---- stderr ----"; tail -n 60 "$logs/$name.err" >&2
    say "---- stdout ----"; tail -n 20 "$logs/$name.out" >&2
    exit 1
  fi
}

# measure TOOL OP INPUT_BYTES CMD...: time one step, append a row to results.tsv
measure() {
  local tool=$1 op=$2 bytes=$3; shift 3
  local name=$tool-$op rc=0 secs rss usr sys load
  sync
  load=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f '%e %M %U %S' -o "$logs/$name.time" "$@" > "$logs/$name.out" 2> "$logs/$name.err" || rc=$?
  if [ $rc -ne 0 ]; then
    say "bench: FAILED ($tool, $op, exit code $rc): $*"
    say "---- stderr ----"; tail -n 60 "$logs/$name.err" >&2
    say "---- stdout ----"; tail -n 20 "$logs/$name.out" >&2
    exit 1
  fi
  read -r secs rss usr sys < <(tail -n 1 "$logs/$name.time")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$op" "$secs" "$rss" "$bytes" "$load" >> "$work/results.tsv"
  say "$(printf '  %-6s %-8s %7.2f s  %5.2f CPU-s  %6d MB RSS  (load %s)' "$tool" "$op" "$secs" "$(echo "$usr + $sys" | bc)" $((rss * 1024 / 1000000)) "$load")"
  if [ -s "$logs/$name.err" ]; then
    say "  note: $tool $op wrote to stderr (exit 0):"
    head -n 5 "$logs/$name.err" | sed 's/^/    /' >&2
  fi
  case $op in *restore*) ;; *) if [ "$tool" = tsbak ]; then check_tsbak_json "$logs/$name.out"; fi ;; esac
}

# tsbak-write --json: errors or files that changed while read mean a bad measurement
check_tsbak_json() {
  node -e '
    const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const bad = [];
    if (j.errors && j.errors.length) bad.push("errors: " + JSON.stringify(j.errors).slice(0, 500));
    if (j.changed_while_read && j.changed_while_read.length) bad.push("changed while read: " + JSON.stringify(j.changed_while_read).slice(0, 500));
    if (bad.length) { console.error("  note: tsbak-write reported " + bad.join("; ")); }
  ' "$1" || say "  note: tsbak-write --json output is not one JSON object: $(head -c 300 "$1")"
}

size_of() { du -sb "$1" | cut -f1; }
file_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d\n", s }'; }
record_size() { # TOOL OP PATH
  printf '%s\t%s\t\t\t%s\t\n' "$1" "$2" "$(size_of "$3")" >> "$work/results.tsv"
}
# Reads every file, lists every directory and reads every symlink once: the page cache is
# warm, and the atimes that reading moves (relatime) have moved before any tool runs, so
# no tool's second backup pays for the first one's reads.
warm() {
  find "$@" -type f -print0 | xargs -0 -r cat > /dev/null
  find "$@" -type d -print0 | xargs -0 -r ls -f > /dev/null
  find "$@" -type l -print0 | xargs -0 -r readlink > /dev/null
}

repo() { echo "$work/repos/$1-$2"; }

corpus_bytes=0 corpus_files=0 median_file=- changed=0
if [ "$main" != 0 ]; then
# ---- the corpus ----
say "building the corpus in $corpus from: $sources"
mkdir -p "$corpus"
for s in $sources; do
  [ -d "$s" ] || die "no such directory: $s"
  cp -a "$s" "$corpus/$(basename "$s")"
done
corpus_files=$(find "$corpus" -type f | wc -l)
median_file=$(find "$corpus" -type f -printf '%s\n' | sort -n |
  awk '{ a[NR] = $1 } END { m = a[int((NR + 1) / 2)]; if (m >= 1000) printf "%.1f KB", m / 1000; else printf "%d B", m }')
corpus_bytes=$(size_of "$corpus")
say "corpus: $corpus_bytes bytes, $corpus_files files, median file $median_file"

say "writing the $big_label file"
node "$here/scripts/bench/mkbig.mjs" "$big_file" "$big_bytes"

say "warming the page cache"
warm "$corpus" "$big_dir"

# ---- phases ----
say "phase 1: first backup"
for t in $tools; do
  r=$(repo "$t" corpus)
  case $t in
    tsbak)
      run tsbak-init "$here/bin/tsbak" init "$r" --parity "${BENCH_TSBAK_PARITY:-off}"
      measure tsbak backup1 "$corpus_bytes" "$here/bin/tsbak-write" "$r" "$corpus" --json --cache-dir "$work/cache/tsbak" ;;
    restic)
      run restic-init restic init --repo "$r"
      measure restic backup1 "$corpus_bytes" restic --repo "$r" backup "$corpus" ;;
    borg)
      run borg-init borg init -e repokey-blake2 "$r"
      measure borg backup1 "$corpus_bytes" borg create --compression zstd,3 "$r::backup1" "$corpus" ;;
  esac
done

say "phase 2: unchanged re-backup"
for t in $tools; do
  r=$(repo "$t" corpus)
  case $t in
    tsbak) measure tsbak backup2 "$corpus_bytes" "$here/bin/tsbak-write" "$r" "$corpus" --json --cache-dir "$work/cache/tsbak" ;;
    restic) measure restic backup2 "$corpus_bytes" restic --repo "$r" backup "$corpus" ;;
    borg) measure borg backup2 "$corpus_bytes" borg create --compression zstd,3 "$r::backup2" "$corpus" ;;
  esac
done

say "changing 1% of the files (a line appended to every 100th file in sorted order)"
mapfile -d '' files < <(find "$corpus" -type f -print0 | LC_ALL=C sort -z)
changed=0
for ((i = 99; i < ${#files[@]}; i += 100)); do
  printf 'tsbak-bench: a changed line\n' >> "${files[i]}"
  changed=$((changed + 1))
done
unset files
corpus_bytes2=$(size_of "$corpus")
corpus_file_bytes=$(file_bytes "$corpus")
say "changed $changed files"

say "phase 3: re-backup after changing 1% of the files"
for t in $tools; do
  r=$(repo "$t" corpus)
  case $t in
    tsbak) measure tsbak backup3 "$corpus_bytes2" "$here/bin/tsbak-write" "$r" "$corpus" --json --cache-dir "$work/cache/tsbak" ;;
    restic) measure restic backup3 "$corpus_bytes2" restic --repo "$r" backup "$corpus" ;;
    borg) measure borg backup3 "$corpus_bytes2" borg create --compression zstd,3 "$r::backup3" "$corpus" ;;
  esac
  record_size "$t" size_corpus "$r"
done

say "phase 4: full restore of the latest snapshot"
for t in $tools; do
  r=$(repo "$t" corpus)
  d=${BENCH_RESTORE_DIR:-$work/restore}/$t
  mkdir -p "$d"
  case $t in
    tsbak) measure tsbak restore "$corpus_bytes2" "$here/bin/tsbak" restore "$r" latest --target "$d" ;;
    restic) measure restic restore "$corpus_bytes2" restic --repo "$r" restore latest --target "$d" ;;
    borg) measure borg restore "$corpus_bytes2" sh -c 'cd "$1" && exec borg extract "$2"' sh "$d" "$r::backup3" ;;
  esac
  # not timed: the restore must be complete (and, for tsbak, identical)
  restored=$d${corpus}
  [ -d "$restored" ] || die "$t restore: $restored does not exist"
  n=$(find "$restored" -type f | wc -l)
  b=$(file_bytes "$restored")
  if [ "$n" -ne "$corpus_files" ]; then
    say "  WARNING: $t restored $n files, the corpus has $corpus_files"
  fi
  if [ "$t" = tsbak ] && [ "${BENCH_VERIFY:-1}" != 0 ]; then
    if ! diff -r --no-dereference "$corpus" "$restored" > "$logs/tsbak-restore.diff" 2>&1; then
      say "  WARNING: tsbak's restore differs from the corpus (see $logs/tsbak-restore.diff):"
      head -n 10 "$logs/tsbak-restore.diff" >&2
    else
      say "  tsbak restore: identical to the corpus (diff -r)"
    fi
  fi
  [ "$b" = "$corpus_file_bytes" ] ||
    say "  WARNING: $t restored $b bytes of regular files, the corpus has $corpus_file_bytes"
  rm -rf "$d"
done

say "phase 5: backup of one $big_label file into a fresh repository"
warm "$big_dir"
for t in $tools; do
  r=$(repo "$t" big)
  case $t in
    tsbak)
      run tsbak-init-big "$here/bin/tsbak" init "$r" --parity "${BENCH_TSBAK_PARITY:-off}"
      measure tsbak big "$big_bytes" "$here/bin/tsbak-write" "$r" "$big_file" --json --cache-dir "$work/cache/tsbak" ;;
    restic)
      run restic-init-big restic init --repo "$r"
      measure restic big "$big_bytes" restic --repo "$r" backup "$big_file" ;;
    borg)
      run borg-init-big borg init -e repokey-blake2 "$r"
      measure borg big "$big_bytes" borg create --compression zstd,3 "$r::big" "$big_file" ;;
  esac
  record_size "$t" size_big "$r"
done

fi

# ---- the other corpora ----
# build_corpus NAME DIR: makes one of the other corpora in DIR
build_corpus() {
  local c=$1 d=$2
  case $c in
    files) node "$here/scripts/bench/mkcorpus.mjs" files "$d" "$files_count" $((files_mib * 1048576)) ;;
    images) node "$here/scripts/bench/mkcorpus.mjs" images "$d" $((images_mib * 1048576)) ;;
    usr)
      mkdir -p "$d"
      for s in $sources; do cp -a "$s" "$d/$(basename "$s")"; done ;;
    srcgit)
      # three commits at fixed dates: the sources' first half (sorted, then packed by git gc),
      # the rest, and a line appended to every 20th file (both loose objects)
      mkdir -p "$d/src"
      for s in $git_sources; do
        [ -d "$s" ] || die "no such directory: $s"
        cp -a "$s" "$d/src/$(basename "$s")"
      done
      (
        cd "$d/src"
        export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
        export GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' GIT_COMMITTER_DATE='2026-01-01T00:00:00Z'
        git init -q -b main .
        git config gc.auto 0
        git config pack.threads 1
        find . -path ./.git -prune -o \( -type f -o -type l \) -print | LC_ALL=C sort > ../list
        n=$(wc -l < ../list)
        head -n $((n / 2)) ../list | tr '\n' '\0' | xargs -0 git add -f --
        git commit -q -m 'first half'
        git gc -q
        tail -n +$((n / 2 + 1)) ../list | tr '\n' '\0' | xargs -0 git add -f --
        GIT_COMMITTER_DATE='2026-01-02T00:00:00Z' git commit -q -m 'second half'
        awk 'NR % 20 == 0' ../list | while IFS= read -r f; do
          [ -f "$f" ] && [ ! -L "$f" ] && printf 'bench: changed\n' >> "$f"
        done
        git add -u
        GIT_COMMITTER_DATE='2026-01-03T00:00:00Z' git commit -q -m 'changes'
        rm ../list
      ) ;;
  esac
}

fstype() { df --output=fstype "$1" | tail -1 | tr -d ' '; }
corpora_info=
if [ -n "$corpora" ]; then
  mkdir -p "$tmpfs_dir"
  make_disk
  say "restores to disk go to $disk_kind"
  [ "$(fstype "$tmpfs_dir")" = tmpfs ] || say "  WARNING: $tmpfs_dir is not a tmpfs ($(fstype "$tmpfs_dir"))"
  [ "$(fstype "$disk_dir")" != tmpfs ] || die "$disk_dir is on a tmpfs: set BENCH_DIR to a directory on disk"
fi
for c in $corpora; do
  cdir=$work/corpora/$c
  say "corpus $c: building in $cdir"
  build_corpus "$c" "$cdir"
  c_files=$(find "$cdir" -type f | wc -l)
  c_bytes=$(size_of "$cdir")
  c_file_bytes=$(file_bytes "$cdir")
  c_median=$(find "$cdir" -type f -printf '%s\n' | sort -n |
    awk '{ a[NR] = $1 } END { m = a[int((NR + 1) / 2)]; if (m >= 1000000) printf "%.1f MB", m / 1e6; else if (m >= 1000) printf "%.1f KB", m / 1000; else printf "%d B", m }')
  say "corpus $c: $c_bytes bytes, $c_files files, median file $c_median"
  corpora_info="$corpora_info$c:$c_bytes:$c_files:$c_median;"
  warm "$cdir"
  # Each step runs BENCH_CORPUS_RUNS times, the tools' order alternating; the table shows
  # the median. The first backup starts from a new repository each time (the last one is kept).
  say "corpus $c: first backup ($corpus_runs runs)"
  for n in $(seq "$corpus_runs"); do
    for t in $(tools_in_run "$n"); do
      r=$(repo "$t" "c-$c")
      rm -rf "$r"
      case $t in
        tsbak)
          run "tsbak-init-$c" "$here/bin/tsbak" init "$r" --parity "${BENCH_TSBAK_PARITY:-off}"
          measure tsbak "$c.backup1" "$c_bytes" "$here/bin/tsbak-write" "$r" "$cdir" --json --cache-dir "$work/cache/tsbak" ;;
        restic)
          run "restic-init-$c" restic init --repo "$r"
          # restic calibrates its KDF to the machine at init (slower under load: weaker and cheaper)
          say "  restic key: $(node -e 'const k = JSON.parse(require("fs").readFileSync(process.argv[1])); console.log(`scrypt N=${k.N} r=${k.r} p=${k.p}`)' "$r"/keys/*)"
          measure restic "$c.backup1" "$c_bytes" restic --repo "$r" backup "$cdir" ;;
        borg)
          run "borg-init-$c" borg init -e repokey-blake2 "$r"
          measure borg "$c.backup1" "$c_bytes" borg create --compression zstd,3 "$r::backup1" "$cdir" ;;
      esac
    done
  done
  corpus_step backup2 && say "corpus $c: unchanged re-backup ($corpus_runs runs)"
  corpus_step backup2 && for n in $(seq "$corpus_runs"); do
    for t in $(tools_in_run "$n"); do
      r=$(repo "$t" "c-$c")
      case $t in
        tsbak) measure tsbak "$c.backup2" "$c_bytes" "$here/bin/tsbak-write" "$r" "$cdir" --json --cache-dir "$work/cache/tsbak" ;;
        restic) measure restic "$c.backup2" "$c_bytes" restic --repo "$r" backup "$cdir" ;;
        borg) measure borg "$c.backup2" "$c_bytes" borg create --compression zstd,3 "$r::backup2-$n" "$cdir" ;;
      esac
      [ "$n" -eq 1 ] && record_size "$t" "$c.size" "$r"
    done
  done
  corpus_step restore && for where in tmpfs disk; do
    say "corpus $c: restore to $where ($corpus_runs runs)"
    for n in $(seq "$corpus_runs"); do
    for t in $(tools_in_run "$n"); do
      r=$(repo "$t" "c-$c")
      if [ $where = tmpfs ]; then d=$tmpfs_dir/$t; else d=$disk_dir/$t; fi
      mkdir -p "$d"
      case $t in
        tsbak) measure tsbak "$c.restore-$where" "$c_bytes" "$here/bin/tsbak" restore "$r" latest --target "$d" ;;
        restic) measure restic "$c.restore-$where" "$c_bytes" restic --repo "$r" restore latest --target "$d" ;;
        borg) measure borg "$c.restore-$where" "$c_bytes" sh -c 'cd "$1" && exec borg extract "$2"' sh "$d" "$r::backup2-1" ;;
      esac
      restored=$d$cdir
      [ -d "$restored" ] || die "$t restore: $restored does not exist"
      got_files=$(find "$restored" -type f | wc -l)
      b=$(file_bytes "$restored")
      [ "$got_files" -eq "$c_files" ] || say "  WARNING: $t restored $got_files files, the corpus has $c_files"
      [ "$b" = "$c_file_bytes" ] || say "  WARNING: $t restored $b bytes of regular files, the corpus has $c_file_bytes"
      if [ "$t" = tsbak ] && [ $where = disk ] && [ "$n" -eq 1 ] && [ "${BENCH_VERIFY:-1}" != 0 ]; then
        if ! diff -r --no-dereference "$cdir" "$restored" > "$logs/tsbak-restore-$c.diff" 2>&1; then
          say "  WARNING: tsbak's restore differs from the corpus (see $logs/tsbak-restore-$c.diff):"
          head -n 10 "$logs/tsbak-restore-$c.diff" >&2
        else
          say "  tsbak restore: identical to the corpus (diff -r)"
        fi
      fi
      rm -rf "$d"
      sync
    done
    done
  done
  if [ -z "${BENCH_KEEP:-}" ] || [ "${BENCH_KEEP:-}" = 0 ]; then rm -rf "$cdir" "$(repo tsbak "c-$c")" "$(repo restic "c-$c")" "$(repo borg "c-$c")"; fi
done

# ---- the table ----
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
say "load average at the end: $load_end"
tsbak_rev=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C "$here" diff --quiet HEAD -- src native 2>/dev/null; then tsbak_rev="$tsbak_rev + uncommitted changes"; fi
dist_end=$(dist_hash)
dist_note="dist $dist_start"
if [ "$dist_end" != "$dist_start" ]; then
  say "WARNING: dist/ changed during the run ($dist_start -> $dist_end): tsbak's numbers may mix two builds"
  dist_note="dist $dist_start, CHANGED during the run to $dist_end"
fi
versions="tsbak $(node -p 'require(process.argv[1]).version' "$here/package.json") ($tsbak_rev, $dist_note, node $(node --version))"
case " $tools " in *" restic "*) versions="$versions, $(restic version | cut -d' ' -f1-2)" ;; esac
case " $tools " in *" borg "*) versions="$versions, $(borg --version)" ;; esac
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "kernel=Linux $(uname -r)"
  echo "load_start=$load_start"
  echo "load_end=$load_end"
  echo "versions=$versions"
  echo "tools=$tools"
  echo "sources=$sources"
  echo "corpus_bytes=$corpus_bytes"
  echo "corpus_files=$corpus_files"
  echo "median_file=$median_file"
  echo "changed_files=$changed"
  echo "big_label=$big_label"
  echo "main=$main"
  echo "corpora=$corpora"
  echo "corpora_info=$corpora_info"
  echo "corpus_runs=$corpus_runs"
  echo "files_corpus=$files_count files, $files_mib MiB"
  echo "images_corpus=$images_mib MiB"
  echo "git_sources=$git_sources"
  echo "restore_dirs=tmpfs $tmpfs_dir ($( [ -d "$tmpfs_dir" ] && fstype "$tmpfs_dir" )), disk: ${disk_kind:-none}"
  echo "settings=tsbak defaults (zstd 3, real KDF, --cache-dir) but parity across packs ${BENCH_TSBAK_PARITY:-off} (restic and borg have none: like for like, sizes included; its cost: scripts/bench-parity-backup.sh); restic defaults (repository v2, compression auto); borg init -e repokey-blake2, create --compression zstd,3$( [ "$main" != 0 ] && echo "; restores into ${BENCH_RESTORE_DIR:-$work/restore} ($(df --output=fstype "${BENCH_RESTORE_DIR:-$work/restore}" 2>/dev/null | tail -1))")"
} > "$work/meta.env"
echo
node "$here/scripts/bench/table.mjs" "$work"
echo
say "markdown (with machine and versions): $work/results.md; logs: $logs"
say "total time: $(($(date +%s) - t_start)) s"

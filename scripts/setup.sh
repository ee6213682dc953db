#!/usr/bin/env bash
# Installs what tsbak needs on a fresh Debian machine (run as root): FUSE (libfuse3-dev for
# the addon's FUSE binding, fuse3 for fusermount), attr/acl (getfattr/getfacl, used by tests),
# libzstd-dev (the native addon's restore batches link libzstd), zstd (the manual last resort of docs/FORMAT.md
# and its test), unzip and zsh (the tests of dump --archive zip and of the zsh completion), rsync (the
# cold-read test of the mount), then the npm dependencies, the native addon and the TypeScript build (npm ci).
# openssh-server: the SFTP tests start a real sshd on loopback (test/lib/sshd.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for p in libfuse3-dev fuse3 attr acl libzstd-dev zstd unzip zsh rsync openssh-server; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
# A one-node Ceph (radosgw, ceph-mon, ceph-osd; ~35 s to install, started by
# test/rgw-policy.test.ts through scripts/ceph-rgw-dev.sh): a real S3 policy evaluator.
cephneed=()
for p in radosgw ceph-mon ceph-osd; do dpkg -s "$p" >/dev/null 2>&1 || cephneed+=("$p"); done
if [ ${#cephneed[@]} -gt 0 ]; then
  echo "installing Debian packages: ${cephneed[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  [ ${#need[@]} -gt 0 ] || apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${cephneed[@]}" >/dev/null
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ ! -f dist/src/cli/main.js ] || [ ! -f native/build/Release/tsbak_native.node ]; then
  npm ci
fi

#!/usr/bin/env bash
# A one-node Ceph on loopback for tests: a monitor, one OSD on memstore (RAM, 1 GiB) and a
# radosgw (S3), everything under DIR, started in ~15 s, ~160 MB of RSS. Then two S3 users:
# "admin" (the bucket owner) and "backup". Prints "rgw listening on http://127.0.0.1:PORT"
# when S3 answers. Stop it with: scripts/ceph-rgw-dev.sh stop DIR (kills the pids it wrote).
#
#   scripts/ceph-rgw-dev.sh start DIR MON_PORT RGW_PORT
#   scripts/ceph-rgw-dev.sh stop DIR
set -euo pipefail
cmd=${1:?start or stop}; D=${2:?directory}
if [ "$cmd" = stop ]; then
  pids=()
  for f in "$D"/run/*.pid; do [ -f "$f" ] && pids+=("$(cat "$f")"); done
  [ ${#pids[@]} -gt 0 ] || exit 0
  kill "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "${pids[@]}" 2>/dev/null || exit 0; sleep 0.5; done
  kill -KILL "${pids[@]}" 2>/dev/null || true
  exit 0
fi
MON_PORT=${3:?mon port}; RGW_PORT=${4:?rgw port}
mkdir -p "$D"/mon.a "$D"/osd.0 "$D"/run "$D"/log "$D"/rgw
FSID=$(cat /proc/sys/kernel/random/uuid)
cat > "$D"/ceph.conf <<C
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
keyring = $D/keyring
auth allow insecure global id reclaim = false
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
pid file = $D/run/\$name.pid
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 1073741824
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
ms bind ipv6 = false
[mon.a]
mon data = $D/mon.a
[osd.0]
osd data = $D/osd.0
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $D/rgw
C
C="-c $D/ceph.conf"
ceph-authtool --create-keyring "$D"/keyring --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$D"/keyring --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$D"/keyring --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' >/dev/null
ceph-authtool "$D"/keyring --gen-key -n client.rgw.a --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
monmaptool --create --addv a "[v2:127.0.0.1:$MON_PORT]" --fsid "$FSID" "$D"/monmap >/dev/null
ceph-mon $C --mkfs -i a --monmap "$D"/monmap --keyring "$D"/keyring 2>>"$D"/log/setup.log
ceph-mon $C -i a 2>>"$D"/log/setup.log
timeout 60 ceph $C osd create >/dev/null
ceph-osd $C -i 0 --mkfs >>"$D"/log/setup.log 2>&1
ceph-osd $C -i 0 >>"$D"/log/setup.log 2>&1
radosgw $C -n client.rgw.a 2>>"$D"/log/setup.log
for _ in $(seq 1 240); do
  if (exec 3<>/dev/tcp/127.0.0.1/"$RGW_PORT") 2>/dev/null; then break; fi
  sleep 0.5
done
timeout 60 radosgw-admin $C user create --uid=admin --display-name=admin --access-key=TSBAKADMIN --secret-key=TSBAKADMINSECRET >/dev/null
timeout 60 radosgw-admin $C user create --uid=backup --display-name=backup --access-key=TSBAKBACKUP --secret-key=TSBAKBACKUPSECRET >/dev/null
echo "rgw listening on http://127.0.0.1:$RGW_PORT"

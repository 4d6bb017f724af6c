#!/usr/bin/env bash
# Stops what rgw-up.sh started, by the PIDs it recorded (gateway, OSD, monitor, in that
# order). The store's data goes with the next rgw-up.sh.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

stop() {
  local name=$1 pid
  if pid=$(live_pid "$name"); then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$STATE/pids/$name.pid" "$STATE/pids/$name.exe"
}

stop radosgw
stop ceph-osd
stop ceph-mon
rm -f "$STATE/env"
log "RGW store stopped"

#!/usr/bin/env bash
# Stops the s3s-fs that s3s-fs-up.sh started, by its recorded PID.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../cluster/lib/common.sh"
STATE=${TASKYARD_S3S_STATE:-/var/lib/taskyard-s3s}
if pid=$(live_pid s3s-fs); then
  kill -TERM "$pid"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
fi
rm -f "$STATE/pids/s3s-fs.pid" "$STATE/pids/s3s-fs.exe" "$STATE/env"
log "s3s-fs stopped"

#!/usr/bin/env bash
# Starts s3s-fs alone on 127.0.0.1 (no cluster) with the bucket, and writes $STATE/env for the
# store-facing tests (TASKYARD_STORE_ENV): the same server the local cluster runs, for a
# store-only pass or to compare with RGW. s3s-fs-down.sh stops it by PID.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../cluster/lib/common.sh"
STATE=${TASKYARD_S3S_STATE:-/var/lib/taskyard-s3s}
port=${TASKYARD_S3S_PORT:-19000}
access=taskyard-test secret=taskyard-test-secret-key

"$here/../cluster/install-s3-server.sh"
if ! running s3s-fs; then
  rm -rf "$STATE/data"
  mkdir -p "$STATE/data/$S3_BUCKET"
  start_bg s3s-fs "$S3S_BIN" --host 127.0.0.1 --port "$port" --access-key "$access" --secret-key "$secret" "$STATE/data"
  pin_s3s_fs "$(cat "$STATE/pids/s3s-fs.pid")"
  wait_for "s3s-fs on 127.0.0.1:$port" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
fi
cat >"$STATE/env" <<ENV
export TASKYARD_STORE_KIND=s3s-fs
export TASKYARD_HOST_IP=127.0.0.1
export TASKYARD_S3_ENDPOINT=http://127.0.0.1:$port
export TASKYARD_S3_BUCKET=$S3_BUCKET
export TASKYARD_S3_ROOT=$STATE/data
export AWS_ACCESS_KEY_ID=$access
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_REGION=us-east-1
ENV
log "s3s-fs ready on 127.0.0.1:$port; TASKYARD_STORE_ENV=$STATE/env"

#!/usr/bin/env bash
# MD5 throughput of a HashTask, end to end through the runner binary the image ships (same
# cargo profile), against coreutils, OpenSSL and Python on the same bytes: from the store
# directory (`job-runner run`), streamed over HTTP from a loopback server, and from a
# loopback S3 server (s3s-fs, as the tests use; `job-runner exec`, as in the cluster) beside
# a streaming signed GET (curl --aws-sigv4) piped into md5sum. Also the runner's peak RSS.
# Rounds alternate between the tools so that machine load affects all alike; best of ROUNDS.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/taskyard/target}
ROUNDS=${ROUNDS:-3}
MIB=${MIB:-1024}

# RUNNER names another build of the runner (the code before a change, say).
[ -n "${RUNNER:-}" ] || cargo build -q -p job-runner --bins
tests/cluster/install-s3-server.sh
source tests/cluster/lib/common.sh
runner=${RUNNER:-$CARGO_TARGET_DIR/debug/job-runner}
work=$(mktemp -d)
http_pid= s3_pid=
cleanup() {
  [ -n "$http_pid" ] && kill "$http_pid" 2>/dev/null || true
  [ -n "$s3_pid" ] && kill "$s3_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# One file, seen by the store directory and the HTTP server, and written to the S3 server
# through its API below, as the gateway writes uploads: s3s-fs then keeps the object's ETag.
# (A file placed in its directory behind its back has none, and s3s-fs then reads the whole
# file to compute it for every HEAD and GET, ranged or not.)
mkdir -p "$work/store/uploads/default" "$work/s3/bench"
file="$work/store/uploads/default/big.bin"
head -c "$((MIB << 20))" /dev/urandom >"$file"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
http_port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$work/store" "$http_port" >/dev/null 2>&1 &
http_pid=$!
s3_port=$(free_port)
"$S3S_BIN" --host 127.0.0.1 --port "$s3_port" --access-key bench --secret-key bench-secret-key "$work/s3" >/dev/null 2>&1 &
s3_pid=$!
pin_s3s_fs "$s3_pid"
url="http://127.0.0.1:$http_port/uploads/default/big.bin"
s3_url="http://127.0.0.1:$s3_port/bench/uploads/bench/big.bin"
s3_curl() { curl -sf -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --aws-sigv4 aws:amz:us-east-1:s3 --user bench:bench-secret-key "$@"; }
for _ in $(seq 1 50); do
  curl -sf -o /dev/null -r 0-0 "$url" && s3_curl -o /dev/null "http://127.0.0.1:$s3_port/bench" && break
  sleep 0.1
done
s3_curl -o /dev/null -T "$file" "$s3_url"
task() { # a HashTask whose source is $1
  printf 'apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {name: bench}\nspec:\n  source: %s\n' "$1" >"$work/$2.yaml"
}
task "{object: big.bin}" object
task "{url: \"$url\"}" url
want=$(md5sum "$file" | cut -d' ' -f1)
got=$(curl -s -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --aws-sigv4 aws:amz:us-east-1:s3 --user bench:bench-secret-key "$s3_url" | md5sum | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "the signed S3 GET did not return the file" >&2; exit 1; }
measured() { # runs a command under GNU time, noting its peak RSS (KiB)
  /usr/bin/time -a -f %M -o "$work/rss" "$@"
}
runner_md5() { # runs a task from a file, checks its digest
  local out
  out=$(measured "$runner" run --store "$work/store" --allow-network 127.0.0.0/8 "$work/$1.yaml")
  grep -q "md5: $want" <<<"$out" || { echo "wrong or missing md5 from the runner: $out" >&2; exit 1; }
}
runner_s3() { # the runner as a cluster Job runs it, against the S3 server
  local uid=bench-$RANDOM$RANDOM
  measured env TASKYARD_S3_ENDPOINT="http://127.0.0.1:$s3_port" TASKYARD_S3_BUCKET=bench \
    TASKYARD_S3_FORCE_PATH_STYLE=true AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret-key \
    TASKYARD_TERMINATION_LOG="$work/termination" \
    TASKYARD_TASKS="{\"tasks\": [{\"identity\": {\"namespace\": \"bench\", \"name\": \"h\", \"uid\": \"$uid\", \"generation\": 1}, \"kind\": \"HashTask\", \"spec\": {\"source\": {\"object\": \"big.bin\"}}}]}" \
    "$runner" exec 2>/dev/null
  grep -q "\"md5\": *\"$want\"" "$work/s3/bench/tasks/bench/hashtask/h/$uid/1/result.json" ||
    { echo "wrong or missing md5 from the runner over S3: $(cat "$work/s3/bench/tasks/bench/hashtask/h/$uid/1/result.json")" >&2; exit 1; }
}

declare -A cmd=(
  ["taskyard, store object"]="runner_md5 object"
  ["md5sum, file"]="md5sum $file"
  ["openssl dgst -md5, file"]="openssl dgst -md5 $file"
  ["python hashlib, file"]="python3 -c 'import hashlib,sys; h=hashlib.md5(); f=open(sys.argv[1],\"rb\"); [h.update(b) for b in iter(lambda: f.read(1<<20), b\"\")]' $file"
  ["taskyard, HTTP url"]="runner_md5 url"
  ["curl | md5sum, HTTP"]="curl -s $url | md5sum"
  ["taskyard, S3 object"]="runner_s3"
  ["curl sigv4 | md5sum, S3"]="curl -s -H \"x-amz-content-sha256: UNSIGNED-PAYLOAD\" --aws-sigv4 aws:amz:us-east-1:s3 --user bench:bench-secret-key $s3_url | md5sum"
)
order=("taskyard, store object" "md5sum, file" "openssl dgst -md5, file" "python hashlib, file"
  "taskyard, HTTP url" "curl | md5sum, HTTP" "taskyard, S3 object" "curl sigv4 | md5sum, S3")
declare -A best
cat "$file" >/dev/null # into the page cache
echo "${MIB} MiB of random bytes, page-cached; best of ${ROUNDS} alternating rounds"
for _ in $(seq 1 "$ROUNDS"); do
  for name in "${order[@]}"; do
    start=$(date +%s.%N)
    eval "${cmd[$name]}" >/dev/null
    seconds=$(python3 -c "print($(date +%s.%N) - $start)")
    rate=$(python3 -c "print(round($MIB * 1.048576 / $seconds))")
    best[$name]=$(python3 -c "print(max(${best[$name]:-0}, $rate))")
  done
done
ratio() { python3 -c "print(f'{$1 / $2:.2f}x')"; }
printf '%-28s %12s %14s\n' "MD5 of the file" "MB/s (best)" "taskyard is"
for name in "${order[@]}"; do
  case $name in
    "md5sum, file") r=$(ratio "${best["taskyard, store object"]}" "${best[$name]}") ;;
    "curl | md5sum, HTTP") r=$(ratio "${best["taskyard, HTTP url"]}" "${best[$name]}") ;;
    "curl sigv4 | md5sum, S3") r=$(ratio "${best["taskyard, S3 object"]}" "${best[$name]}") ;;
    *) r= ;;
  esac
  printf '%-28s %12s %14s\n' "$name" "${best[$name]}" "$r"
done
echo "runner peak RSS, largest of all its runs: $(($(sort -n "$work/rss" | tail -1) / 1024)) MiB"

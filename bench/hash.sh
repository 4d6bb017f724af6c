#!/usr/bin/env bash
# MD5 throughput of a HashTask, end to end through `job-runner run` (the binary the runner
# image ships, same cargo profile), against coreutils, OpenSSL and Python on the same file:
# read from the store directory, and streamed over HTTP from a loopback server.
# Rounds alternate between the tools so that machine load affects all alike; best of ROUNDS.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/taskyard/target}
ROUNDS=${ROUNDS:-3}
MIB=${MIB:-1024}

cargo build -q -p job-runner
runner="$CARGO_TARGET_DIR/debug/job-runner"
work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/store/uploads"
file="$work/store/uploads/big.bin"
head -c "$((MIB << 20))" /dev/urandom >"$file"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work/store" "$port" >/dev/null 2>&1 &
server_pid=$!
for _ in $(seq 1 50); do
  curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$port/uploads/big.bin" && break
  sleep 0.1
done
task() { # a HashTask whose source is $1
  printf 'apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {name: bench}\nspec:\n  source: %s\n' "$1" >"$work/$2.yaml"
}
task "{object: uploads/big.bin}" object
task "{url: \"http://127.0.0.1:$port/uploads/big.bin\"}" url
want=$(md5sum "$file" | cut -d' ' -f1)
runner_md5() { # runs a task, checks its digest
  local out
  out=$("$runner" run --store "$work/store" --allow-network 127.0.0.0/8 "$work/$1.yaml")
  grep -q "md5: $want" <<<"$out" || { echo "wrong or missing md5 from the runner: $out" >&2; exit 1; }
}

declare -A cmd=(
  ["taskyard, store object"]="runner_md5 object"
  ["taskyard, HTTP url"]="runner_md5 url"
  ["md5sum, file"]="md5sum $file"
  ["openssl dgst -md5, file"]="openssl dgst -md5 $file"
  ["python hashlib, file"]="python3 -c 'import hashlib,sys; h=hashlib.md5(); f=open(sys.argv[1],\"rb\"); [h.update(b) for b in iter(lambda: f.read(1<<20), b\"\")]' $file"
  ["curl | md5sum, HTTP"]="curl -s http://127.0.0.1:$port/uploads/big.bin | md5sum"
)
order=("taskyard, store object" "md5sum, file" "openssl dgst -md5, file" "python hashlib, file" "taskyard, HTTP url" "curl | md5sum, HTTP")
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
printf '%-28s %12s\n' "MD5 of the file" "MB/s (best)"
for name in "${order[@]}"; do
  printf '%-28s %12s\n' "$name" "${best[$name]}"
done

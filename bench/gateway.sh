#!/usr/bin/env bash
# The gateway's MD5 API end to end in local mode: UPLOADS uploads of 64 KiB (distinct
# contents) through POST /hashes/ from CLIENTS concurrent clients, then every result polled
# until SUCCESS. Reports the latency of the id (p50/p99), tasks/s from the first upload
# to the last result and the load average; every MD5 is checked against Python's hashlib.
# Bounded: it gives up after DEADLINE seconds. Set CARGO_LOCK to a lock file to build under flock.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/taskyard/target}
UPLOADS=${UPLOADS:-1000}
CLIENTS=${CLIENTS:-16}
DEADLINE=${DEADLINE:-300}

${CARGO_LOCK:+flock "$CARGO_LOCK"} cargo build -q -p taskyard-gateway
work=$(mktemp -d)
gateway_pid=
cleanup() {
  [ -n "$gateway_pid" ] && kill "$gateway_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$CARGO_TARGET_DIR/debug/taskyard-gateway" --local --store "$work/store" --listen 127.0.0.1:0 \
  >"$work/out" 2>"$work/log" &
gateway_pid=$!
for _ in $(seq 1 100); do
  grep -q listening "$work/out" 2>/dev/null && break
  sleep 0.1
done
base=$(grep -o 'http://[0-9.:]*' "$work/out")

python3 - "$base" "$UPLOADS" "$CLIENTS" "$DEADLINE" <<'PY'
import hashlib, json, os, sys, threading, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

base, uploads, clients, deadline = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
give_up = time.monotonic() + deadline
load_before = os.getloadavg()[0]

def body(i):
    data = os.urandom(64 << 10)
    boundary = "bench%032x" % i
    head = ('--%s\r\nContent-Disposition: form-data; name="file"; filename="f%d.bin"\r\n'
            'Content-Type: application/octet-stream\r\n\r\n' % (boundary, i)).encode()
    return data, head + data + ("\r\n--%s--\r\n" % boundary).encode(), boundary

def upload(i):
    data, payload, boundary = body(i)
    req = urllib.request.Request(base + "/hashes/", data=payload, method="POST",
                                 headers={"Content-Type": "multipart/form-data; boundary=" + boundary})
    start = time.monotonic()
    with urllib.request.urlopen(req, timeout=60) as r:
        task_id = json.load(r)["task_id"]
    return task_id, time.monotonic() - start, hashlib.md5(data).hexdigest()

started = time.monotonic()
with ThreadPoolExecutor(clients) as pool:
    done = list(pool.map(upload, range(uploads)))
uploaded = time.monotonic() - started
want = {task_id: md5 for task_id, _, md5 in done}
assert len(want) == uploads, "duplicate ids"

pending = set(want)
def poll(task_id):
    with urllib.request.urlopen("%s/hashes/%d" % (base, task_id), timeout=60) as r:
        return task_id, json.load(r)
while pending:
    assert time.monotonic() < give_up, "%d tasks unfinished after %ss" % (len(pending), deadline)
    with ThreadPoolExecutor(clients) as pool:
        for task_id, status in pool.map(poll, sorted(pending)):
            if status["status"] == "SUCCESS":
                assert status["result"] == want[task_id], (task_id, status)
                pending.discard(task_id)
            elif status["status"] != "PENDING":
                sys.exit("task %d: %s" % (task_id, status))
    if pending:
        time.sleep(0.05)
total = time.monotonic() - started

lat = sorted(l for _, l, _ in done)
pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000
print("%d uploads of 64 KiB, %d clients: id latency p50 %.1f ms, p99 %.1f ms; uploads took %.1f s"
      % (uploads, clients, pct(50), pct(99), uploaded))
print("end to end: %.1f s, %.1f tasks/s (every MD5 checked); load average %.2f before, %.2f after (1 min)"
      % (total, uploads / total, load_before, os.getloadavg()[0]))
PY

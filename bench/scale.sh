#!/usr/bin/env bash
# The operator at scale on the local cluster: creates N tasks (default 10000; most finish at
# once as InvalidSpec, every 20th runs a real runner Job), then reports the operator's memory
# (RSS) and reconcile latency: the metrics' mean and p99 reconcile time, the time a new task
# takes to get its status while the N are there, and the time a new valid task takes to get
# its runner Job (a slot is free by then). Needs tests/cluster/up.sh and the chart
# installed (any e2e test installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster/.state/env
N=${N:-10000}
NS=scale-$$
kubectl create namespace "$NS" >/dev/null
trap 'kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1 || true' EXIT

# The replica that leads (holds the Lease) is the one that reconciles.
leader() { kubectl -n taskyard-system get lease taskyard-operator -o jsonpath='{.spec.holderIdentity}'; }
operator_rss_kib() { # $1: VmRSS (now, the default) or VmHWM (the peak)
  local pod cid pid
  pod=$(leader)
  cid=$(kubectl -n taskyard-system get pod "$pod" -o jsonpath='{.status.containerStatuses[0].containerID}')
  pid=$(ctr -a "$TASKYARD_CONTAINERD_SOCK" -n k8s.io tasks ls | awk -v id="${cid#containerd://}" '$1==id {print $2}')
  awk -v field="${1:-VmRSS}:" '$1 == field {print $2}' "/proc/$pid/status"
}
metrics() { # the operator's metrics text
  local ip
  ip=$(kubectl -n taskyard-system get pod "$(leader)" -o jsonpath='{.status.podIP}')
  curl -sf --max-time 10 --retry 3 "http://$ip:8080/metrics"
}
metric() { # sum and count of the reconcile histogram, all kinds
  metrics | awk '/^taskyard_reconcile_duration_seconds_sum/ {s += $2} /^taskyard_reconcile_duration_seconds_count/ {c += $2} END {printf "%f %d\n", s, c}'
}
buckets() { # cumulative reconcile counts per bucket bound, all kinds, one "le count" a line
  metrics | awk -F'[{}", ]+' '/^taskyard_reconcile_duration_seconds_bucket/ {for (i = 1; i < NF; i++) if ($i == "le=") le = $(i + 1); c[le] += $NF} END {for (le in c) print le, c[le]}' | sort -g
}

# The object the running tasks hash (every 20th task); the others name missing objects.
NS=$NS python3 - <<PY
import os, pathlib
root = pathlib.Path(os.environ["TASKYARD_S3_ROOT"]) / os.environ["TASKYARD_S3_BUCKET"] / "uploads" / os.environ["NS"]
root.mkdir(parents=True, exist_ok=True)
(root / "present.bin").write_bytes(b"x" * 1000)
PY
# A fresh operator each run: memory from an earlier run (or an e2e test's) would count.
kubectl -n taskyard-system rollout restart deploy/taskyard-operator >/dev/null
kubectl -n taskyard-system rollout status deploy/taskyard-operator --timeout=300s >/dev/null
# The Lease names the new replica a moment after the rollout (the old one, terminating,
# releases it first).
for _ in $(seq 120); do
  holder=$(leader)
  [ -n "$holder" ] && [ -z "$(kubectl -n taskyard-system get pod "$holder" --ignore-not-found \
    -o jsonpath='{.metadata.name}{.metadata.deletionTimestamp}' | sed "s/^$holder//")" ] &&
    kubectl -n taskyard-system get pod "$holder" >/dev/null 2>&1 && break
  sleep 1
done
echo "operator RSS before: $(operator_rss_kib) KiB"
read -r sum0 count0 < <(metric)
buckets >"/tmp/scale-buckets-before.$$"
start=$SECONDS
for ((i = 0; i < N; i += 200)); do
  for ((j = i; j < i + 200 && j < N; j++)); do
    if ((j % 20 == 0)); then src="{object: present.bin}"; else src="{object: missing-$j.bin}"; fi
    printf 'apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {name: t%05d}\nspec:\n  source: %s\n---\n' "$j" "$src"
  done | kubectl apply -n "$NS" -f - >/dev/null
done
echo "created $N tasks in $((SECONDS - start)) s"
deadline=$((SECONDS + 900))
while :; do
  done_count=$(kubectl get hashtasks -n "$NS" -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -cE '^(Succeeded|Failed)$' || true)
  [ "$done_count" -ge "$N" ] && break
  [ $SECONDS -lt $deadline ] || { echo "only $done_count of $N finished in time"; break; }
  sleep 5
done
echo "all $N finished after $((SECONDS - start)) s"
read -r sum1 count1 < <(metric)
echo "operator RSS with $N tasks: $(operator_rss_kib) KiB as the last finished (peak so far $(operator_rss_kib VmHWM) KiB)"
sleep 30
echo "operator RSS with $N tasks, 30 s later: $(operator_rss_kib) KiB"
python3 -c "print(f'reconciles: {$count1 - $count0:.0f}, mean reconcile {1000 * ($sum1 - $sum0) / max(1, $count1 - $count0):.1f} ms')"
buckets >"/tmp/scale-buckets-after.$$"
python3 - "/tmp/scale-buckets-before.$$" "/tmp/scale-buckets-after.$$" <<'PY'
import sys
def load(path):
    return {le: float(c) for le, c in (line.split() for line in open(path))}
before, after = load(sys.argv[1]), load(sys.argv[2])
diff = sorted(((float("inf") if le == "+Inf" else float(le)), after[le] - before.get(le, 0)) for le in after)
total = diff[-1][1]
p99 = next(le for le, c in diff if c >= 0.99 * total)
print(f"reconcile p99 at most {p99 * 1000:.0f} ms (histogram bucket bound)")
PY
rm -f "/tmp/scale-buckets-before.$$" "/tmp/scale-buckets-after.$$"
# Latency of one more task among the N: apply to status.
t0=$(date +%s.%N)
printf 'apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {name: probe}\nspec:\n  source: {object: missing-probe.bin}\n' | kubectl apply -n "$NS" -f - >/dev/null
kubectl wait -n "$NS" --for=condition=Succeeded=False hashtask/probe --timeout=120s >/dev/null
python3 -c "print(f'a new task got its status in {($(date +%s.%N) - $t0) * 1000:.0f} ms with $N tasks present')"
# A new valid task among the N, with a slot free: apply to its runner Job.
t0=$(date +%s.%N)
printf 'apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {name: probe-job}\nspec:\n  source: {object: present.bin}\n' | kubectl apply -n "$NS" -f - >/dev/null
until [ -n "$(kubectl get hashtask probe-job -n "$NS" -o jsonpath='{.status.jobName}')" ]; do sleep 0.05; done
python3 -c "print(f'a new task got its runner Job in {($(date +%s.%N) - $t0) * 1000:.0f} ms with $N tasks present')"

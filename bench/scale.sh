#!/usr/bin/env bash
# The operator at scale on the local cluster: creates N tasks (default 10000; most finish at
# once as InvalidSpec, every 20th runs a real runner Job), then reports the operator's memory
# (RSS) and reconcile latency: the metrics' mean and p99 reconcile time over the burst, and
# again over MORE tasks (default 1000) applied RATE a second (default 20) once the N are
# there; the time a new task takes to get its status while the N are there, and the time a
# new valid task takes to get its runner Job (a slot is free by then). Needs
# tests/cluster/up.sh and the chart installed (any e2e test installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster/.state/env
N=${N:-10000}
NS=scale-$$
kubectl create namespace "$NS" >/dev/null
trap 'kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1 || true' EXIT

operator_metrics() { # the leading operator replica's Pod, PID, reconcile histogram (see there)
  python3 bench/operator_metrics.py "$@"
}
operator_rss_kib() { # $1: VmRSS (now, the default) or VmHWM (the peak)
  awk -v field="${1:-VmRSS}:" '$1 == field {print $2}' "/proc/$(operator_metrics pid)/status"
}
cpu_stat() { # "periods throttled throttled_seconds" of the operator's CPU limit (CFS quota) so far
  local pid path
  pid=$(operator_metrics pid)
  path=$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ {print "/sys/fs/cgroup/cpu" $3; found = 1} $1 == 0 && $2 == "" {v2 = "/sys/fs/cgroup" $3} END {if (v2 != "" && !found) print v2}' "/proc/$pid/cgroup" | head -1)
  awk '$1 == "nr_periods" {p = $2} $1 == "nr_throttled" {t = $2} $1 == "throttled_time" {s = $2 / 1e9} $1 == "throttled_usec" {s = $2 / 1e6} END {print p, t, s}' "$path/cpu.stat"
}

apply_tasks() { # tasks t<$1> to t<$2 - 1>, in files of $3 (default 200), one file a second if $4
  local i j src per_file=${3:-200} paced=${4:-} started=$SECONDS
  for ((i = $1; i < $2; i += per_file)); do
    [ -z "$paced" ] || while ((SECONDS < started + (i - $1) / per_file)); do sleep 0.05; done
    for ((j = i; j < i + per_file && j < $2; j++)); do
      if ((j % 20 == 0)); then src="{object: present.bin}"; else src="{object: missing-$j.bin}"; fi
      printf 'apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {name: t%05d}\nspec:\n  source: %s\n---\n' "$j" "$src"
    done | kubectl apply -n "$NS" -f - >/dev/null
  done
}
wait_finished() { # until $1 tasks have ended (15 min at most)
  local deadline=$((SECONDS + 900)) done_count
  while :; do
    done_count=$(kubectl get hashtasks -n "$NS" -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -cE '^(Succeeded|Failed)$' || true)
    [ "$done_count" -ge "$1" ] && return
    [ $SECONDS -lt $deadline ] || { echo "only $done_count of $1 finished in time"; return; }
    sleep 5
  done
}
snapshot() { # the reconcile histogram and the CPU limit's figures now, into files $1 and $1.cpu
  operator_metrics snapshot "$1"
  cpu_stat >"$1.cpu"
}
latency() { # the reconciles since snapshot $1: count, mean, share within 50 ms, p99; $2 names them
  local periods0 throttled0 seconds0 periods1 throttled1 seconds1
  read -r periods0 throttled0 seconds0 <"$1.cpu"
  read -r periods1 throttled1 seconds1 < <(cpu_stat)
  operator_metrics latency "$1" "$2"
  python3 -c "print(f'  the operator was held back by its CPU limit in {$throttled1 - $throttled0} of {$periods1 - $periods0} 100 ms periods, {$seconds1 - $seconds0:.1f} s in all')"
  rm -f "$1" "$1.cpu"
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
  holder=$(operator_metrics leader)
  [ -n "$holder" ] && [ -z "$(kubectl -n taskyard-system get pod "$holder" --ignore-not-found \
    -o jsonpath='{.metadata.name}{.metadata.deletionTimestamp}' | sed "s/^$holder//")" ] &&
    kubectl -n taskyard-system get pod "$holder" >/dev/null 2>&1 && break
  sleep 1
done
echo "operator RSS before: $(operator_rss_kib) KiB"
snapshot "/tmp/scale-burst.$$"
start=$SECONDS
apply_tasks 0 "$N"
echo "created $N tasks in $((SECONDS - start)) s"
wait_finished "$N"
echo "all $N finished after $((SECONDS - start)) s"
latency "/tmp/scale-burst.$$" "reconciles during the burst of $N"
echo "operator RSS with $N tasks: $(operator_rss_kib) KiB as the last finished (peak so far $(operator_rss_kib VmHWM) KiB)"
sleep 30
echo "operator RSS with $N tasks, 30 s later: $(operator_rss_kib) KiB"
# Reconciles with the N present and the machine not saturated by the burst: MORE tasks more,
# RATE a second (kubectl itself applies about 37 a second here).
MORE=${MORE:-1000} RATE=${RATE:-20}
snapshot "/tmp/scale-more.$$"
apply_tasks "$N" $((N + MORE)) "$RATE" paced
wait_finished $((N + MORE))
latency "/tmp/scale-more.$$" "reconciles of $MORE more tasks, $RATE a second, with $N present"
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

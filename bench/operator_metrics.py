#!/usr/bin/env python3
"""The leading operator replica's figures on the local cluster: its process as the node sees
it, its memory, and its reconcile histogram. Imported by bench/throughput.py; bench/scale.sh
uses the command line:

    python3 bench/operator_metrics.py leader           the leading replica's Pod
    python3 bench/operator_metrics.py pid              its process's PID on the node
    python3 bench/operator_metrics.py snapshot FILE    the reconcile histogram now, into FILE
    python3 bench/operator_metrics.py latency FILE LABEL
        the reconciles since snapshot FILE, named LABEL: count, mean, share within 50 ms, p99
"""

import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / "tests/cluster/.state/env"
OPERATOR_NS = "taskyard-system"
# The operator's bounds (operator/src/metrics.rs) and +Inf.
RECONCILE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, float("inf")]


def read_env(path):
    env = {}
    for line in pathlib.Path(path).read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            k, v = line[len("export "):].split("=", 1)
            env[k] = v
    return env


def kubectl(*args, stdin=None):
    out = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def leader():
    """The replica that leads (holds the Lease) is the one that reconciles."""
    return kubectl("-n", OPERATOR_NS, "get", "lease", "taskyard-operator", "-o",
                   "jsonpath={.spec.holderIdentity}").strip()


def operator_pid():
    """The leading replica's process as the node sees it, for its /proc (a few kubectl and
    ctr calls: look it up once, not per reading)."""
    cid = kubectl("-n", OPERATOR_NS, "get", "pod", leader(), "-o",
                  "jsonpath={.status.containerStatuses[0].containerID}").strip().split("//")[-1]
    tasks = subprocess.run(["ctr", "-a", os.environ["TASKYARD_CONTAINERD_SOCK"], "-n", "k8s.io", "tasks", "ls"],
                           capture_output=True, text=True, check=True).stdout
    pid = next((line.split()[1] for line in tasks.splitlines() if cid and line.split()[0] == cid), None)
    if pid is None:
        raise RuntimeError(f"no containerd task for the operator's container {cid!r}")
    return int(pid)


def operator_rss_mib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reconcile_histogram():
    """The reconcile histogram now, summed over kinds: cumulative counts per bound of
    RECONCILE_BUCKETS (the last, +Inf, counts all reconciles) and the seconds they took."""
    ip = kubectl("-n", OPERATOR_NS, "get", "pod", leader(), "-o", "jsonpath={.status.podIP}").strip()
    for attempt in range(3):  # a read once failed with a reset under a 10,000-task burst
        try:
            text = urllib.request.urlopen(f"http://{ip}:8080/metrics", timeout=10).read().decode()
            break
        except OSError:
            if attempt == 2:
                raise
            time.sleep(1)
    counts, seconds = [0.0] * len(RECONCILE_BUCKETS), 0.0
    for line in text.splitlines():
        if line.startswith("taskyard_reconcile_duration_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            bound = float("inf") if le == "+Inf" else float(le)
            counts[RECONCILE_BUCKETS.index(bound)] += float(line.rsplit(" ", 1)[1])
        elif line.startswith("taskyard_reconcile_duration_seconds_sum"):
            seconds += float(line.rsplit(" ", 1)[1])
    return {"buckets": counts, "seconds": seconds}


def since(before, after):
    """Cumulative counts per bound of the reconciles between two histograms."""
    return [a - b for a, b in zip(after["buckets"], before["buckets"])]


def p99_from(before, after):
    """The bound (ms) of the bucket that holds the 99th percentile reconcile."""
    diff = since(before, after)
    total = diff[-1]
    if total <= 0:
        return float("nan")
    return next(bound * 1000 for bound, count in zip(RECONCILE_BUCKETS, diff) if count >= 0.99 * total)


def share_within(before, after, bound_s):
    """The fraction of the reconciles that took at most bound_s (one of the bounds)."""
    diff = since(before, after)
    return diff[RECONCILE_BUCKETS.index(bound_s)] / max(diff[-1], 1)


def mean(before, after):
    """The mean reconcile (s)."""
    return (after["seconds"] - before["seconds"]) / max(since(before, after)[-1], 1)


def main():
    # Run by hand, the cluster's env as bench/scale.sh sources it; a caller's own wins.
    for k, v in read_env(ENV_FILE).items():
        os.environ.setdefault(k, v)
    command, *args = sys.argv[1:] or [""]
    if command == "leader" and not args:
        print(leader())
    elif command == "pid" and not args:
        print(operator_pid())
    elif command == "snapshot" and len(args) == 1:
        pathlib.Path(args[0]).write_text(json.dumps(reconcile_histogram()))
    elif command == "latency" and len(args) == 2:
        before, after = json.loads(pathlib.Path(args[0]).read_text()), reconcile_histogram()
        print(f"{args[1]}: {since(before, after)[-1]:.0f} reconciles, mean {1000 * mean(before, after):.1f} ms, "
              f"{100 * share_within(before, after, 0.05):.1f} % within 50 ms, "
              f"p99 at most {p99_from(before, after):.0f} ms (histogram bucket bound)")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

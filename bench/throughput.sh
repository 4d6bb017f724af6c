#!/usr/bin/env bash
# Small tasks at queue-worker speed: N tasks (default 1000) created at once on the local
# cluster, batched (the chart's maxTasksPerJob) beside maxTasksPerJob 1, for HashTasks of
# 64 KiB and 1 MiB store objects and ImageTasks and TextTasks of small pages, created by
# `kubectl apply` of a few large files and by 16 concurrent API clients. See
# bench/throughput.py for what is printed. Needs tests/cluster/up.sh.
#
#   bench/throughput.sh                 everything, 1000 tasks per run
#   N=200 KINDS=HashTask SIZES=65536 MODES=apply bench/throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f tests/cluster/.state/env ] || { echo "the local cluster is not up: run tests/cluster/up.sh" >&2; exit 2; }
exec python3 bench/throughput.py "$@"

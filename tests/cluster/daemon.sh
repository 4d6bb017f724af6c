#!/usr/bin/env bash
# Stops and starts one daemon of the local cluster by the PID up.sh recorded, never by name;
# for the fault drills (tests/tests/e2e_drills*.rs).
#
#   tests/cluster/daemon.sh stop NAME      SIGTERM (SIGKILL after 10 s); keeps its command line
#   tests/cluster/daemon.sh start NAME     the kept command line again, then waits until it serves
#   tests/cluster/daemon.sh restart NAME   both
#
# NAME is one of kube-apiserver, kubelet, s3 (the daemons a drill may take away; etcd and
# containerd hold the cluster's data and Pods). Starting one that runs is a no-op.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/common.sh"

usage() { die "usage: $0 stop|start|restart kube-apiserver|kubelet|s3"; }
[ $# -eq 2 ] || usage
action=$1 name=$2
case "$name" in kube-apiserver | kubelet | s3) ;; *) usage ;; esac
cmdline="$STATE/pids/$name.cmdline"

stop() {
  local pid
  pid=$(live_pid "$name") || die "$name is not running (no live PID in $STATE/pids)"
  # Its arguments, one a line (none of up.sh's contains a newline), to start it again.
  tr '\0' '\n' <"/proc/$pid/cmdline" >"$cmdline.new"
  mv "$cmdline.new" "$cmdline"
  kill -TERM "$pid"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  log "stopped $name (PID $pid)"
}

serving() {
  case "$name" in
    kube-apiserver) kubectl --kubeconfig "$STATE/admin.kubeconfig" get --raw /readyz ;;
    kubelet) curl -sf http://127.0.0.1:10248/healthz ;;
    s3) bash -c "exec 3<>/dev/tcp/$HOST_IP/$S3_PORT" ;;
  esac
}

start() {
  if ! running "$name"; then
    [ -s "$cmdline" ] || die "no command line kept for $name; run tests/cluster/up.sh"
    local args
    mapfile -t args <"$cmdline"
    # start_bg appends to a fresh log; keep the one before the stop.
    [ -f "$STATE/logs/$name.log" ] && mv "$STATE/logs/$name.log" "$STATE/logs/$name.log.before-restart"
    start_bg "$name" "${args[@]}"
    [ "$name" = s3 ] && pin_s3s_fs "$(cat "$STATE/pids/$name.pid")"
    log "started $name (PID $(cat "$STATE/pids/$name.pid"))"
  fi
  wait_for "$name to serve" 120 serving
}

case "$action" in
  stop) stop ;;
  start) start ;;
  restart) stop && start ;;
  *) usage ;;
esac

# Shared helpers for the cluster scripts. Sourced, not run.
TASKYARD_CACHE=${TASKYARD_CACHE:-/var/cache/taskyard}
mkdir -p "$TASKYARD_CACHE"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

here_dir() { cd "$(dirname "${BASH_SOURCE[1]}")" && pwd; }

# Layout of the local cluster. Everything listens on loopback or on the bridge below,
# which the scripts create; pods reach the host (S3, test web servers) at HOST_IP.
# One cluster per machine, whichever checkout started it: its state (certificates, configs,
# logs, PIDs, env) lives outside the checkout, and tests/cluster/.state links to it.
CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${TASKYARD_STATE:-/var/lib/taskyard-cluster-state}
RUNTIME=/var/lib/taskyard-cluster
RUN_DIR=/run/taskyard
BRIDGE=tyk0
HOST_IP=10.213.0.1
POD_CIDR=10.213.0.0/24
SERVICE_CIDR=10.214.0.0/24
SERVICE_IP=10.214.0.1
NODE_NAME=taskyard-node
APISERVER_PORT=6443
ETCD_PORT=23790
S3_PORT=9000
S3_BUCKET=taskyard
CONTAINERD_SOCK="$RUN_DIR/containerd/containerd.sock"
K8S_BIN="$TASKYARD_CACHE/kubernetes-1.20.2/bin"
S3S_BIN="$TASKYARD_CACHE/s3s-fs-0.14.1/bin/s3s-fs"

# Keeps s3s-fs, and the threads it starts later, on the machine's last CPU. It reads a file
# 4 KiB at a time, each read a hop to a tokio blocking thread and back; woken on another CPU
# of this VM, every hop costs an inter-processor interrupt. Pinned, serving 1,000 objects of
# 1 MiB took it 6.7 CPU-seconds instead of 10.5-11.7 (bench/throughput.sh).
pin_s3s_fs() { # $1: its PID
  taskset -a -p -c "$(($(nproc --all) - 1))" "$1" >/dev/null || log "could not pin s3s-fs (PID $1) to one CPU"
}

# Starts a process in the background, recording its PID (and executable, so a recycled PID
# is never mistaken for it) for down.sh. It inherits no descriptor beyond the standard three:
# a daemon holding a caller's lock file (a build lock, say) would hold that lock for ever.
start_bg() {
  local name=$1; shift
  mkdir -p "$STATE/pids" "$STATE/logs"
  readlink -f "$(command -v "$1")" >"$STATE/pids/$name.exe"
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] && eval "exec $fd>&-"
    done 2>/dev/null
    exec nohup "$@" >"$STATE/logs/$name.log" 2>&1
  ) &
  echo $! >"$STATE/pids/$name.pid"
}

# The recorded PID of a component, if that process is still the one we started.
live_pid() {
  local pidfile="$STATE/pids/$1.pid" exefile="$STATE/pids/$1.exe"
  [ -f "$pidfile" ] && [ -f "$exefile" ] || return 1
  local pid
  pid=$(cat "$pidfile")
  [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" = "$(cat "$exefile")" ] || return 1
  echo "$pid"
}

running() { live_pid "$1" >/dev/null; }

# Waits up to $2 seconds for the command after it to succeed.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out after ${secs}s waiting for $what"
    sleep 0.5
  done
}

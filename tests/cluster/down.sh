#!/usr/bin/env bash
# Stops everything up.sh started, by the PIDs it recorded, after letting the kubelet tear
# down every pod (containers, sandboxes, network namespaces). Leaves no process behind.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/common.sh"

stop() {
  local name=$1 pid
  if pid=$(live_pid "$name"); then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$STATE/pids/$name.pid" "$STATE/pids/$name.exe"
}

ctr_k8s() { ctr -a "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# No new pods from here on; the kubelet removes the existing ones.
stop kube-controller-manager
stop kube-scheduler
if running kube-apiserver && running kubelet; then
  kubectl --kubeconfig "$STATE/admin.kubeconfig" delete pods --all --all-namespaces --force --grace-period=0 \
    --wait=false >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do
    [ -z "$(ctr_k8s tasks ls -q 2>/dev/null)" ] && break
    sleep 1
  done
fi
stop kubelet
stop kube-proxy
if [ -x "$K8S_BIN/kube-proxy" ]; then "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true; fi

# Whatever the kubelet left: kill the tasks, so their shims exit with them.
if running containerd; then
  for task in $(ctr_k8s tasks ls -q 2>/dev/null); do
    ctr_k8s tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
    ctr_k8s tasks delete -f "$task" >/dev/null 2>&1 || true
  done
fi
stop containerd
stop kube-apiserver
stop etcd
stop s3

# Mounts and network namespaces of pods live under our runtime directories.
for dir in "$RUNTIME" "$RUN_DIR"; do
  awk -v d="$dir" '$2 ~ "^"d {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
done
for ns in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do ip netns delete "$ns" 2>/dev/null || true; done
ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
log "local cluster stopped"

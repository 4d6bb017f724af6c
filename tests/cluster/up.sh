#!/usr/bin/env bash
# Starts Taskyard's local test cluster on this machine: etcd, kube-apiserver (RBAC on),
# controller-manager, scheduler, containerd, kubelet and kube-proxy (Kubernetes 1.20.2 built
# from Debian's source package), an S3 server with a bucket, the operator, runner and gateway images
# built from this checkout, and namespace taskyard-system with the store credentials Secret.
# Writes tests/cluster/.state/env. Running it again is harmless; down.sh stops everything.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/common.sh"
source "$here/lib/certs.sh"
repo=$(cd "$here/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$TASKYARD_CACHE/target}

S3_ACCESS_KEY=taskyard-test
S3_SECRET_KEY=taskyard-test-secret-key

"$here/install-packages.sh"
"$here/build-kubernetes.sh"
"$here/install-s3-server.sh"
python3 -c "import helm_python" 2>/dev/null || python3 -m pip install -q helm-python-sdk==0.2.2

mkdir -p "$STATE"
ln -sfn "$STATE" "$here/.state"
# Nothing running: clear what a stopped or killed earlier cluster left (mounts, pod network
# namespaces, data) and start afresh.
if ! running etcd && ! running kube-apiserver && ! running containerd && ! running kubelet; then
  "$here/down.sh" >/dev/null 2>&1 || true
  rm -rf "$RUNTIME"
fi
mkdir -p "$RUNTIME" "$RUN_DIR"
kubectl_admin() { kubectl --kubeconfig "$STATE/admin.kubeconfig" "$@"; }

# --- network: a bridge of our own; pods live on it, the host is its gateway -----------------
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add "$BRIDGE" type bridge
fi
case "$(ip -4 addr show dev "$BRIDGE")" in
  *"inet $HOST_IP/"*) ;;
  *) ip addr add "$HOST_IP/24" dev "$BRIDGE" ;;
esac
ip link set "$BRIDGE" up
sysctl -qw net.ipv4.ip_forward=1
modprobe br_netfilter 2>/dev/null || true

make_certs
for k in admin controller-manager scheduler kube-proxy kubelet-client; do kubeconfig "$k" "$k"; done

# --- etcd ------------------------------------------------------------------------------------
if ! running etcd; then
  rm -rf "$RUNTIME/etcd"
  start_bg etcd etcd --name taskyard --data-dir "$RUNTIME/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
    --initial-cluster "taskyard=http://127.0.0.1:$((ETCD_PORT + 10))" --listen-metrics-urls "" \
    --unsafe-no-fsync
  wait_for etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"
fi

# --- control plane ---------------------------------------------------------------------------
pki="$STATE/pki"
if ! running kube-apiserver; then
  start_bg kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address "$HOST_IP" --advertise-address "$HOST_IP" --secure-port "$APISERVER_PORT" --insecure-port 0 \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --authorization-mode Node,RBAC --service-cluster-ip-range "$SERVICE_CIDR" \
    --enable-admission-plugins NodeRestriction --allow-privileged=false \
    --profiling=false --v 1
fi
wait_for kube-apiserver 90 kubectl_admin get --raw /readyz

if ! running kube-controller-manager; then
  start_bg kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --port 0 --secure-port 10257 \
    --use-service-account-credentials --root-ca-file "$pki/ca.crt" \
    --service-account-private-key-file "$pki/sa.key" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --controllers '*,-nodeipam,-cloud-node-lifecycle,-service,-route' \
    --leader-elect=false --profiling=false --v 1
fi
if ! running kube-scheduler; then
  start_bg kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --port 0 --secure-port 10259 --leader-elect=false --profiling=false --v 1
fi

# --- containerd and the pod network ----------------------------------------------------------
cni_dir="$RUNTIME/cni/net.d"
mkdir -p "$cni_dir" "$RUNTIME/containerd" "$RUN_DIR/containerd"
cat >"$cni_dir/10-taskyard.conflist" <<CNI
{
  "cniVersion": "0.4.0",
  "name": "taskyard",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "isDefaultGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$POD_CIDR", "rangeStart": "10.213.0.10", "gateway": "$HOST_IP" }]] }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
CNI
containerd config default | python3 "$here/lib/containerd_config.py" \
  --root "$RUNTIME/containerd" --state "$RUN_DIR/containerd/state" --socket "$CONTAINERD_SOCK" \
  --cni-conf-dir "$cni_dir" --sandbox-image taskyard.local/pause:3.5 >"$STATE/containerd.toml"
if ! running containerd; then
  start_bg containerd containerd --config "$STATE/containerd.toml"
fi
wait_for containerd 30 ctr -a "$CONTAINERD_SOCK" version

# The pod sandbox image, built here since no registry can be reached.
if ! ctr -a "$CONTAINERD_SOCK" -n k8s.io images ls -q | grep -qx taskyard.local/pause:3.5; then
  mkdir -p "$STATE/build"
  gcc -O2 -static -o "$STATE/build/pause" "$here/images/pause.c"
  ref=$("$here/images/build-image.sh" pause "$STATE/build/pause" 0)
  ctr -a "$CONTAINERD_SOCK" -n k8s.io images tag --force "$ref" taskyard.local/pause:3.5 >/dev/null
fi

# --- kubelet and kube-proxy ------------------------------------------------------------------
cat >"$STATE/kubelet-config.yaml" <<KCFG
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $HOST_IP
port: 10250
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
cgroupDriver: cgroupfs
failSwapOn: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
resolvConf: /etc/resolv.conf
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"}
imageGCHighThresholdPercent: 100
serializeImagePulls: false
KCFG
if ! running kubelet; then
  start_bg kubelet "$K8S_BIN/kubelet" --config "$STATE/kubelet-config.yaml" \
    --kubeconfig "$STATE/kubelet-client.kubeconfig" --hostname-override "$NODE_NAME" --node-ip "$HOST_IP" \
    --container-runtime remote --container-runtime-endpoint "unix://$CONTAINERD_SOCK" \
    --root-dir "$RUNTIME/kubelet" --cert-dir "$RUNTIME/kubelet/pki" --v 1
fi
cat >"$STATE/kube-proxy-config.yaml" <<KPCFG
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: {maxPerCore: 0}
KPCFG
if ! running kube-proxy; then
  start_bg kube-proxy "$K8S_BIN/kube-proxy" --config "$STATE/kube-proxy-config.yaml" --hostname-override "$NODE_NAME" --v 1
fi
wait_for "node $NODE_NAME Ready" 120 \
  sh -c "kubectl --kubeconfig '$STATE/admin.kubeconfig' get node $NODE_NAME -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"

# --- object store ----------------------------------------------------------------------------
if ! running s3; then
  rm -rf "$RUNTIME/s3"
  mkdir -p "$RUNTIME/s3/$S3_BUCKET"
  start_bg s3 "$S3S_BIN" --host "$HOST_IP" --port "$S3_PORT" \
    --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" "$RUNTIME/s3"
  pin_s3s_fs "$(cat "$STATE/pids/s3.pid")"
  wait_for "S3 server" 30 bash -c "exec 3<>/dev/tcp/$HOST_IP/$S3_PORT"
fi

# --- Taskyard images, from this checkout -----------------------------------------------------
log "building taskyard binaries"
# kubectl-taskyard is not in an image: the plugin e2e tests run it on the host, as a user would.
(cd "$repo" && cargo build -q -p taskyard-operator -p job-runner -p taskyard-gateway -p kubectl-taskyard --bins)
operator_image=$("$here/images/build-image.sh" --target operator "$CARGO_TARGET_DIR/debug")
runner_image=$("$here/images/build-image.sh" --target runner "$CARGO_TARGET_DIR/debug")
gateway_image=$("$here/images/build-image.sh" --target gateway "$CARGO_TARGET_DIR/debug")

# --- the operator's namespace and store credentials ------------------------------------------
kubectl_admin create namespace taskyard-system --dry-run=client -o yaml | kubectl_admin apply -f - >/dev/null
kubectl_admin -n taskyard-system create secret generic taskyard-s3 \
  --from-literal=AWS_ACCESS_KEY_ID="$S3_ACCESS_KEY" --from-literal=AWS_SECRET_ACCESS_KEY="$S3_SECRET_KEY" \
  --dry-run=client -o yaml | kubectl_admin apply -f - >/dev/null
# Pods get a default service account per namespace once the controller-manager has made it.
wait_for "default service account" 60 kubectl_admin -n default get serviceaccount default

cat >"$STATE/env" <<ENV
export KUBECONFIG=$STATE/admin.kubeconfig
export TASKYARD_HOST_IP=$HOST_IP
export TASKYARD_POD_CIDR=$POD_CIDR
export TASKYARD_S3_ENDPOINT=http://$HOST_IP:$S3_PORT
export TASKYARD_S3_BUCKET=$S3_BUCKET
export TASKYARD_S3_SECRET=taskyard-s3
export TASKYARD_S3_ROOT=$RUNTIME/s3
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export AWS_REGION=us-east-1
export TASKYARD_OPERATOR_IMAGE=$operator_image
export TASKYARD_RUNNER_IMAGE=$runner_image
export TASKYARD_GATEWAY_IMAGE=$gateway_image
export TASKYARD_CONTAINERD_SOCK=$CONTAINERD_SOCK
ENV
log "cluster ready; source $STATE/env"

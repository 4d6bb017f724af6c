# Certificates for the local cluster, all X.509 v3 (rustls refuses v1). Sourced by up.sh.

# issue NAME CN ORG EXT [SANS]: a key and a certificate signed by the cluster CA.
issue() {
  local name=$1 cn=$2 org=$3 ext=$4 sans=${5:-}
  local dir="$STATE/pki"
  local subj="/CN=$cn"
  [ -n "$org" ] && subj="/O=$org$subj"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$ext"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } >"$dir/$name.ext"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/$name.key" -subj "$subj" -out "$dir/$name.csr" 2>/dev/null
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
}

make_certs() {
  local dir="$STATE/pki"
  [ -f "$dir/done" ] && return 0
  rm -rf "$dir" && mkdir -p "$dir"
  openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$dir/ca.key" -days 3650 -sha256 \
    -subj "/CN=taskyard-local-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" -out "$dir/ca.crt" 2>/dev/null
  issue apiserver kube-apiserver "" serverAuth \
    "IP:127.0.0.1,IP:$HOST_IP,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  issue admin admin system:masters clientAuth
  issue controller-manager system:kube-controller-manager "" clientAuth
  issue scheduler system:kube-scheduler "" clientAuth
  issue kube-proxy system:kube-proxy "" clientAuth
  issue kubelet-client "system:node:$NODE_NAME" system:nodes clientAuth
  issue kubelet-serving "$NODE_NAME" "" serverAuth "IP:$HOST_IP,DNS:$NODE_NAME"
  issue apiserver-kubelet-client kube-apiserver-kubelet-client system:masters clientAuth
  openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
  openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
  touch "$dir/done"
}

# kubeconfig NAME CERT: a kubeconfig for a client certificate.
kubeconfig() {
  local name=$1 cert=$2 dir="$STATE/pki"
  cat >"$STATE/$name.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: taskyard
  cluster:
    certificate-authority: $dir/ca.crt
    server: https://$HOST_IP:$APISERVER_PORT
users:
- name: $name
  user:
    client-certificate: $dir/$cert.crt
    client-key: $dir/$cert.key
contexts:
- name: taskyard
  context: {cluster: taskyard, user: $name}
current-context: taskyard
KC
}

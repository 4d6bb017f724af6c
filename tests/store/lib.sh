# Shared settings of the RGW store scripts (rgw-up.sh, rgw-down.sh). Sourced, not run.
# A single-node Ceph (one monitor, one OSD) with the RADOS Gateway, all on 127.0.0.1, its
# state in /var/lib/taskyard-rgw, apart from the local cluster's.
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../cluster/lib" && pwd)/common.sh"

# The local cluster's state (its env file and kubeconfig), for rgw-up.sh --for-cluster.
CLUSTER_STATE=$STATE
# common.sh's start_bg, live_pid and running keep PIDs under $STATE: ours, not the cluster's.
STATE=${TASKYARD_RGW_STATE:-/var/lib/taskyard-rgw}
case "$STATE" in
  /var/lib/?* | /tmp/?*) ;;
  *) die "TASKYARD_RGW_STATE=$STATE: use a directory under /var/lib or /tmp; rgw-up.sh empties it" ;;
esac
CEPH_CONF_FILE="$STATE/ceph.conf"
RGW_PORT=${TASKYARD_RGW_PORT:-17480}
RGW_MON_PORT=16789
# The OSD (and the gateway's client side) bind in this range: away from Ceph's default 6800+.
RGW_OSD_PORTS=(16800 16839)
RGW_BUCKET=taskyard
RGW_ACCESS_KEY=taskyard-rgw-test
RGW_SECRET_KEY=taskyard-rgw-test-secret-key
# memstore (in memory) or bluestore (on a sparse file); see rgw-up.sh for what each costs.
RGW_OSD_STORE=${TASKYARD_RGW_OSD_STORE:-memstore}

ceph_cli() { ceph -c "$CEPH_CONF_FILE" --connect-timeout 10 "$@"; }

#!/usr/bin/env bash
# Starts a minimal single-node Ceph with the RADOS Gateway on 127.0.0.1, a second S3 store
# for the store-facing tests: one monitor, one OSD (memstore by default; bluestore on a
# sparse file with TASKYARD_RGW_OSD_STORE=bluestore), pools of size 1, no manager (the
# gateway does not need one), an S3 user and the bucket. Writes $STATE/env in the format of
# the cluster's env file; tests read it when TASKYARD_STORE_ENV names it. Running it again
# while it runs is harmless; rgw-down.sh stops everything by PID.
#
# --for-cluster: the local cluster (tests/cluster/up.sh) is up and will use this store too.
# The gateway then also listens on the cluster's bridge address, which Pods reach, a Secret
# taskyard-rgw in taskyard-system holds its keys, and the env file says both
# (TASKYARD_CLUSTER_S3_ENDPOINT, TASKYARD_CLUSTER_S3_SECRET): the e2e tests' chart values then
# name RGW as the store (tests/src/cluster.rs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
started=$SECONDS

for_cluster=0
case "${1:-}" in
  --for-cluster) for_cluster=1 ;;
  "") ;;
  *) die "usage: rgw-up.sh [--for-cluster]" ;;
esac
endpoints="endpoint=127.0.0.1:$RGW_PORT"
if [ "$for_cluster" = 1 ]; then
  [ -f "$CLUSTER_STATE/env" ] || die "--for-cluster: the local cluster is not up; start it with tests/cluster/up.sh"
  grep -q " $HOST_IP/" <<<"$(ip -o addr show)" || die "--for-cluster: no interface has the cluster's address $HOST_IP"
  endpoints="$endpoints endpoint=$HOST_IP:$RGW_PORT"
fi

"$here/../cluster/install-packages.sh" --rgw

if running ceph-mon && running ceph-osd && running radosgw && [ -f "$STATE/env" ] &&
  { [ "$for_cluster" = 0 ] || grep -q TASKYARD_CLUSTER_S3_ENDPOINT "$STATE/env"; }; then
  log "RGW already running on 127.0.0.1:$RGW_PORT; source $STATE/env"
  exit 0
fi
# Anything left of an earlier, stopped or half-started store goes: each start is a new one.
"$here/rgw-down.sh" >/dev/null 2>&1 || true
rm -rf "$STATE"
mkdir -p "$STATE"/{logs,run,mon,osd,rgw}
for port in "$RGW_PORT" "$RGW_MON_PORT"; do
  if ss -Hltn "sport = :$port" | grep -q .; then
    die "127.0.0.1:$port is taken by another process; stop it, or set TASKYARD_RGW_PORT for the gateway's port"
  fi
done

fsid=$(cat /proc/sys/kernel/random/uuid)
cat >"$CEPH_CONF_FILE" <<CONF
[global]
fsid = $fsid
mon_host = v1:127.0.0.1:$RGW_MON_PORT
public_addr = 127.0.0.1
ms_bind_msgr2 = false
ms_bind_ipv6 = false
ms_bind_port_min = ${RGW_OSD_PORTS[0]}
ms_bind_port_max = ${RGW_OSD_PORTS[1]}
# Loopback only, started and stopped by these scripts: no keys to manage.
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# One OSD: every pool keeps one copy, and says so without warnings.
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_warn_on_insecure_global_id_reclaim_allowed = false
# A test store: warn only when the disk is nearly full (the monitor stops at 5% free).
mon_data_avail_warn = 10
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
# Without cephx an OSD's own crush commands at start carry no fsid and are refused ('wrong
# fsid'): rgw-up.sh places the OSD in the crush map itself.
osd_crush_update_on_start = false
osd_class_update_on_start = false
run_dir = $STATE/run
admin_socket = $STATE/run/\$cluster-\$name.asok
log_file = $STATE/logs/\$name.log
mon_data = $STATE/mon/\$id
osd_data = $STATE/osd/\$id
rgw_data = $STATE/rgw
osd_objectstore = $RGW_OSD_STORE
# memstore: the whole store in memory, bounded.
memstore_device_bytes = 2147483648
# bluestore: a sparse file, with a small cache (two cores, shared).
bluestore_block_path = $STATE/osd/block
bluestore_block_create = true
bluestore_block_size = 10737418240
bluestore_block_db_create = false
bluestore_block_wal_create = false
osd_memory_target = 939524096
# The tests run on two shared cores: fewer threads, and no scrubbing while they run.
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2
osd_scrub_begin_hour = 0
osd_scrub_end_hour = 0
[client.rgw.taskyard]
rgw_frontends = beast $endpoints
rgw_thread_pool_size = 32
rgw_enable_usage_log = false
rgw_dns_name = 127.0.0.1
CONF

# --- monitor ---------------------------------------------------------------------------------
monmaptool --create --clobber --fsid "$fsid" --addv a "[v1:127.0.0.1:$RGW_MON_PORT]" "$STATE/monmap" >/dev/null
ceph-mon -c "$CEPH_CONF_FILE" --mkfs -i a --monmap "$STATE/monmap" >/dev/null
start_bg ceph-mon ceph-mon -c "$CEPH_CONF_FILE" -f -i a
wait_for "the Ceph monitor (log: $STATE/logs/mon.a.log)" 30 ceph_cli mon stat

# --- one OSD -----------------------------------------------------------------------------------
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
osd_id=$(ceph_cli osd new "$osd_uuid")
mkdir -p "$STATE/osd/$osd_id"
ceph-osd -c "$CEPH_CONF_FILE" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >"$STATE/logs/osd-mkfs.log" 2>&1 ||
  die "ceph-osd --mkfs failed; see $STATE/logs/osd-mkfs.log and $STATE/logs/osd.$osd_id.log"
ceph_cli osd crush add "osd.$osd_id" 1.0 root=default host=taskyard >/dev/null 2>&1
start_bg ceph-osd ceph-osd -c "$CEPH_CONF_FILE" -f -i "$osd_id"
wait_for "the OSD to be up (log: $STATE/logs/osd.$osd_id.log)" 60 sh -c "ceph -c '$CEPH_CONF_FILE' --connect-timeout 5 osd dump | grep -q '^osd.$osd_id up'"

# --- the gateway -------------------------------------------------------------------------------
# It creates its pools (size 1 by default above) at its first start.
start_bg radosgw radosgw -c "$CEPH_CONF_FILE" -f -n client.rgw.taskyard
wait_for "the RADOS Gateway on 127.0.0.1:$RGW_PORT (log: $STATE/logs/client.rgw.taskyard.log)" 120 \
  curl -sf "http://127.0.0.1:$RGW_PORT/"

radosgw-admin -c "$CEPH_CONF_FILE" user create --uid taskyard --display-name "Taskyard tests" \
  --access-key "$RGW_ACCESS_KEY" --secret "$RGW_SECRET_KEY" >/dev/null
# The bucket, through the S3 API itself. curl signs the request; RGW wants the payload's
# hash (here the empty body's) among the signed headers, which curl 7.88 does not add.
curl -sf -X PUT -H "x-amz-content-sha256: $(sha256sum </dev/null | cut -d' ' -f1)" \
  --aws-sigv4 "aws:amz:us-east-1:s3" --user "$RGW_ACCESS_KEY:$RGW_SECRET_KEY" \
  "http://127.0.0.1:$RGW_PORT/$RGW_BUCKET" >/dev/null || die "could not create bucket $RGW_BUCKET"

cat >"$STATE/env" <<ENV
export TASKYARD_STORE_KIND=rgw
export TASKYARD_HOST_IP=127.0.0.1
export TASKYARD_S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
export TASKYARD_S3_BUCKET=$RGW_BUCKET
export AWS_ACCESS_KEY_ID=$RGW_ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$RGW_SECRET_KEY
export AWS_REGION=us-east-1
ENV
if [ "$for_cluster" = 1 ]; then
  kubectl_cluster() { kubectl --kubeconfig "$CLUSTER_STATE/admin.kubeconfig" "$@"; }
  kubectl_cluster create namespace taskyard-system --dry-run=client -o yaml | kubectl_cluster apply -f - >/dev/null
  kubectl_cluster -n taskyard-system create secret generic taskyard-rgw \
    --from-literal=AWS_ACCESS_KEY_ID="$RGW_ACCESS_KEY" --from-literal=AWS_SECRET_ACCESS_KEY="$RGW_SECRET_KEY" \
    --dry-run=client -o yaml | kubectl_cluster apply -f - >/dev/null
  cat >>"$STATE/env" <<ENV
export TASKYARD_CLUSTER_S3_ENDPOINT=http://$HOST_IP:$RGW_PORT
export TASKYARD_CLUSTER_S3_SECRET=taskyard-rgw
ENV
fi
log "RGW ready on 127.0.0.1:$RGW_PORT ($RGW_OSD_STORE OSD) in $((SECONDS - started))s; TASKYARD_STORE_ENV=$STATE/env"

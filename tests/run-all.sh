#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, builds, starts the
# local cluster, runs every test (unit, integration, end to end), and stops the cluster.
#
#   tests/run-all.sh            everything
#   KEEP_CLUSTER=1 tests/run-all.sh   leave the cluster running afterwards (dev loop)
#   TASKYARD_RGW=0 tests/run-all.sh   skip the second store pass: the store-facing tests and
#                                     some e2e tests against Ceph's RADOS Gateway
#                                     (tests/store/rgw-up.sh)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
source tests/cluster/lib/common.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$TASKYARD_CACHE/target}
started=$SECONDS

if [ "${KEEP_CLUSTER:-0}" != 1 ]; then
  trap 'tests/cluster/down.sh; tests/store/rgw-down.sh' EXIT
else
  trap 'tests/store/rgw-down.sh' EXIT
fi

log "installing the build's and the cluster's packages"
tests/cluster/install-packages.sh

log "checking formatting and lints"
cargo fmt --all -- --check
cargo clippy -q --workspace --all-targets -- -D warnings

log "starting the local cluster"
tests/cluster/up.sh

log "running the tests"
# The browser test of the gateway's page leaves its screenshot here, kept after the run.
export TASKYARD_SCREENSHOT_DIR=${TASKYARD_SCREENSHOT_DIR:-$STATE/screenshots}
set +e
cargo test --workspace --lib --bins --tests --no-fail-fast 2>&1 | tee "$STATE/test-output.log"
status=${PIPESTATUS[0]}
set -e
log "tests finished in $((SECONDS - started))s"

# The second store pass: the store-facing test binaries again, and e2e tests of the
# chart's main task kinds with RGW as the cluster's store, against Ceph's RADOS Gateway
# instead of s3s-fs. The binaries are the ones built above (tests/run-tests-again.sh).
if [ "${TASKYARD_RGW:-1}" != 0 ]; then
  rgw_started=$SECONDS
  log "second store pass: store-facing and e2e tests against Ceph's RADOS Gateway"
  tests/store/rgw-up.sh --for-cluster
  set +e
  TASKYARD_STORE_ENV=/var/lib/taskyard-rgw/env tests/run-tests-again.sh \
    s3_store runner_s3 runner_batch results_log_s3 \
    e2e_hashtask e2e_imagetask e2e_texttask e2e_batch 2>&1 |
    tee -a "$STATE/test-output.log"
  rgw_status=${PIPESTATUS[0]}
  set -e
  tests/store/rgw-down.sh
  [ "$status" != 0 ] || status=$rgw_status
  log "RGW pass finished in $((SECONDS - rgw_started))s"
fi

if [ "${KEEP_CLUSTER:-0}" != 1 ]; then
  tests/cluster/down.sh
fi
trap - EXIT
# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$STATE/test-output.log"
exit "$status"

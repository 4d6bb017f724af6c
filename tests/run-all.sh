#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, builds, starts the
# local cluster, runs every test (unit, integration, end to end), and stops the cluster.
#
#   tests/run-all.sh            everything
#   KEEP_CLUSTER=1 tests/run-all.sh   leave the cluster running afterwards (dev loop)
#   TASKYARD_RGW=0 tests/run-all.sh   skip the second store pass: the store-facing tests
#                                     against Ceph's RADOS Gateway (tests/store/rgw-up.sh)
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

if [ "${KEEP_CLUSTER:-0}" != 1 ]; then
  tests/cluster/down.sh
fi

# The same store-facing test binaries again, against RGW instead of s3s-fs. They need no
# cluster, so this runs after it is stopped, with the two cores to itself.
if [ "${TASKYARD_RGW:-1}" != 0 ]; then
  rgw_started=$SECONDS
  log "second store pass: the store-facing tests against Ceph's RADOS Gateway"
  tests/store/rgw-up.sh
  set +e
  # --workspace, as the main pass: the same features, so the binaries it built are reused.
  TASKYARD_STORE_ENV=/var/lib/taskyard-rgw/env cargo test --workspace --no-fail-fast \
    --test s3_store --test runner_s3 --test runner_batch --test results_log_s3 2>&1 |
    tee -a "$STATE/test-output.log"
  rgw_status=${PIPESTATUS[0]}
  set -e
  tests/store/rgw-down.sh
  [ "$status" != 0 ] || status=$rgw_status
  log "RGW pass finished in $((SECONDS - rgw_started))s"
fi
trap - EXIT
# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$STATE/test-output.log"
exit "$status"

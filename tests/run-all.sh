#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, builds, starts the
# local cluster, runs every test (unit, integration, end to end), and stops the cluster.
#
#   tests/run-all.sh            everything
#   KEEP_CLUSTER=1 tests/run-all.sh   leave the cluster running afterwards (dev loop)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
source tests/cluster/lib/common.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$TASKYARD_CACHE/target}
started=$SECONDS

if [ "${KEEP_CLUSTER:-0}" != 1 ]; then
  trap 'tests/cluster/down.sh' EXIT
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
  trap - EXIT
  tests/cluster/down.sh
fi
# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$STATE/test-output.log"
exit "$status"

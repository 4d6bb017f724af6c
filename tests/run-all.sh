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

log "checking formatting and lints"
cargo fmt --all -- --check
cargo clippy -q --workspace --all-targets -- -D warnings

log "starting the local cluster"
tests/cluster/up.sh

log "running the tests"
# The chart's CRDs are what the cluster serves; the CRD test checks they match the code.
cargo test --workspace --no-fail-fast 2>&1 | tee "$STATE/test-output.log"
status=${PIPESTATUS[0]}
log "tests finished in $((SECONDS - started))s"
exit "$status"

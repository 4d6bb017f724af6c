# Developer shortcuts. The test suite itself is `tests/run-all.sh` (see README).
CARGO_TARGET_DIR ?= /var/cache/taskyard/target
export CARGO_TARGET_DIR

.PHONY: crds check fmt
crds:
	cargo run -q -p taskyard-api --bin crdgen > crds/taskyard.yaml
	mkdir -p charts/taskyard/crds && cp crds/taskyard.yaml charts/taskyard/crds/taskyard.yaml

fmt:
	cargo fmt --all

check:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

#!/usr/bin/env bash
# Runs some test binaries of the suite again, by target name (e.g. s3_store e2e_batch), as
# `cargo test` would (from their package's directory, with CARGO_MANIFEST_DIR), without
# building anything: the binaries are the ones the whole suite's `cargo test` built, found
# through the same selection. Selecting them with `cargo test --test NAME` instead unifies
# the dependencies' features differently and rebuilds half the tree (3 minutes here).
# Used by tests/run-all.sh for its second store pass. Exits non-zero if any test failed.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: $0 TEST-TARGET..." >&2; exit 2; }

targets=$(cargo test --workspace --lib --bins --tests --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, os, sys
wanted = set(sys.argv[1:])
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in wanted \
            and "test" in m["target"]["kind"]:
        print(m["target"]["name"], os.path.dirname(m["manifest_path"]), m["executable"], sep="\t")
' "$@") || { echo "cargo could not list the test binaries" >&2; exit 1; }

status=0
for name in "$@"; do
  line=$(grep -P "^$name\t" <<<"$targets" | head -1)
  if [ -z "$line" ]; then
    echo "no test target named $name in the workspace" >&2
    status=1
    continue
  fi
  IFS=$'\t' read -r _ dir exe <<<"$line"
  echo "     Running $name ($exe)"
  (cd "$dir" && CARGO_MANIFEST_DIR=$dir "$exe") || status=1
done
exit "$status"

#!/usr/bin/env bash
# Installs s3s-fs, the S3-compatible server the tests and local runs use, once per version.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/common.sh"

S3S_FS_VERSION=0.14.1
root="$TASKYARD_CACHE/s3s-fs-$S3S_FS_VERSION"
if [ -x "$root/bin/s3s-fs" ]; then
  log "s3s-fs $S3S_FS_VERSION cached in $root/bin"
  exit 0
fi
log "building s3s-fs $S3S_FS_VERSION (about 4 minutes cold)"
CARGO_TARGET_DIR="$TASKYARD_CACHE/s3s-fs-target" \
  cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary --locked --root "$root" -q
rm -rf "$TASKYARD_CACHE/s3s-fs-target"
log "s3s-fs ready: $root/bin/s3s-fs"

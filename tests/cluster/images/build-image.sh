#!/usr/bin/env bash
# Builds an OCI image from one binary, without a container engine, and imports it into
# the local cluster's containerd. Prints the image reference.
#
#   build-image.sh --target STAGE BINDIR   the Dockerfile's final stage STAGE (operator,
#                                          runner), with the binary it names from BINDIR
#   build-image.sh NAME BINARY [USER]      a helper image (pause, busybox)
#
# The image holds the binary, the shared libraries it links, the CA certificates, and a
# passwd entry for the unprivileged user 65532 (what the Dockerfile's distroless base gives).
# It is tagged with a digest of its contents, so a changed binary is a new image.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/common.sh"

if [ "$1" = --target ]; then
  eval "$(python3 "$here/../lib/dockerfile_stage.py" "$here/../../../Dockerfile" "$2")"
  name=$SRC_NAME binary=$3/$SRC_NAME user=$IMAGE_USER dest=$DEST entrypoint=$ENTRYPOINT
else
  name=$1 binary=$2 user=${3:-65532} dest=/usr/local/bin/$1 entrypoint=/usr/local/bin/$1
fi
[ -x "$binary" ] || die "no executable at $binary"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root$(dirname "$dest")" "$root/etc/ssl/certs" "$root/tmp"
chmod 1777 "$root/tmp"
cp "$binary" "$root$dest"
# Shared libraries, at the paths the dynamic loader looks for them.
if ldd "$binary" >/dev/null 2>&1; then
  ldd "$binary" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
fi
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/tmp:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"

tag=$(cd "$root" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
ref="taskyard.local/$name:$tag"
if ctr -a "$CONTAINERD_SOCK" -n k8s.io images ls -q 2>/dev/null | grep -qx "$ref"; then
  echo "$ref"
  exit 0
fi

layout="$work/layout"
umoci init --layout "$layout" >/dev/null
umoci new --image "$layout:$tag" >/dev/null
umoci unpack --image "$layout:$tag" "$work/bundle" >/dev/null
cp -a "$root/." "$work/bundle/rootfs/"
umoci repack --image "$layout:$tag" "$work/bundle" >/dev/null
umoci config --image "$layout:$tag" --config.entrypoint "$entrypoint" \
  --config.user "$user:$user" --config.workingdir /tmp >/dev/null
umoci gc --layout "$layout" >/dev/null
tar -C "$layout" -cf "$work/image.tar" .
ctr -a "$CONTAINERD_SOCK" -n k8s.io images import --base-name "taskyard.local/$name" "$work/image.tar" >/dev/null
echo "$ref"

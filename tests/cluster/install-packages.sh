#!/usr/bin/env bash
# Installs the Debian packages the build and the local cluster need, and Ceph's for the RGW
# store (tests/store/rgw-up.sh). Safe to run again.
#   install-packages.sh         everything
#   install-packages.sh --rgw   only the RGW store's (what rgw-up.sh needs on its own)
set -euo pipefail

# A single-node Ceph: monitor, OSD, the RADOS Gateway and the admin tools; no manager.
rgw_packages=(ceph-mon ceph-osd radosgw ceph-common curl)
packages=(
  etcd-server containerd runc containernetworking-plugins umoci
  golang-go rsync jq openssl iptables iproute2 busybox-static
  dpkg-dev conntrack procps psmisc curl ca-certificates
  # The runner's vendored libjpeg-turbo is built with CMake, its SIMD code with NASM.
  cmake nasm
  # The gateway's web page is tested in headless Chromium, driven through ChromeDriver.
  chromium chromium-driver
  "${rgw_packages[@]}"
)
if [ "${1:-}" = --rgw ]; then
  packages=("${rgw_packages[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Packages install services we start ourselves, on our own addresses.
for svc in etcd containerd ceph.target ceph-mon.target ceph-osd.target ceph-radosgw.target; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done

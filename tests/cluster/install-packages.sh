#!/usr/bin/env bash
# Installs the Debian packages the build and the local cluster need. Safe to run again.
set -euo pipefail

packages=(
  etcd-server containerd runc containernetworking-plugins umoci
  golang-go rsync jq openssl iptables iproute2 busybox-static
  dpkg-dev conntrack procps psmisc curl ca-certificates
  # The runner's vendored libjpeg-turbo is built with CMake, its SIMD code with NASM.
  cmake nasm
  # The gateway's web page is tested in headless Chromium, driven through ChromeDriver.
  chromium chromium-driver
)

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
for svc in etcd containerd; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done

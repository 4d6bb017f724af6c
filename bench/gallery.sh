#!/usr/bin/env bash
# End to end, as a user runs it: an ImageTask thumbnailing every photo of a loopback page
# through `job-runner run` (the binary the runner image ships, same cargo profile), against
# a Pillow script that downloads the same page and its images and saves 256-px thumbnails,
# in one process and in as many processes as cores. Wall-clock seconds of each whole
# command, rounds alternating, best of ROUNDS; ratios are Pillow's time over Taskyard's.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/taskyard/target}
ROUNDS=${ROUNDS:-3}
PHOTOS=${PHOTOS:-20}
SIDE=${SIDE:-256}
CORES=$(nproc)

dpkg-query -W mate-backgrounds lomiri-wallpapers plasma-workspace-wallpapers >/dev/null 2>&1 ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    mate-backgrounds lomiri-wallpapers plasma-workspace-wallpapers >/dev/null
python3 -c "import PIL" 2>/dev/null || python3 -m pip install -q pillow==13.0.0
# RUNNER names another build of the runner (the code before a change, say).
[ -n "${RUNNER:-}" ] || cargo build -q -p job-runner --bins
runner=${RUNNER:-$CARGO_TARGET_DIR/debug/job-runner}

work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Photos other than the ones bench/resize.sh uses.
mkdir -p "$work/site"
mapfile -t resize_set < <(find /usr/share/backgrounds -iname '*.jpg' -size +300k | sort | head -12)
mapfile -t photos < <(find /usr/share/backgrounds /usr/share/wallpapers -iname '*.jpg' -size +300k | sort |
  grep -vxF -f <(printf '%s\n' "${resize_set[@]}") | head -"$PHOTOS")
{
  echo "<html><body>"
  for i in "${!photos[@]}"; do
    cp "${photos[$i]}" "$work/site/$i.jpg"
    echo "<img src=\"$i.jpg\">"
  done
  echo "</body></html>"
} >"$work/site/index.html"
mp=$(python3 -c "
import sys; from PIL import Image
print(round(sum(Image.open(p).width * Image.open(p).height for p in sys.argv[1:]) / 1e6, 1))" "${photos[@]}")
progressive=$(python3 -c "
import sys; from PIL import Image
print(sum(1 for p in sys.argv[1:] if Image.open(p).info.get('progressive')))" "${photos[@]}")

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# http.server's listen backlog of 5 drops connections that arrive together (8 from the
# runner), and each retry waits a second: a larger backlog, or the server sets the pace.
python3 -c '
import functools, http.server, sys
http.server.ThreadingHTTPServer.request_queue_size = 128
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[2])
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
' "$port" "$work/site" >/dev/null 2>&1 &
server_pid=$!
for _ in $(seq 1 50); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/index.html" && break
  sleep 0.1
done
page="http://127.0.0.1:$port/index.html"
printf 'apiVersion: taskyard.dev/v1alpha1\nkind: ImageTask\nmetadata: {name: gallery}\nspec:\n  source: {page: "%s"}\n  resize: {width: %d, height: %d, format: jpeg}\n' \
  "$page" "$SIDE" "$SIDE" >"$work/task.yaml"

taskyard() { # a fresh store each time, so nothing is reused
  rm -rf "$work/store"
  local out
  out=$("$runner" run --store "$work/store" --allow-network 127.0.0.0/8 "$work/task.yaml")
  grep -q "stored: ${#photos[@]}" <<<"$out" || { echo "the ImageTask did not store every image: $out" >&2; exit 1; }
}
pillow() {
  rm -rf "$work/out" && mkdir -p "$work/out"
  python3 bench/pillow_gallery.py "$page" "$SIDE" "$1" "$work/out"
  [ "$(ls "$work/out" | wc -l)" = "${#photos[@]}" ] || { echo "Pillow did not write every thumbnail" >&2; exit 1; }
}
declare -A cmd=(["taskyard ImageTask"]="taskyard" ["Pillow, 1 process"]="pillow 1" ["Pillow, $CORES processes"]="pillow $CORES")
order=("taskyard ImageTask" "Pillow, 1 process" "Pillow, $CORES processes")
declare -A best
echo "a loopback page of ${#photos[@]} photos ($progressive progressive), $mp MP; ${SIDE}-px thumbnails; best of $ROUNDS alternating rounds"
for round in $(seq 1 "$ROUNDS"); do
  for name in "${order[@]}"; do
    start=$(date +%s.%N)
    ${cmd[$name]}
    s=$(python3 -c "print($(date +%s.%N) - $start)")
    best[$name]=$(python3 -c "print(min(float('${best[$name]:-inf}'), $s))")
  done
  echo "round $round: $(for n in "${order[@]}"; do printf '%s %.2f s; ' "$n" "${best[$n]}"; done)"
done
t=${best["taskyard ImageTask"]}
printf '\n%-26s %10s %10s %16s\n' "whole command" "seconds" "MP/s" "Taskyard faster"
for name in "${order[@]}"; do
  s=${best[$name]}
  printf '%-26s %10.2f %10.0f %15.2fx\n' "$name" "$s" "$(python3 -c "print($mp / $s)")" "$(python3 -c "print($s / $t)")"
done

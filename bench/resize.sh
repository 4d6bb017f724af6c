#!/usr/bin/env bash
# Resize throughput: Taskyard's runner pipeline against Pillow on the same machine and the
# same photos (Debian wallpaper packages), 256-px thumbnails, JPEG q85, single-threaded.
# Rounds alternate between the two so that machine load affects both alike.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/taskyard/target}
ROUNDS=${ROUNDS:-3}
SIDE=${SIDE:-256}

DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mate-backgrounds lomiri-wallpapers >/dev/null
python3 -c "import PIL" 2>/dev/null || python3 -m pip install -q pillow==13.0.0
mapfile -t photos < <(find /usr/share/backgrounds -iname '*.jpg' -size +300k | sort | head -12)
mp=$(python3 -c "
import sys; from PIL import Image
print(round(sum(Image.open(p).width * Image.open(p).height for p in sys.argv[1:]) / 1e6, 1))" "${photos[@]}")
echo "${#photos[@]} photos, ${mp} megapixels in all; ${SIDE}-px thumbnails, best and median of ${ROUNDS} rounds"

cargo build -q --release -p job-runner --example resize_bench
bench="$CARGO_TARGET_DIR/release/examples/resize_bench"
declare -A best
for _ in $(seq 1 "$ROUNDS"); do
  read -r _ t _ < <(RAYON_NUM_THREADS=1 "$bench" "$SIDE" 1 "${photos[@]}")
  read -r _ p _ < <(python3 bench/pillow_resize.py "$SIDE" 1 "${photos[@]}")
  best[taskyard]=$(python3 -c "print(max(${best[taskyard]:-0}, $t))")
  best[pillow]=$(python3 -c "print(max(${best[pillow]:-0}, $p))")
  echo "round: taskyard $t MP/s, pillow $p MP/s"
done
printf '%-34s %10s\n' "pipeline" "MP/s (best)"
printf "%-34s %10s\n" "taskyard (DCT scale, fir, simd enc)" "${best[taskyard]}"
printf '%-34s %10s\n' "Pillow 13 thumbnail (draft+LANCZOS)" "${best[pillow]}"

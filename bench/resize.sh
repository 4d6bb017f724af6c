#!/usr/bin/env bash
# Resize throughput: Taskyard's runner pipeline against Pillow on the same machine and the
# same photos (Debian wallpaper packages), JPEG q85, in source megapixels per second:
#   - 256-px thumbnails (aspect kept) and exact 100x100 (the original services' size);
#   - one core (both pinned to CPU 0) and all cores (Taskyard in as many threads as cores,
#     Pillow in as many processes);
#   - the progressive JPEGs among the photos separately (one core, 256 px).
# Rounds alternate between the tools so that machine load affects all alike; best of ROUNDS.
# BEFORE names another build of the example (the code before a change): it runs in the same
# rounds and gets a column of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/taskyard/target}
ROUNDS=${ROUNDS:-3}
CORES=$(nproc)

dpkg-query -W mate-backgrounds lomiri-wallpapers >/dev/null 2>&1 ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mate-backgrounds lomiri-wallpapers >/dev/null
python3 -c "import PIL" 2>/dev/null || python3 -m pip install -q pillow==13.0.0
mapfile -t photos < <(find /usr/share/backgrounds -iname '*.jpg' -size +300k | sort | head -12)
mapfile -t progressive < <(python3 -c "
import sys; from PIL import Image
print('\n'.join(p for p in sys.argv[1:] if Image.open(p).info.get('progressive')))" "${photos[@]}")
mp=$(python3 -c "
import sys; from PIL import Image
print(round(sum(Image.open(p).width * Image.open(p).height for p in sys.argv[1:]) / 1e6, 1))" "${photos[@]}")
echo "${#photos[@]} photos (${#progressive[@]} progressive), ${mp} MP in all; ${CORES} cores; best of ${ROUNDS} alternating rounds"

# RESIZE_BENCH names another build of the example (the code before a change, say).
if [ -z "${RESIZE_BENCH:-}" ]; then
  cargo build -q --release -p job-runner --example resize_bench
fi
bench=${RESIZE_BENCH:-$CARGO_TARGET_DIR/release/examples/resize_bench}

# name -> "size workers subset"
declare -A cases=(
  ["256 px, 1 core"]="256 1 all"
  ["256 px, all cores"]="256 $CORES all"
  ["100x100, 1 core"]="100x100 1 all"
  ["100x100, all cores"]="100x100 $CORES all"
  ["256 px, progressive, 1 core"]="256 1 progressive"
)
order=("256 px, 1 core" "256 px, all cores" "100x100, 1 core" "100x100, all cores" "256 px, progressive, 1 core")
declare -A best_t best_p best_b
run() { # tool size workers subset -> MP/s
  local tool=$1 size=$2 workers=$3 set=(); local pin=()
  if [ "$4" = progressive ]; then set=("${progressive[@]}"); else set=("${photos[@]}"); fi
  [ "$workers" = 1 ] && pin=(taskset -c 0)
  if [ "$tool" = taskyard ]; then
    "${pin[@]}" "$bench" "$size" "$workers" "${set[@]}" | awk '{print $2}'
  elif [ "$tool" = before ]; then
    "${pin[@]}" "$BEFORE" "$size" "$workers" "${set[@]}" | awk '{print $2}'
  else
    "${pin[@]}" python3 bench/pillow_resize.py "$size" "$workers" "${set[@]}" | awk '{print $2}'
  fi
}
max() { python3 -c "print(max(float('$1' or 0), float('$2')))"; }
for round in $(seq 1 "$ROUNDS"); do
  for name in "${order[@]}"; do
    read -r size workers set <<<"${cases[$name]}"
    [ "$set" = progressive ] && [ ${#progressive[@]} -eq 0 ] && continue
    t=$(run taskyard "$size" "$workers" "$set")
    p=$(run pillow "$size" "$workers" "$set")
    best_t[$name]=$(max "${best_t[$name]:-}" "$t")
    best_p[$name]=$(max "${best_p[$name]:-}" "$p")
    if [ -n "${BEFORE:-}" ]; then
      b=$(run before "$size" "$workers" "$set")
      best_b[$name]=$(max "${best_b[$name]:-}" "$b")
      echo "round $round, $name: taskyard $t MP/s, Pillow $p MP/s, before $b MP/s"
    else
      echo "round $round, $name: taskyard $t MP/s, Pillow $p MP/s"
    fi
  done
done
ratio() { python3 -c "print($1 / $2)"; }
if [ -n "${BEFORE:-}" ]; then
  printf '\n%-30s %10s %10s %10s %8s %8s\n' "source MP/s (best)" "before" "Taskyard" "Pillow 13" "before" "ratio"
else
  printf '\n%-30s %14s %14s %8s\n' "source MP/s (best)" "Taskyard" "Pillow 13" "ratio"
fi
for name in "${order[@]}"; do
  [ -n "${best_t[$name]:-}" ] || continue
  if [ -n "${BEFORE:-}" ]; then
    printf '%-30s %10.1f %10.1f %10.1f %7.2fx %7.2fx\n' "$name" "${best_b[$name]}" "${best_t[$name]}" \
      "${best_p[$name]}" "$(ratio "${best_b[$name]}" "${best_p[$name]}")" "$(ratio "${best_t[$name]}" "${best_p[$name]}")"
  else
    printf '%-30s %14.1f %14.1f %7.2fx\n' "$name" "${best_t[$name]}" "${best_p[$name]}" \
      "$(ratio "${best_t[$name]}" "${best_p[$name]}")"
  fi
done

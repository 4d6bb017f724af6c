"""Pillow's thumbnail() on the same photos (draft() DCT scaling + LANCZOS, JPEG q85 into
memory), single-threaded, in source megapixels per second: `pillow <best> <median>`."""
import io
import sys
import time

from PIL import Image

side, rounds, photos = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
rates = []
for _ in range(rounds):
    megapixels = 0.0
    started = time.perf_counter()
    for path in photos:
        with open(path, "rb") as f:
            data = f.read()
        img = Image.open(io.BytesIO(data))
        megapixels += img.width * img.height / 1e6
        img.thumbnail((side, side), Image.LANCZOS)
        out = io.BytesIO()
        img.convert("RGB").save(out, "JPEG", quality=85)
    rates.append(megapixels / (time.perf_counter() - started))
rates.sort(reverse=True)
print(f"pillow {rates[0]:.1f} {rates[len(rates) // 2]:.1f}")

"""Pillow on the same photos as resize_bench: `thumbnail()` (draft() DCT scaling + LANCZOS)
for SIZE `256`, draft() + resize(LANCZOS) for an exact `100x100`, JPEG q85 into memory.

    pillow_resize.py SIZE PROCESSES PHOTO...

Each of PROCESSES forked processes handles every photo once, all released together (as
many processes as cores is how Pillow uses them). Prints `pillow <source MP/s>`."""
import io
import multiprocessing
import sys
import time

from PIL import Image

size, processes, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
photos = [open(p, "rb").read() for p in paths]  # read before timing, as resize_bench does
megapixels = sum(Image.open(io.BytesIO(b)).width * Image.open(io.BytesIO(b)).height for b in photos) / 1e6


def one(data):
    img = Image.open(io.BytesIO(data))
    if "x" in size:
        w, h = (int(n) for n in size.split("x"))
        img.draft("RGB", (2 * w, 2 * h))  # keeps at least twice the target, as Taskyard does
        img = img.resize((w, h), Image.LANCZOS)
    else:
        side = int(size)
        img.thumbnail((side, side), Image.LANCZOS)
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=85)


def worker(barrier):
    barrier.wait()
    for data in photos:
        one(data)


barrier = multiprocessing.get_context("fork").Barrier(processes + 1)
procs = [multiprocessing.get_context("fork").Process(target=worker, args=(barrier,)) for _ in range(processes)]
for p in procs:
    p.start()
barrier.wait()
started = time.perf_counter()
for p in procs:
    p.join()
print(f"pillow {processes * megapixels / (time.perf_counter() - started):.1f}")

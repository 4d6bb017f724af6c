"""What a user would write instead of an ImageTask: download a page, find its images,
download each, thumbnail it with Pillow (draft() + LANCZOS) and save it as JPEG q85.

    pillow_gallery.py PAGE_URL SIDE PROCESSES OUTDIR

PROCESSES > 1 spreads the images over a pool of forked processes."""
import html.parser
import io
import multiprocessing
import os
import sys
import urllib.parse
import urllib.request

from PIL import Image

page, side, processes, outdir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]


class Images(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs = []

    def handle_starttag(self, tag, attrs):
        src = dict(attrs).get("src")
        if tag == "img" and src:
            self.srcs.append(urllib.parse.urljoin(page, src))


def thumbnail(i_url):
    i, url = i_url
    with urllib.request.urlopen(url) as r:
        data = r.read()
    img = Image.open(io.BytesIO(data))
    img.thumbnail((side, side), Image.LANCZOS)
    img.convert("RGB").save(os.path.join(outdir, f"{i}.jpg"), "JPEG", quality=85)


with urllib.request.urlopen(page) as r:
    parser = Images()
    parser.feed(r.read().decode())
jobs = list(enumerate(parser.srcs))
if processes > 1:
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        pool.map(thumbnail, jobs, chunksize=1)
else:
    for job in jobs:
        thumbnail(job)

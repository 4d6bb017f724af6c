"""Prints, as shell assignments, what one final stage of the Dockerfile puts in its image:
the binary it copies from the build stage, where, the user, and the entrypoint. The offline
image build follows it, so the local cluster runs the images the Dockerfile describes."""
import json
import shlex
import sys

dockerfile, target = sys.argv[1], sys.argv[2]
stage = None
found = {}
for raw in open(dockerfile, encoding="utf-8"):
    line = raw.strip()
    if not line or line.startswith("#"):
        continue
    word, _, rest = line.partition(" ")
    word = word.upper()
    if word == "FROM":
        parts = rest.split()
        stage = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
        continue
    if stage != target:
        continue
    if word == "COPY" and rest.startswith("--from=build "):
        src, dest = rest[len("--from=build "):].split()
        found["SRC_NAME"] = src.rsplit("/", 1)[-1]
        found["DEST"] = dest
    elif word == "USER":
        found["IMAGE_USER"] = rest.split(":")[0]
    elif word == "ENTRYPOINT":
        found["ENTRYPOINT"] = json.loads(rest)[0]
missing = {"SRC_NAME", "DEST", "IMAGE_USER", "ENTRYPOINT"} - found.keys()
if missing:
    sys.exit(f"dockerfile_stage: stage {target!r} of {dockerfile} lacks {sorted(missing)}")
for k, v in found.items():
    print(f"{k}={shlex.quote(v)}")

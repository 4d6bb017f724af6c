"""Adapts containerd's default config (stdin) for the local cluster (stdout)."""
import argparse
import re
import sys

p = argparse.ArgumentParser()
for flag in ("--root", "--state", "--socket", "--cni-conf-dir", "--sandbox-image"):
    p.add_argument(flag, required=True)
a = p.parse_args()

config = sys.stdin.read()


def setting(text, key, value, count=1):
    """Replaces the first `count` lines `key = ...`, failing loudly if there are none."""
    pattern = re.compile(rf"^(\s*){re.escape(key)} = .*$", re.M)
    new, n = pattern.subn(lambda m: f"{m.group(1)}{key} = {value}", text, count=count)
    if n == 0:
        sys.exit(f"containerd_config: no '{key}' in containerd's default config")
    return new


config = setting(config, "root", f'"{a.root}"')
config = setting(config, "state", f'"{a.state}"')
# The first `address` under [grpc] is the socket; the debug/metrics ones stay empty.
config = re.sub(r'(\[grpc\]\n(?:.*\n)*?\s*address = )".*"', rf'\1"{a.socket}"', config, count=1)
# The machine lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj without this.
config = setting(config, "restrict_oom_score_adj", "true")
config = setting(config, "sandbox_image", f'"{a.sandbox_image}"')
config = setting(config, "bin_dir", '"/usr/lib/cni"')
config = setting(config, "conf_dir", f'"{a.cni_conf_dir}"')
sys.stdout.write(config)

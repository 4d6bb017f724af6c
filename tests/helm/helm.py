"""Helm for the tests and the local cluster, through Helm's own Go SDK (helm-python-sdk),
since no helm binary can be installed here. The same operations as the helm CLI:

  helm.py lint    CHART [--values JSON]
  helm.py render  CHART [--values JSON] [--namespace NS]       (prints the manifests)
  helm.py install CHART RELEASE --namespace NS [--values JSON]   (waits for readiness)
  helm.py upgrade CHART RELEASE --namespace NS [--values JSON]
  helm.py apply   CHART RELEASE --namespace NS [--values JSON]   (upgrade, or install if absent)
  helm.py uninstall RELEASE --namespace NS
"""
import argparse
import json
import os
import sys

import helm_python as helm


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["lint", "render", "install", "upgrade", "apply", "uninstall"])
    p.add_argument("args", nargs="+")
    p.add_argument("--namespace", default="default")
    p.add_argument("--values", default="{}", help="values as JSON")
    p.add_argument("--timeout", type=int, default=180)
    a = p.parse_args()
    values = json.loads(a.values)

    if a.action == "lint":
        report = helm.lint(a.args[0], values, strict=True, namespace=a.namespace)
        problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + report.get("errors", [])
        print(json.dumps(report, indent=2))
        return 1 if problems else 0

    config = helm.Config(kubeconfig_path=os.environ.get("KUBECONFIG"), namespace=a.namespace)
    if a.action == "render":
        chart = helm.Chart.load(a.args[0])
        rendered = chart.render(values, name="taskyard", namespace=a.namespace, is_install=True)
        for name, text in sorted(rendered.items()):
            if text.strip() and not name.endswith("NOTES.txt"):
                print(f"---\n# Source: {name}\n{text}")
        return 0
    if a.action == "apply":
        try:
            status = config.status(a.args[1]).get("status", "")
            a.action = "upgrade"
            # An upgrade interrupted half-way leaves the release locked; go back to the last
            # good revision first, as `helm rollback` would.
            if status.startswith("pending-"):
                config.rollback(a.args[1], wait="watcher", timeout=a.timeout)
        except helm.HelmNotFoundError:
            a.action = "install"
    if a.action == "install":
        release = config.install(a.args[0], a.args[1], values, namespace=a.namespace, create_namespace=True,
                                 wait="watcher", timeout=a.timeout)
    elif a.action == "upgrade":
        release = config.upgrade(a.args[0], a.args[1], values, namespace=a.namespace, wait="watcher",
                                 timeout=a.timeout)
    else:
        release = config.uninstall(a.args[0], wait="watcher", timeout=a.timeout, ignore_not_found=True)
    info = release.get("info") if isinstance(release, dict) else None
    print(json.dumps({"action": a.action, "info": info if isinstance(info, (str, dict)) else str(release)[:200]}, default=str))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except helm.HelmError as e:
        print(f"helm {sys.argv[1] if len(sys.argv) > 1 else ''}: {e}", file=sys.stderr)
        sys.exit(1)

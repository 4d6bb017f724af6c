#!/usr/bin/env python3
"""Throughput of small tasks on the local cluster, batched beside maxTasksPerJob: 1.

For each workload (HashTasks of distinct store objects of each size, ImageTasks and
TextTasks of small pages on a loopback web server) and each way of creating the tasks
(`kubectl apply` of a few large files, or 16 concurrent API clients), it runs the same N
tasks with the chart's maxTasksPerJob and with maxTasksPerJob: 1 (one Job per task, the
behaviour before batches), and prints side by side: tasks/s from the first create to the
last completion, p50/p95/max of creation -> completion, runner Jobs used, and the
operator's RSS and reconcile p99 (from its metrics histogram).

Every run also checks what it measured: each task Succeeded, and each HashTask's md5 is
the md5 of the bytes written for it. Each run also prints where the tasks' time went, the
API server's requests, and the machine's CPU time by process.
"""

import argparse
import concurrent.futures
import hashlib
import http.server
import json
import os
import pathlib
import shutil
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from operator_metrics import (ENV_FILE, OPERATOR_NS, ROOT, kubectl, leader, operator_pid,  # noqa: E402
                              operator_rss_mib, p99_from, read_env, reconcile_histogram)

RGW_STATE = "/var/lib/taskyard-rgw"  # tests/store/rgw-up.sh's, for its processes' CPU time


def load_env(store_env):
    """The local cluster's env; with `store_env` (tests/store/rgw-up.sh --for-cluster's env
    file), that store instead of the cluster's s3s-fs."""
    env = read_env(ENV_FILE)
    if store_env:
        store = read_env(store_env)
        env.update({k: store[k] for k in ("TASKYARD_S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
        env["TASKYARD_S3_ENDPOINT"] = store["TASKYARD_CLUSTER_S3_ENDPOINT"]
        env["TASKYARD_S3_SECRET"] = store["TASKYARD_CLUSTER_S3_SECRET"]
        env.pop("TASKYARD_S3_ROOT", None)
    os.environ.update(env)
    return env


def helm_apply(env, per_job, max_running):
    values = {
        "store": {"endpoint": env["TASKYARD_S3_ENDPOINT"], "bucket": env["TASKYARD_S3_BUCKET"],
                  "forcePathStyle": True, "credentialsSecret": env["TASKYARD_S3_SECRET"]},
        "image": env["TASKYARD_OPERATOR_IMAGE"],
        "imagePullPolicy": "Never",
        "runner": {"image": env["TASKYARD_RUNNER_IMAGE"], "allowedNetworks": [env["TASKYARD_POD_CIDR"]]},
        "maxTasksPerJob": per_job,
        "maxRunningJobs": max_running,
    }
    subprocess.run(["python3", str(ROOT / "tests/helm/helm.py"), "apply", str(ROOT / "charts/taskyard"), "taskyard",
                    "--namespace", OPERATOR_NS, "--values", json.dumps(values)], check=True, capture_output=True)
    kubectl("-n", OPERATOR_NS, "rollout", "status", "deployment/taskyard-operator", "--timeout=120s")
    # The new replica leads once it holds the lease.
    deadline = time.time() + 60
    while time.time() < deadline:
        pod = leader()
        if pod and kubectl("-n", OPERATOR_NS, "get", "pod", pod, "--ignore-not-found", "-o", "name").strip():
            return
        time.sleep(1)


def process_seconds(pid):
    """A process's CPU seconds so far (utime + stime)."""
    stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    after_name = stat[stat.rindex(")") + 2:].split()
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(operator):
    """CPU seconds used so far: the whole machine's (busy time of /proc/stat), each local
    cluster process's (etcd, the API server, the S3 server, ...), the operator's (PID
    `operator`, looked up once a run: that takes kubectl and ctr calls) and this benchmark's
    with its children (kubectl apply, curl, ...); the rest is mostly the runner Pods."""
    fields = pathlib.Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    idle = int(fields[3]) + int(fields[4])
    usage = {"machine": (sum(int(f) for f in fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")}
    for pid_file in [*(ENV_FILE.parent / "pids").glob("*.pid"), *pathlib.Path(RGW_STATE, "pids").glob("*.pid")]:
        try:
            usage[pid_file.stem] = process_seconds(pid_file.read_text().strip())
        except (OSError, ValueError):  # not running
            pass
    try:
        usage["operator"] = process_seconds(operator)
    except OSError:  # it restarted during the run: its CPU is in "the rest"
        pass
    own = os.times()
    usage["this bench"] = own.user + own.system + own.children_user + own.children_system
    return usage


def print_cpu(before, after, elapsed):
    used = {k: after[k] - before.get(k, 0) for k in after}
    machine = used.pop("machine")
    parts = sorted(used.items(), key=lambda kv: -kv[1])
    rest = machine - sum(v for _, v in parts)
    print(f"    CPU s ({elapsed:.0f} s x {os.cpu_count()} cores = {elapsed * os.cpu_count():.0f}): machine {machine:.0f}; "
          + ", ".join(f"{k} {v:.1f}" for k, v in parts if v >= 0.1)
          + f"; Pods and the rest {rest:.1f}", file=sys.stderr, flush=True)


def png(seed, side=24):
    """A small distinct PNG (pure Python: no imaging library needed)."""
    rows = b"".join(b"\x00" + bytes(v for x in range(side)
                                     for v in ((x * 7 + y * 3 + seed) % 256, (seed * 13) % 256, (x + seed) % 256))
                    for y in range(side))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class Site:
    """Small pages and images on the cluster's bridge address, which runner Pods reach."""

    def __init__(self, host, n):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="taskyard-tp-site-"))
        for i in range(n):
            (self.dir / f"i{i}.png").write_bytes(png(i))
            (self.dir / f"p{i}.html").write_text(
                f"<html><head><title>Page {i}</title></head><body><h1>Page {i}</h1>"
                f"<p>{'Some readable text of page %d. ' % i * 20}</p><img src=\"i{i}.png\"></body></html>")
        handler = lambda *a, **k: QuietHandler(*a, directory=str(self.dir), **k)  # noqa: E731
        self.server = SiteServer((host, 0), handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        shutil.rmtree(self.dir, ignore_errors=True)


class SiteServer(http.server.ThreadingHTTPServer):
    # The default listen backlog (5) overflows when 40 runners fetch at once: the kernel
    # drops their SYNs and they retry after 1, 3, 7, 15, 31 s, so tasks took 45-55 s.
    request_queue_size = 256


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def manifests(kind, ns, n, size, site):
    docs = []
    for i in range(n):
        meta = {"name": f"t{i:05d}", "namespace": ns}
        if kind == "HashTask":
            spec = {"source": {"object": f"f{i}.bin"}}
        elif kind == "ImageTask":
            spec = {"source": {"page": f"{site.url}/p{i}.html"}, "resize": {"width": 16, "height": 16}}
        else:
            spec = {"source": {"page": f"{site.url}/p{i}.html"}}
        docs.append({"apiVersion": "taskyard.dev/v1alpha1", "kind": kind, "metadata": meta, "spec": spec})
    return docs


def write_objects(env, ns, n, size):
    """The HashTasks' inputs, uploaded through the S3 API as the gateway and users upload
    (a file put in s3s-fs's directory behind its back has no stored ETag, and s3s-fs then
    reads the whole file again for every HEAD and GET); returns their md5s."""
    # s3s-fs keeps objects as files: the run's are removed afterwards (RGW's stay).
    area = env.get("TASKYARD_S3_ROOT") and pathlib.Path(env["TASKYARD_S3_ROOT"]) / env["TASKYARD_S3_BUCKET"] / "uploads" / ns
    staging = pathlib.Path(tempfile.mkdtemp(prefix="taskyard-tp-objects-"))
    digests = []
    for i in range(n):
        data = os.urandom(size)
        (staging / f"f{i}.bin").write_bytes(data)
        digests.append(hashlib.md5(data).hexdigest())
    base = f"{env['TASKYARD_S3_ENDPOINT']}/{env['TASKYARD_S3_BUCKET']}/uploads/{ns}"

    def upload(i):
        subprocess.run(["curl", "-sf", "-o", "/dev/null", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                        "--aws-sigv4", "aws:amz:us-east-1:s3",
                        "--user", f"{env['AWS_ACCESS_KEY_ID']}:{env['AWS_SECRET_ACCESS_KEY']}",
                        "-T", str(staging / f"f{i}.bin"), f"{base}/f{i}.bin"], check=True, timeout=60)
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(upload, range(n)))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return area, digests


def create_by_apply(docs, per_file=250):
    for start in range(0, len(docs), per_file):
        batch = {"apiVersion": "v1", "kind": "List", "items": docs[start:start + per_file]}
        kubectl("apply", "-f", "-", stdin=json.dumps(batch))


def api_connection(kubeconfig, timeout=30):
    """A function that opens an HTTPS connection to the API server as the kubeconfig's user."""
    import http.client
    import urllib.parse
    cfg = json.loads(kubectl("--kubeconfig", kubeconfig, "config", "view", "--raw", "-o", "json"))
    cluster = cfg["clusters"][0]["cluster"]
    user = cfg["users"][0]["user"]
    ctx = ssl.create_default_context(cafile=cluster["certificate-authority"])
    ctx.load_cert_chain(user["client-certificate"], user["client-key"])
    host = urllib.parse.urlparse(cluster["server"])
    return lambda: http.client.HTTPSConnection(host.hostname, host.port, context=ctx, timeout=timeout)


def create_by_clients(docs, clients, kubeconfig):
    """`clients` concurrent API clients, each creating its share of the tasks one by one."""
    connect = api_connection(kubeconfig)

    def run(share):
        conn = connect()
        for doc in share:
            path = f"/apis/taskyard.dev/v1alpha1/namespaces/{doc['metadata']['namespace']}/{doc['kind'].lower()}s"
            conn.request("POST", path, body=json.dumps(doc), headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 201:
                raise RuntimeError(f"create answered {resp.status}: {body[:300]}")
        conn.close()

    shares = [docs[i::clients] for i in range(clients)]
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, shares))


def ts(value):
    from datetime import datetime
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def wait_all(kind, ns, n, timeout, kubeconfig):
    """Watches the tasks until all n have ended; returns them. A watch, not repeated lists: a
    list of 1,000 tasks every 3 s cost the API server and kubectl several CPU seconds a run,
    taken from the tasks measured. Completion times come from the tasks' status."""
    connect = api_connection(kubeconfig, timeout=90)
    path = f"/apis/taskyard.dev/v1alpha1/namespaces/{ns}/{kind.lower()}s"
    deadline = time.time() + timeout
    items, ended, version = {}, set(), None

    def see(task):
        name = task["metadata"]["name"]
        items[name] = task
        if task.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            ended.add(name)

    conn = connect()
    while len(ended) < n:
        if time.time() > deadline:
            raise RuntimeError(f"only {len(ended)} of {n} {kind}s finished within {timeout} s")
        if version is None:  # (again) from a list
            conn.request("GET", path)
            listing = json.loads(conn.getresponse().read())
            for task in listing["items"]:
                see(task)
            version = listing["metadata"]["resourceVersion"]
            continue
        conn.request("GET", f"{path}?watch=1&resourceVersion={version}&timeoutSeconds=60")
        response = conn.getresponse()
        if response.status != 200:  # list again
            version = None
            response.read()
            continue
        for line in response:
            event = json.loads(line)
            if event["type"] == "ERROR":  # e.g. 410 Gone: the version is too old
                version = None
                break
            see(event["object"])
            version = event["object"]["metadata"]["resourceVersion"]
            if len(ended) >= n:
                break
        response.close()
        conn.close()
        conn = connect()
    conn.close()
    return list(items.values())


def api_requests():
    """The API server's request counts by verb and resource."""
    counts = {}
    for line in kubectl("get", "--raw", "/metrics").splitlines():
        if line.startswith("apiserver_request_total{"):
            labels = dict(part.split("=", 1) for part in line[line.index("{") + 1:line.index("}")].split(","))
            key = (labels["verb"].strip('"'), labels["resource"].strip('"'), labels.get("subresource", '""').strip('"'),
                   labels["code"].strip('"'))
            counts[key] = counts.get(key, 0) + float(line.rsplit(" ", 1)[1])
    return counts


def print_requests(before, after):
    diff = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) >= 20}
    top = sorted(diff.items(), key=lambda kv: -kv[1])[:12]
    print("    API requests: " + ", ".join(f"{verb} {res}{'/' + sub if sub else ''} {code}: {n:.0f}"
                                         for (verb, res, sub, code), n in top), file=sys.stderr, flush=True)


def print_breakdown(items):
    """Where a task's time went (medians and p95s, s): waiting for its Job, its Job's Pod
    starting, and the runner's work plus the operator noticing and recording it."""
    jobs = json.loads(kubectl("-n", OPERATOR_NS, "get", "jobs", "-o", "json"))["items"]
    pods = json.loads(kubectl("-n", OPERATOR_NS, "get", "pods", "-l", "job-name", "-o", "json"))["items"]
    job_created = {j["metadata"]["name"]: ts(j["metadata"]["creationTimestamp"]) for j in jobs}
    pod_started = {}
    for pod in pods:
        for c in pod.get("status", {}).get("containerStatuses", []):
            state = c.get("state", {})
            started = (state.get("running") or state.get("terminated") or {}).get("startedAt")
            if started:
                job = pod["metadata"]["labels"]["job-name"]
                pod_started[job] = min(pod_started.get(job, float("inf")), ts(started))
    parts = {"to Job": [], "Pod start": [], "run+record": []}
    for t in items:
        job = t["status"].get("jobName")
        if job not in job_created or job not in pod_started:
            continue
        created = ts(t["metadata"]["creationTimestamp"])
        parts["to Job"].append(job_created[job] - created)
        parts["Pod start"].append(pod_started[job] - job_created[job])
        parts["run+record"].append(ts(t["status"]["completionTime"]) - pod_started[job])
    print("    breakdown (p50/p95 s): " + ", ".join(
        f"{k} {percentile(v, 0.5):.1f}/{percentile(v, 0.95):.1f}" for k, v in parts.items() if v)
        + f" ({len(parts['to Job'])} tasks)", file=sys.stderr, flush=True)


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run_once(env, kind, n, size, mode, per_job, site, run_id):
    ns = f"tp-{os.getpid()}-{run_id}"
    kubectl("create", "namespace", ns)
    area = None
    try:
        digests = None
        if kind == "HashTask":
            area, digests = write_objects(env, ns, n, size)
        docs = manifests(kind, ns, n, size, site)
        pid = operator_pid()
        before = reconcile_histogram()
        requests_before = api_requests()
        cpu_before = cpu_seconds(pid)
        started = time.time()
        if mode == "apply":
            create_by_apply(docs)
        else:
            create_by_clients(docs, int(mode), env["KUBECONFIG"])
        created = time.time() - started
        items = wait_all(kind, ns, n, timeout=max(600, n * 2), kubeconfig=env["KUBECONFIG"])
        cpu_after = cpu_seconds(pid)
        elapsed_at_cpu = time.time() - started
        rss = operator_rss_mib(pid)
        p99 = p99_from(before, reconcile_histogram())
        failed = [t["metadata"]["name"] for t in items if t["status"]["phase"] != "Succeeded"]
        if failed:
            raise RuntimeError(f"{len(failed)} tasks did not succeed, e.g. {failed[:3]}: "
                               f"{items[0]['status'].get('conditions')}")
        if digests:
            for t in items:
                i = int(t["metadata"]["name"][1:])
                if t["status"]["digests"]["md5"] != digests[i]:
                    raise RuntimeError(f"{t['metadata']['name']}: md5 {t['status']['digests']['md5']} != {digests[i]}")
        ends = [ts(t["status"]["completionTime"]) for t in items]
        latencies = [ts(t["status"]["completionTime"]) - ts(t["metadata"]["creationTimestamp"]) for t in items]
        jobs = len({t["status"].get("jobName") for t in items})
        print(f"    created in {created:.1f} s", file=sys.stderr, flush=True)
        print_breakdown(items)
        print_requests(requests_before, api_requests())
        elapsed = max(ends) - started
        print_cpu(cpu_before, cpu_after, elapsed_at_cpu)
        return {"tasks/s": n / max(elapsed, 1e-9), "p50": percentile(latencies, 0.5),
                "p95": percentile(latencies, 0.95), "max": max(latencies), "jobs": jobs,
                "rss": rss, "p99ms": p99, "create_s": created}
    finally:
        # Waited for: deleting 1,000 tasks would otherwise load the next run.
        subprocess.run(["kubectl", "delete", "namespace", ns, "--timeout=300s"], capture_output=True)
        if area:
            shutil.rmtree(area, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=int(os.environ.get("N", 1000)))
    parser.add_argument("--sizes", default=os.environ.get("SIZES", "65536,1048576"))
    parser.add_argument("--kinds", default=os.environ.get("KINDS", "HashTask,ImageTask,TextTask"))
    parser.add_argument("--modes", default=os.environ.get("MODES", "apply,16"),
                        help="apply (kubectl apply of files of 250) and/or a number of concurrent API clients")
    parser.add_argument("--per-job", type=int, default=int(os.environ.get("PER_JOB", 50)),
                        help="maxTasksPerJob of the batched runs (the chart's default)")
    parser.add_argument("--max-running", type=int, default=int(os.environ.get("MAX_RUNNING", 10)))
    parser.add_argument("--no-baseline", action="store_true", help="only the batched runs (a quick look)")
    parser.add_argument("--store-env", default=os.environ.get("STORE_ENV"),
                        help="the env file of tests/store/rgw-up.sh --for-cluster: measure against that store")
    args = parser.parse_args()
    env = load_env(args.store_env)
    site = Site(env["TASKYARD_HOST_IP"], args.tasks)
    rows = []
    run_id = 0
    try:
        for kind in args.kinds.split(","):
            sizes = [int(s) for s in args.sizes.split(",")] if kind == "HashTask" else [0]
            for size in sizes:
                for mode in args.modes.split(","):
                    results = {}
                    for per_job in (args.per_job,) if args.no_baseline else (args.per_job, 1):
                        helm_apply(env, per_job, args.max_running)
                        run_id += 1
                        label = f"{kind} {size // 1024} KiB" if size else f"{kind} small page"
                        print(f"... {label}, {'kubectl apply' if mode == 'apply' else mode + ' clients'}, "
                              f"maxTasksPerJob {per_job}", file=sys.stderr, flush=True)
                        results[per_job] = run_once(env, kind, args.tasks, size, mode, per_job, site, run_id)
                    rows.append((label, mode, results[args.per_job], results.get(1)))
    finally:
        site.close()
        helm_apply(env, args.per_job, args.max_running)
    print(f"\n{args.tasks} tasks per run; batched = maxTasksPerJob {args.per_job}, baseline = maxTasksPerJob 1; "
          f"maxRunningJobs {args.max_running}")
    head = (f"{'workload':<22} {'created by':<14} {'run':<9} {'tasks/s':>8} {'p50 s':>6} {'p95 s':>6} {'max s':>6} "
            f"{'Jobs':>5} {'RSS MiB':>8} {'rec p99 ms':>10}")
    print(head)
    print("-" * len(head))
    for label, mode, batched, baseline in rows:
        how = "kubectl apply" if mode == "apply" else f"{mode} clients"
        for name, r in (("batched", batched), ("baseline", baseline)):
            if r is None:
                continue
            print(f"{label:<22} {how:<14} {name:<9} {r['tasks/s']:>8.1f} {r['p50']:>6.0f} {r['p95']:>6.0f} "
                  f"{r['max']:>6.0f} {r['jobs']:>5} {r['rss']:>8.1f} {r['p99ms']:>10.0f}")
        if baseline:
            print(f"{'':<22} {'':<14} {'ratio':<9} {batched['tasks/s'] / baseline['tasks/s']:>7.1f}x")


if __name__ == "__main__":
    main()

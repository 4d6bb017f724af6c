#!/usr/bin/env python3
"""The API server's own ceiling for small tasks on the local cluster: how fast it takes the
writes every task costs, with no operator, no Job, no Pod and no store.

With the operator scaled to zero, 16 concurrent API clients (as bench/throughput.py's
"16 clients") run, for N HashTasks each:
  create      the task (POST), nothing else;
  lifecycle   the task (POST), then what the operator writes for a task of a batch at
              the least: status Running (PATCH), event JobCreated (POST), status Succeeded
              (PATCH), event Succeeded (POST).
It prints tasks/s for each. A batched task also waits for its runner Job's Pod and costs
the operator's reads and reconciles, so "lifecycle" is an upper bound on end-to-end
throughput on this machine, whatever the operator does. The operator is scaled back
afterwards.

    N=1000 python3 bench/api_floor.py
"""

import concurrent.futures
import datetime
import json
import os
import sys
import time
import uuid

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput import OPERATOR_NS, api_connection, kubectl, load_env  # noqa: E402

CLIENTS = 16


def micro_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event(ns, task, reason, action, note):
    return {
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": f"{task['metadata']['name']}.{uuid.uuid4().hex[:12]}", "namespace": ns},
        "eventTime": micro_now(), "reportingController": "taskyard.dev/bench",
        "reportingInstance": "api-floor", "action": action, "reason": reason, "type": "Normal", "note": note,
        "regarding": {"apiVersion": "taskyard.dev/v1alpha1", "kind": "HashTask", "namespace": ns,
                      "name": task["metadata"]["name"], "uid": task["metadata"]["uid"]},
    }


def run(ns, n, lifecycle, connect):
    base = f"/apis/taskyard.dev/v1alpha1/namespaces/{ns}/hashtasks"

    def call(conn, method, path, body, content_type="application/json", expect=(200, 201)):
        conn.request(method, path, body=json.dumps(body), headers={"Content-Type": content_type})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status not in expect:
            raise RuntimeError(f"{method} {path} answered {resp.status}: {data[:300]}")
        return json.loads(data)

    def client(names):
        conn = connect()
        for name in names:
            doc = {"apiVersion": "taskyard.dev/v1alpha1", "kind": "HashTask",
                   "metadata": {"name": name, "namespace": ns}, "spec": {"source": {"object": f"{name}.bin"}}}
            task = call(conn, "POST", base, doc)
            if not lifecycle:
                continue
            merge = "application/merge-patch+json"
            call(conn, "PATCH", f"{base}/{name}/status",
                 {"status": {"phase": "Running", "observedGeneration": 1, "jobName": "taskyard-batch-bench"}}, merge)
            call(conn, "POST", f"/apis/events.k8s.io/v1/namespaces/{ns}/events",
                 event(ns, task, "JobCreated", "CreateJob", "created runner Job taskyard-batch-bench"))
            call(conn, "PATCH", f"{base}/{name}/status",
                 {"status": {"phase": "Succeeded", "digests": {"md5": "0" * 32}, "size": 65536}}, merge)
            call(conn, "POST", f"/apis/events.k8s.io/v1/namespaces/{ns}/events",
                 event(ns, task, "Succeeded", "Finish", "Completed: md5 0, 65536 bytes"))
        conn.close()

    names = [f"t{i:05d}" for i in range(n)]
    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, [names[i::CLIENTS] for i in range(CLIENTS)]))
    return time.time() - started


def main():
    env = load_env()
    n = int(os.environ.get("N", 1000))
    replicas = kubectl("-n", OPERATOR_NS, "get", "deploy", "taskyard-operator", "-o", "jsonpath={.spec.replicas}")
    kubectl("-n", OPERATOR_NS, "scale", "deploy", "taskyard-operator", "--replicas=0")
    kubectl("-n", OPERATOR_NS, "wait", "--for=delete", "pod", "-l", "app.kubernetes.io/component=operator",
            "--timeout=120s")
    connect = api_connection(env["KUBECONFIG"])
    rows = []
    try:
        for what, lifecycle in (("create", False), ("lifecycle", True)):
            ns = f"floor-{os.getpid()}-{what}"
            kubectl("create", "namespace", ns)
            try:
                took = run(ns, n, lifecycle, connect)
                rows.append((what, took))
                print(f"... {what}: {n} tasks in {took:.1f} s", file=sys.stderr, flush=True)
            finally:
                kubectl("delete", "namespace", ns, "--timeout=300s")
    finally:
        kubectl("-n", OPERATOR_NS, "scale", "deploy", "taskyard-operator", f"--replicas={replicas or 1}")
    print(f"\n{n} HashTasks, {CLIENTS} API clients, no operator")
    print(f"{'writes per task':<44} {'tasks/s':>8} {'writes/s':>9}")
    for what, took in rows:
        label = "create (1)" if what == "create" else "create, 2 status PATCHes, 2 events (5)"
        writes = 1 if what == "create" else 5
        print(f"{label:<44} {n / took:>8.1f} {n * writes / took:>9.0f}")


if __name__ == "__main__":
    main()

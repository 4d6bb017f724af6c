//! End to end on the local cluster: a task's life after its first run. Re-runs on a spec
//! change, timeouts, finished Jobs deleted after jobTtlSeconds, and the metrics endpoint.

use std::time::Duration;

use serde_json::json;
use taskyard_tests::e2e::{
    Setup, WAIT, file, hash_task, jobs_of, namespace, runner_pods, setup_with, wait_failed, wait_succeeded,
};

/// This binary runs the operator with a short Job time to live.
const JOB_TTL_SECONDS: u64 = 8;

fn setup() -> &'static Setup {
    setup_with(json!({"jobTtlSeconds": JOB_TTL_SECONDS}))
}

fn uid_of(s: &Setup, ns: &str, kind: &str, name: &str) -> String {
    s.kubectl.get_json(&[kind, name, "-n", ns])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_spec_edit_runs_the_task_again_for_the_new_generation() {
    let s = setup();
    let ns = &namespace(s, "rerun");
    file("rerun.bin", 77_777, 21);
    s.kubectl
        .apply(&hash_task(ns, "edited", &s.server.url("/files/rerun.bin")));
    wait_succeeded(s, ns, &["hashtask/edited"]);
    let first = s.kubectl.get_json(&["hashtask", "edited", "-n", ns]);
    assert_eq!(first["status"]["observedGeneration"], 1);
    assert!(first["status"]["digests"]["sha256"].is_null());

    s.kubectl.run(&[
        "patch",
        "hashtask",
        "edited",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"algorithms":["md5","sha256"]}}"#,
    ]);
    let second = s.kubectl.eventually("generation 2 to finish", WAIT, || {
        let t = s.kubectl.get_json(&["hashtask", "edited", "-n", ns]);
        (t["status"]["observedGeneration"] == 2 && t["status"]["phase"] == "Succeeded").then_some(t)
    });
    assert_eq!(second["metadata"]["generation"], 2);
    assert!(
        second["status"]["digests"]["sha256"]
            .as_str()
            .is_some_and(|d| d.len() == 64),
        "{}",
        second["status"]
    );
    assert_eq!(second["status"]["digests"]["md5"], first["status"]["digests"]["md5"]);
    assert_ne!(second["status"]["jobName"], first["status"]["jobName"]);
    assert_eq!(second["status"]["conditions"][0]["observedGeneration"], 2);
}

#[test]
fn editing_a_running_task_replaces_its_job() {
    let s = setup();
    let ns = &namespace(s, "replace");
    file("replace-slow.bin", 100_000, 22);
    file("replace-fast.bin", 100_000, 23);
    s.kubectl.apply(&hash_task(
        ns,
        "moving",
        &s.server.url("/slow/replace-slow.bin?ms=60000"),
    ));
    let uid = uid_of(s, ns, "hashtask", "moving");
    let old_job = s.kubectl.eventually("the first Job", WAIT, || {
        jobs_of(s, &uid)
            .first()
            .map(|j| j["metadata"]["name"].as_str().unwrap().to_string())
    });
    s.kubectl
        .apply(&hash_task(ns, "moving", &s.server.url("/files/replace-fast.bin")));
    s.kubectl.eventually("generation 2 to finish", WAIT, || {
        let t = s.kubectl.get_json(&["hashtask", "moving", "-n", ns]);
        (t["status"]["observedGeneration"] == 2 && t["status"]["phase"] == "Succeeded").then_some(())
    });
    // The first generation's Job was deleted while it still ran, long before its 60 s.
    let names: Vec<String> = jobs_of(s, &uid)
        .iter()
        .map(|j| j["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !names.contains(&old_job),
        "{old_job} outlived its generation: {names:?}"
    );
}

#[test]
fn a_task_against_a_server_that_stalls_times_out() {
    let s = setup();
    let ns = &namespace(s, "timeout");
    s.kubectl.apply(&format!(
        "apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {{name: stalled, namespace: {ns}}}\nspec:\n  source: {{url: \"{}\"}}\n  timeoutSeconds: 4\n  retries: 0\n",
        s.server.url("/stall")
    ));
    wait_failed(s, ns, "hashtask/stalled");
    let task = s.kubectl.get_json(&["hashtask", "stalled", "-n", ns]);
    let condition = &task["status"]["conditions"][0];
    assert_eq!(condition["reason"], "TimedOut", "{condition}");
    assert!(
        condition["message"].as_str().unwrap().contains("timeoutSeconds"),
        "{condition}"
    );
    assert_eq!(task["status"]["attempts"], 1);
}

#[test]
fn finished_jobs_are_deleted_after_the_ttl_and_status_stays() {
    let s = setup();
    let ns = &namespace(s, "ttl");
    file("ttl.bin", 1000, 24);
    s.kubectl
        .apply(&hash_task(ns, "brief", &s.server.url("/files/ttl.bin")));
    wait_succeeded(s, ns, &["hashtask/brief"]);
    let uid = uid_of(s, ns, "hashtask", "brief");
    assert_eq!(jobs_of(s, &uid).len(), 1, "the Job stays until its time to live is up");
    s.kubectl.eventually(
        "the Job to be deleted",
        Duration::from_secs(JOB_TTL_SECONDS + 60),
        || jobs_of(s, &uid).is_empty().then_some(()),
    );
    s.kubectl.eventually("its Pods to go too", Duration::from_secs(60), || {
        runner_pods(s, &uid).is_empty().then_some(())
    });
    let task = s.kubectl.get_json(&["hashtask", "brief", "-n", ns]);
    assert_eq!(task["status"]["phase"], "Succeeded");
    assert!(task["status"]["digests"]["md5"].is_string());
}

#[test]
fn metrics_move_when_tasks_run() {
    let s = setup();
    let ns = &namespace(s, "metrics");
    // The replica that leads (holds the Lease) is the one that reconciles and counts.
    s.kubectl.operator_rolled_out();
    let pod = s.kubectl.eventually("the leading operator", WAIT, || {
        let holder = s.kubectl.lease_holder()?;
        s.kubectl
            .operator_pods()
            .into_iter()
            .find(|p| p["metadata"]["name"] == holder.as_str() && p["status"]["phase"] == "Running")
    });
    let ip = pod["status"]["podIP"].as_str().unwrap().to_string();
    let get = |path: &str| -> (u16, String) {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect((ip.as_str(), 8080)).expect("the operator's metrics port");
        write!(conn, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).unwrap();
        let code = text.split_whitespace().nth(1).unwrap().parse().unwrap();
        (code, text)
    };
    let counter = |text: &str, series: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(get("/healthz").0, 200);
    assert_eq!(get("/readyz").0, 200);
    let (_, before) = get("/metrics");
    let finished = "taskyard_tasks_finished_total{kind=\"HashTask\",phase=\"Succeeded\",reason=\"Completed\"}";
    let reconciles = "taskyard_reconciles_total{kind=\"HashTask\"}";

    file("metrics.bin", 5000, 25);
    s.kubectl
        .apply(&hash_task(ns, "counted", &s.server.url("/files/metrics.bin")));
    wait_succeeded(s, ns, &["hashtask/counted"]);
    let (_, after) = s
        .kubectl
        .eventually("the counters to move", Duration::from_secs(30), || {
            let (code, text) = get("/metrics");
            (counter(&text, finished) > counter(&before, finished)).then_some((code, text))
        });
    assert!(counter(&after, reconciles) > counter(&before, reconciles));
    assert!(after.contains("taskyard_reconcile_duration_seconds_bucket{kind=\"HashTask\",le=\"+Inf\"}"));
    assert!(after.contains("taskyard_runner_job_duration_seconds_count{kind=\"HashTask\"}"));
    assert!(
        after.contains("taskyard_tasks{kind=\"HashTask\",phase=\"Succeeded\"}"),
        "{after}"
    );
    assert!(after.contains("taskyard_queue_length 0"), "{after}");
}

#[test]
fn a_permanent_failure_is_not_retried_and_a_transient_one_is() {
    let s = setup();
    let ns = &namespace(s, "permanent");
    // retries: 2 for both; a 404 can only fail again, a 503 may pass on a retry.
    for (name, code) in [("gone", 404), ("busy", 503)] {
        s.kubectl.apply(&format!(
            "apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  source: {{url: \"{}\"}}\n  retries: 2\n",
            s.server.url(&format!("/status/{code}"))
        ));
    }
    wait_failed(s, ns, "hashtask/gone");
    let gone = s.kubectl.get_json(&["hashtask", "gone", "-n", ns]);
    assert_eq!(
        gone["status"]["conditions"][0]["reason"], "FetchFailed",
        "{}",
        gone["status"]
    );
    assert_eq!(gone["status"]["attempts"], 1, "a 404 was retried");
    wait_failed(s, ns, "hashtask/busy");
    let busy = s.kubectl.get_json(&["hashtask", "busy", "-n", ns]);
    assert_eq!(
        busy["status"]["attempts"], 3,
        "a 503 gets its retries: {}",
        busy["status"]
    );
}

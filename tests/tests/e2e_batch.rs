//! End to end on the local cluster: batches. With one runner slot (`maxRunningJobs: 1`), tasks
//! that wait behind a blocker leave the line together in one batch Job (`maxTasksPerJob`), and
//! each keeps the promises of a Job of its own: its status as soon as it is done, its own
//! timeout, one results-log line, and a crash (the runner OOMKilled) or a deletion that
//! touches only its own task.
//!
//! The tests of this binary take turns: they share the one slot on purpose.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use taskyard_tests::e2e::{
    OPERATOR_NAMESPACE, Setup, WAIT, file, hash_task, helm_values, namespace, results_log, setup_with, wait_failed,
    wait_succeeded,
};
use taskyard_tests::images::{encoded, gradient};

const PER_JOB: usize = 8;
static TURN: Mutex<()> = Mutex::new(());

fn setup() -> &'static Setup {
    let env = taskyard_tests::cluster::ClusterEnv::load();
    let mut runner = helm_values(&env)["runner"].clone();
    // Small enough that one large image kills the runner; ample for everything else.
    runner["resources"] =
        json!({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "96Mi"}});
    setup_with(json!({"maxRunningJobs": 1, "maxTasksPerJob": PER_JOB, "runner": runner}))
}

fn task(s: &Setup, kind: &str, ns: &str, name: &str) -> Value {
    s.kubectl.get_json(&[kind, name, "-n", ns])
}

/// Holds the one runner slot for about `ms` milliseconds: the tasks applied meanwhile wait.
fn block_the_slot(s: &Setup, ns: &str, ms: u64) {
    file("blocker.bin", 200_000, 1);
    let url = s.server.url(&format!("/slow/blocker.bin?ms={ms}"));
    s.kubectl.apply(&hash_task(ns, "blocker", &url));
    s.kubectl.eventually("the blocker to run", WAIT, || {
        (task(s, "hashtask", ns, "blocker")["status"]["phase"] == "Running").then_some(())
    });
}

/// Waits until every named task shows its place in the line.
fn wait_queued(s: &Setup, kind: &str, ns: &str, names: &[&str]) {
    s.kubectl.eventually("the tasks to wait in line", WAIT, || {
        names
            .iter()
            .all(|n| task(s, kind, ns, n)["status"]["queuePosition"].is_u64())
            .then_some(())
    });
}

fn job_name(t: &Value) -> String {
    t["status"]["jobName"].as_str().unwrap_or_default().to_string()
}

fn job(s: &Setup, name: &str) -> Value {
    s.kubectl.get_json(&["job", name, "-n", OPERATOR_NAMESPACE])
}

#[test]
fn each_task_of_a_batch_gets_its_status_when_it_is_done_and_one_log_line() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup();
    let ns = &namespace(s, "batch-status");
    block_the_slot(s, ns, 8000);
    let mut names = Vec::new();
    for i in 0..4 {
        let name = format!("quick-{i}");
        file(&format!("{name}.bin"), 50_000 + i, 10 + i);
        s.kubectl
            .apply(&hash_task(ns, &name, &s.server.url(&format!("/files/{name}.bin"))));
        names.push(name);
    }
    file("slow.bin", 100_000, 9);
    s.kubectl
        .apply(&hash_task(ns, "slow", &s.server.url("/slow/slow.bin?ms=25000")));
    let mut all: Vec<&str> = names.iter().map(String::as_str).collect();
    all.push("slow");
    wait_queued(s, "hashtask", ns, &all);

    let quick: Vec<String> = names.iter().map(|n| format!("hashtask/{n}")).collect();
    let quick: Vec<&str> = quick.iter().map(String::as_str).collect();
    wait_succeeded(s, ns, &quick);
    // The batch still runs for the slow task: the quick ones did not wait for it.
    let batch = job_name(&task(s, "hashtask", ns, "quick-0"));
    assert!(batch.starts_with("taskyard-batch-"), "a batch carried them: {batch}");
    // A task of a batch says `Running` a few seconds after the batch starts (the quick ones
    // were done before that, and went straight to `Succeeded`).
    s.kubectl.eventually("the slow task to say it runs", WAIT, || {
        (task(s, "hashtask", ns, "slow")["status"]["phase"] == "Running").then_some(())
    });
    for n in &all {
        assert_eq!(job_name(&task(s, "hashtask", ns, n)), batch, "{n} is in the same batch");
    }
    let running = job(s, &batch);
    assert!(
        running["status"]["completionTime"].is_null() && running["status"]["active"] == 1,
        "the batch is still running: {}",
        running["status"]
    );
    wait_succeeded(s, ns, &["hashtask/slow"]);
    for n in &all {
        let t = task(s, "hashtask", ns, n);
        let file = s.files.join(format!("{}.bin", n));
        assert_eq!(
            t["status"]["digests"]["md5"].as_str().unwrap(),
            taskyard_tests::files::coreutils_digest("md5", &file),
            "{n}"
        );
        assert_eq!(t["status"]["attempts"], 1, "{n}");
    }
    let finished = task(s, "hashtask", ns, "slow")["status"]["completionTime"]
        .as_str()
        .unwrap()
        .to_string();
    let log = results_log(s, &finished[..10]);
    for n in &all {
        let uid = task(s, "hashtask", ns, n)["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            log.lines().filter(|l| l.contains(&uid)).count(),
            1,
            "one line for {n}:\n{log}"
        );
    }
}

#[test]
fn a_timeout_in_a_batch_fails_only_that_task() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup();
    let ns = &namespace(s, "batch-timeout");
    block_the_slot(s, ns, 8000);
    file("fine.bin", 30_000, 3);
    s.kubectl
        .apply(&hash_task(ns, "fine", &s.server.url("/files/fine.bin")));
    s.kubectl.apply(&format!(
        "apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {{name: stuck, namespace: {ns}}}\nspec:\n  source: {{url: \"{}\"}}\n  timeoutSeconds: 5\n  retries: 0\n",
        s.server.url("/stall")
    ));
    wait_queued(s, "hashtask", ns, &["fine", "stuck"]);
    wait_failed(s, ns, "hashtask/stuck");
    wait_succeeded(s, ns, &["hashtask/fine"]);
    let stuck = task(s, "hashtask", ns, "stuck");
    assert!(job_name(&stuck).starts_with("taskyard-batch-"), "{}", stuck["status"]);
    assert_eq!(job_name(&stuck), job_name(&task(s, "hashtask", ns, "fine")));
    let condition = &stuck["status"]["conditions"][0];
    assert_eq!(condition["reason"], "TimedOut", "{condition}");
    assert!(
        condition["message"].as_str().unwrap().contains("timeoutSeconds"),
        "{condition}"
    );
}

#[test]
fn a_task_deleted_from_a_running_batch_leaves_the_others_running() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup();
    let ns = &namespace(s, "batch-delete");
    block_the_slot(s, ns, 8000);
    let names = ["keep-0", "doomed", "keep-1"];
    for (i, name) in names.iter().enumerate() {
        file(&format!("{name}.bin"), 80_000, 30 + i as u64);
        let url = s.server.url(&format!("/slow/{name}.bin?ms=12000"));
        s.kubectl.apply(&hash_task(ns, name, &url));
    }
    wait_queued(s, "hashtask", ns, &names);
    s.kubectl.eventually("the batch to run", WAIT, || {
        (task(s, "hashtask", ns, "doomed")["status"]["phase"] == "Running").then_some(())
    });
    let batch = job_name(&task(s, "hashtask", ns, "doomed"));
    assert!(batch.starts_with("taskyard-batch-"), "{batch}");
    s.kubectl
        .run(&["delete", "hashtask", "doomed", "-n", ns, "--wait=true"]);
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        job(s, &batch)["status"]["active"],
        1,
        "the batch runs on for the others"
    );
    wait_succeeded(s, ns, &["hashtask/keep-0", "hashtask/keep-1"]);
    for n in ["keep-0", "keep-1"] {
        assert_eq!(job_name(&task(s, "hashtask", ns, n)), batch);
    }
}

#[test]
fn a_runner_crash_in_a_batch_fails_only_the_task_that_caused_it() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup();
    let ns = &namespace(s, "batch-crash");
    let image = |name: &str, file: &str, retries: u32| {
        format!(
            "apiVersion: taskyard.dev/v1alpha1\nkind: ImageTask\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  source: {{url: \"{}\"}}\n  resize: {{width: 32, height: 32, fit: cover, format: jpeg}}\n  retries: {retries}\n",
            s.server.url(&format!("/files/{file}"))
        )
    };
    // 4200 x 4200: about 134 MiB to decode (WebP has no smaller path), within the runner's
    // 160 MiB working-memory budget but beyond its 96 MiB limit.
    std::fs::write(
        s.files.join("big.webp"),
        encoded(&gradient(4200, 4200), image::ImageFormat::WebP),
    )
    .unwrap();
    std::fs::write(
        s.files.join("small.png"),
        encoded(&gradient(64, 48), image::ImageFormat::Png),
    )
    .unwrap();
    block_the_slot(s, ns, 8000);
    let names = ["small-0", "big", "small-1", "small-2"];
    for name in names {
        let yaml = if name == "big" {
            image(name, "big.webp", 0)
        } else {
            image(name, "small.png", 2)
        };
        s.kubectl.apply(&yaml);
    }
    wait_queued(s, "imagetask", ns, &names);
    wait_failed(s, ns, "imagetask/big");
    wait_succeeded(s, ns, &["imagetask/small-0", "imagetask/small-1", "imagetask/small-2"]);
    let big = task(s, "imagetask", ns, "big");
    let message = big["status"]["conditions"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("OOMKilled"),
        "the culprit fails with its own reason: {}",
        big["status"]
    );
    let own = job_name(&big);
    assert!(!own.starts_with("taskyard-batch-"), "it ran alone at the end: {own}");
    // The batch that carried it ended without its result (and perhaps others').
    let jobs = s
        .kubectl
        .get_json(&["jobs", "-n", OPERATOR_NAMESPACE, "-l", "taskyard.dev/batch=true"]);
    let uid = big["metadata"]["uid"].as_str().unwrap();
    let carried = jobs["items"].as_array().unwrap().iter().find(|j| {
        j["metadata"]["annotations"]["taskyard.dev/tasks"]
            .as_str()
            .is_some_and(|t| t.contains(uid))
    });
    let carried = carried.expect("a batch carried the big image first");
    assert_eq!(
        carried["status"]["failed"], 1,
        "the batch's Pod crashed: {}",
        carried["status"]
    );
}

//! Fault drills on the local cluster, one operator replica (the chart's default) and two
//! runner slots: each drill takes a piece of the cluster away while HashTasks run (the API
//! server, the S3 server, a runner Pod, the kubelet, a store object, the operator itself),
//! gives it back, and ends with `drill::check`: every task in its right final state, one
//! results-log line per generation, no second Job for a generation, no half-written object.
//! Each prints how long recovery took; the README's "Fault drills" quotes them.
//!
//! The drills take turns: one fault at a time.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use taskyard_tests::containers::{kill, main_pid};
use taskyard_tests::daemons::Daemon;
use taskyard_tests::drill::{check, hash_tasks, wait_all_finished};
use taskyard_tests::drill_load::{object_burst, object_task, served_file, slow_burst, slow_tasks, succeeded, upload};
use taskyard_tests::e2e::{OPERATOR_NAMESPACE, Setup, WAIT, hash_task, namespace, setup_with};

static TURN: Mutex<()> = Mutex::new(());
/// The longest any drill's tasks may take to finish once the fault is over.
const FINISH: Duration = Duration::from_secs(240);

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

fn setup() -> &'static Setup {
    setup_with(json!({"maxRunningJobs": 2}))
}

fn task(s: &Setup, ns: &str, name: &str) -> Value {
    s.kubectl.get_json(&["hashtask", name, "-n", ns])
}

/// Waits until the named tasks' runners run (their status says so, and their Pods run).
fn wait_running(s: &Setup, ns: &str, names: &[&str]) {
    s.kubectl.eventually(&format!("{names:?} to run"), WAIT, || {
        names
            .iter()
            .all(|n| {
                let t = task(s, ns, n);
                t["status"]["phase"] == "Running"
                    && runner_pod_running(s, t["status"]["jobName"].as_str().unwrap_or(""))
            })
            .then_some(())
    });
}

fn runner_pod_running(s: &Setup, job: &str) -> bool {
    let pods = s
        .kubectl
        .get_json(&["pods", "-n", OPERATOR_NAMESPACE, "-l", &format!("job-name={job}")]);
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["status"]["phase"] == "Running")
}

/// The operator's container restarts, summed over its Pods.
fn operator_restarts(s: &Setup) -> u64 {
    s.kubectl
        .operator_pods()
        .iter()
        .map(|p| {
            p["status"]["containerStatuses"][0]["restartCount"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum()
}

#[test]
fn drill_api_server_restarted_while_jobs_run_and_while_status_is_written() {
    let _turn = turn();
    let s = setup();
    let ns = &namespace(s, "drill-apiserver");
    let since = jiff::Timestamp::now();
    let restarts = operator_restarts(s);
    let mut md5 = BTreeMap::new();

    // Both runner slots busy for 12 s, and the API server away in the middle.
    slow_tasks(s, ns, &["slow-0", "slow-1"], 12_000, &mut md5);
    wait_running(s, ns, &["slow-0", "slow-1"]);
    let away = Daemon::ApiServer.restart(Duration::from_secs(5));
    let back = Instant::now();
    s.kubectl.eventually("the slow tasks to succeed", FINISH, || {
        (succeeded(s, ns) == 2).then_some(())
    });
    eprintln!(
        "while Jobs ran: the API server was away {:.1} s; both tasks succeeded {:.1} s after it was back",
        away.as_secs_f64(),
        back.elapsed().as_secs_f64()
    );

    // A burst whose statuses are being written when the API server goes.
    object_burst(s, ns, "quick", 30, &mut md5);
    s.kubectl.eventually("the first of the burst to succeed", FINISH, || {
        (succeeded(s, ns) > 2).then_some(())
    });
    let done_before = succeeded(s, ns) - 2;
    let away = Daemon::ApiServer.restart(Duration::from_secs(5));
    let took = wait_all_finished(s, ns, FINISH);
    eprintln!(
        "while status was written ({done_before} of 30 done): the API server was away {:.1} s; every task finished {:.1} s after it was back; the operator restarted {} times",
        away.as_secs_f64(),
        took.as_secs_f64(),
        operator_restarts(s) - restarts
    );
    check(s, ns, since, &md5, &[]);
}

#[test]
fn drill_s3_stopped_for_30_s_while_runners_upload() {
    let _turn = turn();
    let s = setup();
    let ns = &namespace(s, "drill-s3-runners");
    let since = jiff::Timestamp::now();
    let mut md5 = BTreeMap::new();
    // Two run (their downloads take 6 s, then they write their results), two wait in line.
    slow_tasks(s, ns, &["up-0", "up-1", "up-2", "up-3"], 6_000, &mut md5);
    wait_running(s, ns, &["up-0", "up-1"]);
    std::thread::sleep(Duration::from_secs(2));
    Daemon::S3.restart(Duration::from_secs(30));
    let took = wait_all_finished(s, ns, FINISH);
    let outcome = check(s, ns, since, &md5, &["StoreError"]);
    eprintln!(
        "every task finished {:.1} s after the store was back: {outcome:?}",
        took.as_secs_f64()
    );
    for t in hash_tasks(s, ns).iter().filter(|t| t["status"]["phase"] == "Failed") {
        let message = t["status"]["conditions"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("result.json"),
            "a StoreError says what failed: {message}"
        );
    }
}

#[test]
fn drill_s3_stopped_for_30_s_while_the_operator_appends_the_results_log() {
    let _turn = turn();
    let s = setup();
    let ns = &namespace(s, "drill-s3-log");
    let since = jiff::Timestamp::now();
    let mut md5 = BTreeMap::new();
    let mut yaml = String::new();
    for i in 0..20 {
        let name = format!("log-{i:02}");
        md5.insert(name.clone(), served_file(s, &format!("{ns}-{name}.bin"), 20_000 + i, i));
        yaml.push_str(&hash_task(ns, &name, &s.server.url(&format!("/files/{ns}-{name}.bin"))));
        yaml.push_str("---\n");
    }
    s.kubectl.apply(&yaml);
    // The first finished: the others' results are being read and logged right now.
    s.kubectl.eventually("the first task to succeed", FINISH, || {
        (succeeded(s, ns) > 0).then_some(())
    });
    let done_before = succeeded(s, ns);
    Daemon::S3.restart(Duration::from_secs(30));
    let done_while_away = succeeded(s, ns) - done_before;
    let took = wait_all_finished(s, ns, FINISH);
    let outcome = check(s, ns, since, &md5, &["StoreError"]);
    eprintln!(
        "{done_before} of 20 done when the store went, {done_while_away} more while it was away; every task finished {:.1} s after it was back: {outcome:?}",
        took.as_secs_f64()
    );
}

#[test]
fn drill_a_runner_pod_deleted_mid_run() {
    let _turn = turn();
    let s = setup();
    let ns = &namespace(s, "drill-pod");
    let since = jiff::Timestamp::now();
    let mut md5 = BTreeMap::new();
    slow_tasks(s, ns, &["victim"], 8_000, &mut md5);
    wait_running(s, ns, &["victim"]);
    std::thread::sleep(Duration::from_secs(3));
    let job = task(s, ns, "victim")["status"]["jobName"].as_str().unwrap().to_string();
    s.kubectl.run(&[
        "delete",
        "pod",
        "-n",
        OPERATOR_NAMESPACE,
        "-l",
        &format!("job-name={job}"),
        "--wait=false",
    ]);
    let took = wait_all_finished(s, ns, FINISH);
    check(s, ns, since, &md5, &[]);
    let t = task(s, ns, "victim");
    eprintln!(
        "the task succeeded {:.1} s after its runner Pod was deleted (a whole run takes 8 s), attempts {}",
        took.as_secs_f64(),
        t["status"]["attempts"]
    );
}

#[test]
fn drill_the_kubelet_restarted_mid_run() {
    let _turn = turn();
    let s = setup();
    let ns = &namespace(s, "drill-kubelet");
    let since = jiff::Timestamp::now();
    let mut md5 = BTreeMap::new();
    slow_tasks(s, ns, &["steady"], 8_000, &mut md5);
    wait_running(s, ns, &["steady"]);
    std::thread::sleep(Duration::from_secs(3));
    let away = Daemon::Kubelet.restart(Duration::from_secs(3));
    let took = wait_all_finished(s, ns, FINISH);
    check(s, ns, since, &md5, &[]);
    eprintln!(
        "the kubelet was away {:.1} s; the task succeeded {:.1} s after it was back, attempts {}",
        away.as_secs_f64(),
        took.as_secs_f64(),
        task(s, ns, "steady")["status"]["attempts"]
    );
}

/// Whether a runner Job carries the task `uid` (its own Job, or a batch).
fn job_carries(s: &Setup, uid: &str) -> bool {
    let jobs = s.kubectl.get_json(&["jobs", "-n", OPERATOR_NAMESPACE]);
    jobs["items"].as_array().unwrap().iter().any(|j| {
        j["metadata"]["labels"]["taskyard.dev/uid"] == uid
            || j["metadata"]["annotations"]["taskyard.dev/tasks"]
                .as_str()
                .is_some_and(|t| t.contains(uid))
    })
}

#[test]
fn drill_a_store_object_deleted_between_validation_and_the_runner_reading_it() {
    let _turn = turn();
    let s = setup();
    let ns = &namespace(s, "drill-object");
    let since = jiff::Timestamp::now();
    let store = s.runtime.block_on(s.env.store());
    let mut md5 = BTreeMap::new();
    // Both slots taken: what comes next waits in line, validated.
    slow_tasks(s, ns, &["blocker-0", "blocker-1"], 6_000, &mut md5);
    wait_running(s, ns, &["blocker-0", "blocker-1"]);
    // Deleted while its task waits in line: the task is checked again when its turn comes.
    md5.insert("gone-in-line".into(), upload(s, ns, "gone-in-line.bin", 10_000, 3));
    s.kubectl.apply(&object_task(ns, "gone-in-line", "gone-in-line.bin"));
    // Deleted once a batch Job carries its task, behind four slow tasks the runner starts
    // first (four at a time): the runner reads it seconds after the delete.
    slow_tasks(s, ns, &["ahead-0", "ahead-1", "ahead-2", "ahead-3"], 6_000, &mut md5);
    md5.insert("gone-in-job".into(), upload(s, ns, "gone-in-job.bin", 10_000, 4));
    s.kubectl.apply(&object_task(ns, "gone-in-job", "gone-in-job.bin"));
    s.kubectl.eventually("the first task to wait in line", WAIT, || {
        task(s, ns, "gone-in-line")["status"]["queuePosition"]
            .is_u64()
            .then_some(())
    });
    let in_line = format!("uploads/{ns}/gone-in-line.bin");
    s.runtime.block_on(store.delete(&in_line)).unwrap();
    let uid = task(s, ns, "gone-in-job")["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    s.kubectl.eventually("a Job to carry the second task", WAIT, || {
        job_carries(s, &uid).then_some(())
    });
    let in_job = format!("uploads/{ns}/gone-in-job.bin");
    s.runtime.block_on(store.delete(&in_job)).unwrap();
    let took = wait_all_finished(s, ns, FINISH);
    let outcome = check(s, ns, since, &md5, &["InvalidSpec", "ObjectNotFound"]);
    eprintln!(
        "finished {:.1} s after the second delete: {outcome:?}",
        took.as_secs_f64()
    );
    for (name, key, reason) in [
        ("gone-in-line", &in_line, "InvalidSpec"),
        ("gone-in-job", &in_job, "ObjectNotFound"),
    ] {
        let t = task(s, ns, name);
        let condition = &t["status"]["conditions"][0];
        assert_eq!(condition["reason"], reason, "{name}: {}", t["status"]);
        assert!(
            condition["message"].as_str().unwrap().contains(key.as_str()),
            "{condition}"
        );
        eprintln!("{name} says: {reason}: {}", condition["message"]);
    }
    let t = task(s, ns, "gone-in-job");
    assert_eq!(
        t["status"]["attempts"], 1,
        "a missing object is not retried: {}",
        t["status"]
    );
    let t = task(s, ns, "gone-in-line");
    assert!(
        t["status"]["jobName"].is_null(),
        "no Job for an invalid spec: {}",
        t["status"]
    );
}

/// The operator's Pod (not being deleted), its container and how often that restarted, once
/// the container is ready.
fn ready_operator(s: &Setup) -> Option<(String, String, u64)> {
    s.kubectl.operator_pods().iter().find_map(|p| {
        let c = &p["status"]["containerStatuses"][0];
        (c["ready"] == true && c["state"]["running"].is_object()).then(|| {
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                c["containerID"].as_str().unwrap().to_string(),
                c["restartCount"].as_u64().unwrap_or(0),
            )
        })
    })
}

/// A pseudo-random delay, 0.2 to 4 s, from a seed that changes every run (printed, so a
/// failing run can be read against its kill times).
fn random_delay(state: &mut u64) -> Duration {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    Duration::from_millis(200 + *state % 3800)
}

#[test]
fn drill_the_operator_killed_five_times_during_a_burst_of_200_tasks() {
    let _turn = turn();
    let s = setup();
    let ns = &namespace(s, "drill-sigkill");
    let since = jiff::Timestamp::now();
    let mut md5 = BTreeMap::new();
    let mut seed = since.as_nanosecond() as u64 | 1;
    eprintln!("kill times from seed {seed}");
    s.kubectl
        .eventually("the operator to be ready", WAIT, || ready_operator(s));
    let started = Instant::now();
    // Runners that go on for about 110 s: a leading operator records each task as it
    // finishes, so the five kills, and the outages after them, fall within the burst.
    slow_burst(s, ns, "t", 200, &mut md5);
    for kill_number in 1..=5 {
        std::thread::sleep(random_delay(&mut seed));
        let (pod, container, restarts) = s
            .kubectl
            .eventually("the operator to be ready", WAIT, || ready_operator(s));
        let done = succeeded(s, ns);
        assert!(
            done < 200,
            "kill {kill_number} would come after the burst: all 200 are done"
        );
        let at = started.elapsed();
        kill(main_pid(&s.env, &container));
        let killed = Instant::now();
        // The kubelet restarts a killed container at once the first time, then only after
        // 10 s, 20 s, 40 s...: a Pod killed before is replaced instead (a new Pod waits for
        // the dead one's lease to expire, 15 s).
        let replaced = restarts > 0;
        if replaced {
            s.kubectl
                .run(&["delete", "pod", &pod, "-n", OPERATOR_NAMESPACE, "--wait=false"]);
        }
        let (back, _, _) = s.kubectl.eventually("the operator to be back", WAIT, || {
            ready_operator(s).filter(|(_, c, _)| *c != container)
        });
        s.kubectl.eventually("it to lead", WAIT, || {
            (s.kubectl.lease_holder().as_deref() == Some(back.as_str())).then_some(())
        });
        eprintln!(
            "kill {kill_number} at {:.1} s ({done} of 200 done): {} back and leading after {:.1} s",
            at.as_secs_f64(),
            if replaced { "a new Pod" } else { "restarted in place," },
            killed.elapsed().as_secs_f64()
        );
    }
    wait_all_finished(s, ns, FINISH);
    eprintln!(
        "all 200 finished {:.1} s after they were applied",
        started.elapsed().as_secs_f64()
    );
    check(s, ns, since, &md5, &[]);
}

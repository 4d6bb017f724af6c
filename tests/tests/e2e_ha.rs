//! End to end on the local cluster: two operator replicas elect one leader with a Lease.
//! Killing the leader mid-run hands over to the other within 20 s, and the task completes
//! with one Job. A leader that freezes (as if hung or cut off) loses the lease within 20 s and
//! steps down when it runs again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use taskyard_tests::containers::{Frozen, main_pid};
use taskyard_tests::e2e::{Setup, WAIT, file, hash_task, jobs_of, namespace, setup_with, wait_succeeded};

/// The tests take the leader away in turn, never at once.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn ready_operators(s: &Setup) -> Vec<String> {
    s.kubectl
        .operator_pods()
        .iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// Two replicas up, and the one that leads.
fn two_replicas_and_the_leader(s: &Setup) -> String {
    let k = &s.kubectl;
    k.operator_rolled_out();
    let pods = k.eventually("two operator replicas", WAIT, || {
        let pods = ready_operators(s);
        (pods.len() == 2).then_some(pods)
    });
    k.eventually("a leader", WAIT, || k.lease_holder().filter(|h| pods.contains(h)))
}

fn operator_pod(s: &Setup, name: &str) -> Value {
    s.kubectl.get_json(&["pod", name, "-n", "taskyard-system"])
}

fn restarts(pod: &Value) -> u64 {
    pod["status"]["containerStatuses"][0]["restartCount"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn killing_the_leader_hands_over_without_a_second_job() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup_with(json!({"replicas": 2}));
    let k = &s.kubectl;
    let holder = || k.lease_holder();
    let leader = two_replicas_and_the_leader(s);

    let ns = &namespace(s, "ha");
    let path = file("ha.bin", 150_000, 31);
    s.kubectl
        .apply(&hash_task(ns, "steady", &s.server.url("/slow/ha.bin?ms=15000")));
    let uid = k.eventually("the runner Job", WAIT, || {
        let t = k.get_json(&["hashtask", "steady", "-n", ns]);
        let uid = t["metadata"]["uid"].as_str()?.to_string();
        (!jobs_of(s, &uid).is_empty()).then_some(uid)
    });

    let killed = Instant::now();
    k.run(&[
        "delete",
        "pod",
        &leader,
        "-n",
        "taskyard-system",
        "--grace-period=0",
        "--force",
        "--wait=false",
    ]);
    let new_leader = k.eventually("another replica to lead", Duration::from_secs(30), || {
        holder().filter(|h| h != &leader && ready_operators(s).contains(h))
    });
    let failover = killed.elapsed();
    eprintln!(
        "failover from {leader} to {new_leader}: {:.1} s",
        failover.as_secs_f64()
    );
    assert!(failover < Duration::from_secs(20), "failover took {failover:?}");

    wait_succeeded(s, ns, &["hashtask/steady"]);
    let task = k.get_json(&["hashtask", "steady", "-n", ns]);
    assert_eq!(
        task["status"]["digests"]["md5"].as_str().unwrap(),
        taskyard_tests::files::coreutils_digest("md5", &path)
    );
    assert_eq!(jobs_of(s, &uid).len(), 1, "the handover created a second Job");
}

#[test]
fn a_frozen_leader_loses_the_lease_and_steps_down_when_it_wakes() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup_with(json!({"replicas": 2}));
    let k = &s.kubectl;
    let leader = two_replicas_and_the_leader(s);
    let pod = operator_pod(s, &leader);
    let restarts_before = restarts(&pod);
    let container = pod["status"]["containerStatuses"][0]["containerID"].as_str().unwrap();

    let frozen = Frozen::stop(main_pid(&s.env, container));
    let stopped = Instant::now();
    let new_leader = k.eventually("another replica to take the lease", Duration::from_secs(40), || {
        k.lease_holder().filter(|h| h != &leader)
    });
    let takeover = stopped.elapsed();
    eprintln!(
        "{new_leader} took the lease {:.1} s after {leader} froze",
        takeover.as_secs_f64()
    );
    assert!(takeover < Duration::from_secs(20), "takeover took {takeover:?}");

    // The new leader reconciles while the old one is still frozen.
    let ns = &namespace(s, "frozen");
    let path = file("frozen.bin", 40_000, 32);
    k.apply(&hash_task(ns, "while-frozen", &s.server.url("/files/frozen.bin")));
    wait_succeeded(s, ns, &["hashtask/while-frozen"]);
    let task = k.get_json(&["hashtask", "while-frozen", "-n", ns]);
    assert_eq!(
        task["status"]["digests"]["md5"].as_str().unwrap(),
        taskyard_tests::files::coreutils_digest("md5", &path)
    );

    // Woken, the old leader finds the lease taken at its next renewal and exits; its
    // container restarts as a standby.
    drop(frozen);
    k.eventually("the old leader to step down", Duration::from_secs(60), || {
        (restarts(&operator_pod(s, &leader)) > restarts_before).then_some(())
    });
    assert_eq!(
        k.lease_holder().as_deref(),
        Some(new_leader.as_str()),
        "the lease changed hands again"
    );
}

//! End to end on the local cluster: two operator replicas elect one leader with a Lease;
//! killing the leader mid-run hands over to the other within 20 s, and the task completes
//! with one Job.

use std::time::{Duration, Instant};

use serde_json::json;
use taskyard_tests::e2e::{WAIT, file, hash_task, jobs_of, namespace, setup_with, wait_succeeded};

#[test]
fn killing_the_leader_hands_over_without_a_second_job() {
    let s = setup_with(json!({"replicas": 2}));
    let k = &s.kubectl;
    let ready_operators = || {
        k.operator_pods()
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let holder = || k.lease_holder();
    k.operator_rolled_out();
    let pods = k.eventually("two operator replicas", WAIT, || {
        let pods = ready_operators();
        (pods.len() == 2).then_some(pods)
    });
    let leader = k.eventually("a leader", WAIT, || holder().filter(|h| pods.contains(h)));

    let ns = &namespace(s, "ha");
    let path = file("ha.bin", 150_000, 31);
    s.kubectl
        .apply(&hash_task(ns, "steady", &s.server.url("/slow/ha.bin?ms=15000")));
    let uid = k.eventually("the runner Job", WAIT, || {
        let t = k.get_json(&["hashtask", "steady", "-n", ns]);
        let uid = t["metadata"]["uid"].as_str()?.to_string();
        (!jobs_of(s, ns, &uid).is_empty()).then_some(uid)
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
        holder().filter(|h| h != &leader && ready_operators().contains(h))
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
    assert_eq!(jobs_of(s, ns, &uid).len(), 1, "the handover created a second Job");
}

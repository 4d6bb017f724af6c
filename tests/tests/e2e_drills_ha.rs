//! Fault drill on the local cluster with two operator replicas: under load, the leader is cut
//! off from the API server (and from nothing else: the store stays in reach), the other
//! replica takes the lease, the cut is healed, and then the same is done to the new leader.
//! Ends with `drill::check` (see e2e_drills.rs), and prints each handover's time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use taskyard_tests::containers::main_pid;
use taskyard_tests::drill::{check, wait_all_finished};
use taskyard_tests::drill_load::{object_burst, slow_tasks};
use taskyard_tests::e2e::{Setup, WAIT, namespace, setup_with};
use taskyard_tests::partition::Partitioned;

const FINISH: Duration = Duration::from_secs(240);
/// How long a cut-off leader stays cut off: well past the 15 s lease.
const CUT_FOR: Duration = Duration::from_secs(25);

/// The ready operator replicas: (Pod name, container ID).
fn ready_replicas(s: &Setup) -> Vec<(String, String)> {
    s.kubectl
        .operator_pods()
        .iter()
        .filter_map(|p| {
            let c = &p["status"]["containerStatuses"][0];
            (c["ready"] == true && c["state"]["running"].is_object()).then(|| {
                (
                    p["metadata"]["name"].as_str().unwrap().to_string(),
                    c["containerID"].as_str().unwrap().to_string(),
                )
            })
        })
        .collect()
}

/// When the container `container` of `pod` exited, by the container runtime's clock, once the
/// kubelet has reported it. Read from the exit itself, not from the restart: a container that
/// restarted before waits 10 s or more (the kubelet's back-off) before it restarts again.
fn exited_at(s: &Setup, pod: &str, container: &str) -> Option<jiff::Timestamp> {
    let pod = s.kubectl.get_json(&["pod", pod, "-n", "taskyard-system"]);
    let status = &pod["status"]["containerStatuses"][0];
    [&status["state"]["terminated"], &status["lastState"]["terminated"]]
        .into_iter()
        .find(|t| t["containerID"] == container)
        .and_then(|t| t["finishedAt"].as_str()?.parse().ok())
}

#[test]
fn drill_two_replicas_cut_off_from_the_api_server_in_turn_under_load() {
    let s = setup_with(json!({"replicas": 2, "maxRunningJobs": 2}));
    let k = &s.kubectl;
    k.operator_rolled_out();
    let ns = &namespace(s, "drill-partition");
    let since = jiff::Timestamp::now();
    let mut md5 = BTreeMap::new();
    let started = Instant::now();
    slow_tasks(s, ns, &["long-0", "long-1"], 20_000, &mut md5);
    object_burst(s, ns, "a", 60, &mut md5);

    for round in 1..=2 {
        let replicas = k.eventually("two ready replicas", WAIT, || {
            let r = ready_replicas(s);
            (r.len() == 2).then_some(r)
        });
        let (leader, container) = k.eventually("a leader", WAIT, || {
            let holder = k.lease_holder()?;
            replicas.iter().find(|r| r.0 == holder).cloned()
        });
        let cut = Partitioned::from_api_server(&s.env, main_pid(&s.env, &container));
        let cut_at = Instant::now();
        let cut_clock = jiff::Timestamp::now();
        // It stops leading by itself, before its lease (15 s) may pass to the other replica,
        // though no request of its own ever fails: they go unanswered.
        let exited = k.eventually("the cut-off leader to stop", Duration::from_secs(60), || {
            exited_at(s, &leader, &container)
        });
        // finishedAt has whole seconds: this is at most 1 s short.
        let stopped = Duration::try_from(exited.duration_since(cut_clock)).unwrap_or_default();
        let successor = k.eventually("the other replica to take the lease", Duration::from_secs(60), || {
            k.lease_holder().filter(|h| *h != leader)
        });
        let handover = cut_at.elapsed();
        // More work while the old leader, cut off, may still think it leads.
        object_burst(s, ns, &format!("r{round}"), 30, &mut md5);
        std::thread::sleep(CUT_FOR.saturating_sub(cut_at.elapsed()));
        drop(cut);
        let healed = Instant::now();
        k.eventually("the old leader to stand by", Duration::from_secs(120), || {
            ready_replicas(s).iter().any(|r| r.0 == leader).then_some(())
        });
        eprintln!(
            "round {round} at {:.1} s: {leader}, cut off, stopped after {:.1} s; {successor} took the \
             lease {:.1} s after the cut; {leader} stood by again {:.1} s after the cut was healed",
            started.elapsed().as_secs_f64() - cut_at.elapsed().as_secs_f64(),
            stopped.as_secs_f64(),
            handover.as_secs_f64(),
            healed.elapsed().as_secs_f64()
        );
        assert!(
            stopped < Duration::from_secs(15),
            "the cut-off leader led on for {stopped:?}"
        );
        assert!(handover < Duration::from_secs(25), "handover took {handover:?}");
        assert_eq!(
            k.lease_holder().as_deref(),
            Some(successor.as_str()),
            "the lease moved again"
        );
    }
    wait_all_finished(s, ns, FINISH);
    eprintln!(
        "all {} tasks finished {:.1} s after the first was applied",
        md5.len(),
        started.elapsed().as_secs_f64()
    );
    check(s, ns, since, &md5, &[]);
}

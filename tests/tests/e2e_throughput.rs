//! End to end on the local cluster, with the chart's defaults: a burst of 200 HashTasks of
//! distinct store objects, applied at once as a user would. Correctness only (the speed is
//! `bench/throughput.sh`'s): every task succeeds with the md5 of its own object, batches
//! carried most of them, and the results log has exactly one line per task.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use taskyard_tests::e2e::{namespace, results_log, setup};
use taskyard_tests::files::{coreutils_digest, write_pattern};

const TASKS: usize = 200;

#[test]
fn a_burst_of_200_tasks_all_succeed_in_batches_with_one_log_line_each() {
    let s = setup();
    let ns = &namespace(s, "burst");
    let store = s.runtime.block_on(s.env.store());
    let mut expected = Vec::new();
    let mut manifests = String::new();
    for i in 0..TASKS {
        let path = s.files.join(format!("burst-{i}.bin"));
        write_pattern(&path, 64 << 10, 1000 + i as u64);
        let body = Bytes::from(std::fs::read(&path).unwrap());
        s.runtime
            .block_on(store.put(&format!("uploads/{ns}/burst-{i}.bin"), body, "application/octet-stream"))
            .unwrap();
        expected.push(coreutils_digest("md5", &path));
        manifests.push_str(&format!(
            "apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {{name: t{i:03}, namespace: {ns}}}\nspec:\n  source: {{object: burst-{i}.bin}}\n---\n"
        ));
    }
    s.kubectl.apply(&manifests);
    s.kubectl.wait(&[
        "-n",
        ns,
        "--for=condition=Succeeded",
        "hashtask",
        "--all",
        &format!("--timeout={}s", Duration::from_secs(900).as_secs()),
    ]);
    let tasks = s.kubectl.get_json(&["hashtasks", "-n", ns]);
    let items = tasks["items"].as_array().unwrap();
    assert_eq!(items.len(), TASKS);
    let mut jobs = HashSet::new();
    let mut days = HashSet::new();
    for t in items {
        let i: usize = t["metadata"]["name"].as_str().unwrap()[1..].parse().unwrap();
        assert_eq!(t["status"]["phase"], "Succeeded", "{}", t["status"]);
        assert_eq!(t["status"]["digests"]["md5"], expected[i], "task {i}");
        jobs.insert(t["status"]["jobName"].as_str().unwrap().to_string());
        days.insert(t["status"]["completionTime"].as_str().unwrap()[..10].to_string());
    }
    assert!(
        jobs.len() <= TASKS / 4,
        "batches carried the burst: {} runner Jobs for {TASKS} tasks",
        jobs.len()
    );
    let log: String = days.iter().map(|d| results_log(s, d)).collect();
    for t in items {
        let uid = t["metadata"]["uid"].as_str().unwrap();
        let lines = log.lines().filter(|l| l.contains(uid)).count();
        assert_eq!(lines, 1, "one results-log line for {}", t["metadata"]["name"]);
    }
}

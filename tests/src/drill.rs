//! What every fault drill checks once its fault is over, for every HashTask of its namespace:
//! each task in its right final state, exactly one results-log line per generation, no
//! second Job for a generation, and no object left half-written under a final key.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use serde_json::Value;
use taskyard_api::TaskResult;
use taskyard_common::keys::{hash_log_day_prefix, hash_log_segment_key};

use crate::e2e::{OPERATOR_NAMESPACE, Setup, results_log};

/// How the tasks of a drill ended.
#[derive(Debug, Default)]
pub struct Outcome {
    pub succeeded: usize,
    /// Failure reasons, with how many tasks each.
    pub failed: BTreeMap<String, usize>,
}

/// Waits until every HashTask of `ns` has finished (Succeeded or Failed for its current
/// generation); returns how long that took.
pub fn wait_all_finished(s: &Setup, ns: &str, timeout: Duration) -> Duration {
    let started = Instant::now();
    s.kubectl
        .eventually(&format!("every HashTask of {ns} to finish"), timeout, || {
            let tasks = hash_tasks(s, ns);
            tasks.iter().all(finished).then_some(())
        });
    started.elapsed()
}

fn finished(t: &Value) -> bool {
    let status = &t["status"];
    matches!(status["phase"].as_str(), Some("Succeeded" | "Failed"))
        && status["observedGeneration"] == t["metadata"]["generation"]
}

pub fn hash_tasks(s: &Setup, ns: &str) -> Vec<Value> {
    s.kubectl.get_json(&["hashtasks", "-n", ns])["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// Checks the drill's end state. `md5` is each task's expected digest, by name; a task may
/// fail only with one of `may_fail` (condition reasons). `since` is when the drill began: the
/// results-log segments written from then on are read whole.
pub fn check(
    s: &Setup,
    ns: &str,
    since: jiff::Timestamp,
    md5: &BTreeMap<String, String>,
    may_fail: &[&str],
) -> Outcome {
    let tasks = hash_tasks(s, ns);
    assert_eq!(tasks.len(), md5.len(), "every task of the drill is there");
    let mut outcome = Outcome::default();
    for t in &tasks {
        let name = t["metadata"]["name"].as_str().unwrap();
        let status = &t["status"];
        assert!(finished(t), "{name} finished: {status}");
        let reason = status["conditions"][0]["reason"].as_str().unwrap_or_default();
        match status["phase"].as_str() {
            Some("Succeeded") => {
                assert_eq!(status["digests"]["md5"].as_str(), Some(md5[name].as_str()), "{name}");
                outcome.succeeded += 1;
            }
            _ => {
                assert!(
                    may_fail.contains(&reason),
                    "{name} failed with {reason}, not one of {may_fail:?}: {status}"
                );
                *outcome.failed.entry(reason.to_string()).or_default() += 1;
            }
        }
    }
    check_log(s, ns, &tasks);
    check_jobs(s, &tasks);
    check_objects(s, ns, &tasks);
    check_segments(s, since);
    eprintln!("{ns}: {} succeeded, failed {:?}", outcome.succeeded, outcome.failed);
    outcome
}

/// One line per task generation as a reader sees the log, saying what the status says.
fn check_log(s: &Setup, ns: &str, tasks: &[Value]) {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    let mut days: BTreeSet<String> = tasks
        .iter()
        .filter_map(|t| t["status"]["completionTime"].as_str())
        .map(|c| c[..10].to_string())
        .collect();
    days.insert(today);
    let log: String = days.iter().map(|d| results_log(s, d)).collect();
    let ours: Vec<&str> = log
        .lines()
        .filter(|l| l.split(' ').nth(1).is_some_and(|n| n.starts_with(&format!("{ns}/"))))
        .collect();
    for t in tasks {
        let name = t["metadata"]["name"].as_str().unwrap();
        let uid = t["metadata"]["uid"].as_str().unwrap();
        let generation = t["metadata"]["generation"].to_string();
        let lines: Vec<&&str> = ours
            .iter()
            .filter(|l| l.split(' ').nth(2) == Some(uid) && l.split(' ').nth(3) == Some(generation.as_str()))
            .collect();
        assert_eq!(lines.len(), 1, "one results-log line for {name}: {lines:?}");
        let fields: Vec<&str> = lines[0].split(' ').collect();
        assert_eq!(Some(fields[4]), t["status"]["phase"].as_str(), "{name}: {}", lines[0]);
        if fields[4] == "Succeeded" {
            assert_eq!(Some(fields[5]), t["status"]["digests"]["md5"].as_str(), "{name}");
        }
    }
    assert_eq!(
        ours.len(),
        tasks.len(),
        "no line of a task that is not there: {ours:#?}"
    );
}

/// A generation has at most one Job of its own and was carried by at most one batch (a batch
/// that ended without its result hands it to a Job of its own); an invalid spec has none.
fn check_jobs(s: &Setup, tasks: &[Value]) {
    let jobs = s.kubectl.get_json(&["jobs", "-n", OPERATOR_NAMESPACE]);
    let jobs = jobs["items"].as_array().unwrap();
    for t in tasks {
        let uid = t["metadata"]["uid"].as_str().unwrap();
        let generation = t["metadata"]["generation"].as_i64().unwrap();
        let generation_label = generation.to_string();
        let own: Vec<&str> = jobs
            .iter()
            .filter(|j| j["metadata"]["labels"]["taskyard.dev/batch"].is_null())
            .filter(|j| {
                let labels = &j["metadata"]["labels"];
                labels["taskyard.dev/uid"] == uid && labels["taskyard.dev/generation"] == generation_label.as_str()
            })
            .map(|j| j["metadata"]["name"].as_str().unwrap())
            .collect();
        let batches: Vec<&str> = jobs
            .iter()
            .filter(|j| carries(j, uid, generation))
            .map(|j| j["metadata"]["name"].as_str().unwrap())
            .collect();
        let name = t["metadata"]["name"].as_str().unwrap();
        assert!(own.len() <= 1, "{name} has {} Jobs of its own: {own:?}", own.len());
        assert!(
            batches.len() <= 1,
            "{name} was carried by {} batches: {batches:?}",
            batches.len()
        );
        let invalid = t["status"]["conditions"][0]["reason"] == "InvalidSpec";
        assert!(
            invalid || !own.is_empty() || !batches.is_empty(),
            "{name} ran in no Job"
        );
    }
}

fn carries(job: &Value, uid: &str, generation: i64) -> bool {
    let Some(list) = job["metadata"]["annotations"]["taskyard.dev/tasks"].as_str() else {
        return false;
    };
    let list: Value = serde_json::from_str(list).unwrap_or_default();
    list.as_array()
        .into_iter()
        .flatten()
        .any(|t| t["uid"] == uid && t["generation"] == generation)
}

/// Every object under the namespace's results is a whole result of the task its key names,
/// every succeeded task has one, and every results-log segment of the days is whole lines.
fn check_objects(s: &Setup, ns: &str, tasks: &[Value]) {
    let store = s.runtime.block_on(s.env.store());
    let keys: Vec<String> = s
        .runtime
        .block_on(store.list(&format!("tasks/{ns}/")).try_collect())
        .unwrap();
    for key in &keys {
        let body = s.runtime.block_on(store.get(key, 8 << 20)).unwrap().unwrap();
        assert!(key.ends_with("/result.json"), "an unexpected object {key}");
        let result: TaskResult = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{key} is not a whole result ({e}): {}", String::from_utf8_lossy(&body)));
        let id = &result.identity;
        let expected = format!(
            "tasks/{ns}/hashtask/{}/{}/{}/result.json",
            id.name, id.uid, id.generation
        );
        assert_eq!(key, &expected, "the result under {key} is another task's");
    }
    for t in tasks.iter().filter(|t| t["status"]["phase"] == "Succeeded") {
        let name = t["metadata"]["name"].as_str().unwrap();
        let uid = t["metadata"]["uid"].as_str().unwrap();
        let generation = &t["metadata"]["generation"];
        let key = format!("tasks/{ns}/hashtask/{name}/{uid}/{generation}/result.json");
        assert!(keys.contains(&key), "{name} succeeded without its result in the store");
    }
}

/// Every results-log segment written since `since` is whole lines.
fn check_segments(s: &Setup, since: jiff::Timestamp) {
    let store = s.runtime.block_on(s.env.store());
    let utc = |t: jiff::Timestamp| t.to_zoned(jiff::tz::TimeZone::UTC).date();
    let first = hash_log_segment_key(utc(since), since, "");
    let mut days = vec![utc(since)];
    if utc(jiff::Timestamp::now()) != days[0] {
        days.push(utc(jiff::Timestamp::now()));
    }
    for day in days {
        let keys: Vec<String> = s
            .runtime
            .block_on(store.list(&hash_log_day_prefix(day)).try_collect())
            .unwrap();
        for key in keys.into_iter().filter(|k| *k >= first) {
            let Some(body) = s.runtime.block_on(store.get(&key, 64 << 20)).unwrap() else {
                continue;
            };
            let text = String::from_utf8(body.to_vec()).unwrap_or_else(|_| panic!("{key} is not UTF-8"));
            assert!(text.ends_with('\n'), "{key} ends mid-line: {text:?}");
            for line in text.lines() {
                assert!(line.split(' ').count() >= 8, "{key} has a partial line: {line:?}");
            }
        }
    }
}

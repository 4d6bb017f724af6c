//! The HashTask results log on the real S3 server: 30 tasks finishing together leave exactly
//! 30 intact lines, an operator that crashed between the append and the status write (and so
//! appends again after its restart) adds no duplicate a reader sees, and listing a day's
//! segments pages through more than one ListObjectsV2 page in key order.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use taskyard_api::{Outcome, TaskIdentity};
use taskyard_common::hashlog::{self, LogLine};
use taskyard_common::keys::hash_log_day_prefix;
use taskyard_common::store::Store;
use taskyard_operator::leader::Fence;
use taskyard_operator::logwriter::LogWriter;
use taskyard_tests::cluster::ClusterEnv;

const TASKS: usize = 30;

fn line(run: &str, day: &str, i: usize) -> LogLine {
    // Every seventh task failed.
    let failed = i.is_multiple_of(7);
    LogLine {
        time: format!("{day}T12:00:{:02}Z", i % 60).parse().unwrap(),
        identity: TaskIdentity {
            namespace: "it-log".into(),
            name: format!("task-{i}"),
            uid: format!("{run}-uid-{i}"),
            generation: 1,
        },
        outcome: if failed { Outcome::Failed } else { Outcome::Succeeded },
        md5: (!failed).then(|| format!("{i:032x}")),
        size: (!failed).then_some(i as u64 * 1000),
        message: if failed {
            "GET http://x/ answered HTTP 404\nsecond line".into()
        } else {
            format!("md5 {i:032x}")
        },
    }
}

fn check_log(log: &str, run: &str) {
    let ours: Vec<&str> = log.lines().filter(|l| l.contains(&format!(" {run}-uid-"))).collect();
    assert_eq!(ours.len(), TASKS, "expected {TASKS} lines for run {run}:\n{log}");
    for i in 0..TASKS {
        let uid = format!("{run}-uid-{i}");
        let matching: Vec<_> = ours
            .iter()
            .filter(|l| l.split(' ').nth(2) == Some(uid.as_str()))
            .collect();
        assert_eq!(matching.len(), 1, "uid {uid}");
        let fields: Vec<&str> = matching[0].splitn(8, ' ').collect();
        assert_eq!(fields.len(), 8, "intact line: {}", matching[0]);
        assert_eq!(fields[1], format!("it-log/task-{i}"));
        assert_eq!(fields[3], "1");
        assert_eq!(fields[4], if i.is_multiple_of(7) { "Failed" } else { "Succeeded" });
    }
}

async fn read_log(store: &Store, day: &str) -> String {
    let lines: Vec<String> = hashlog::read_day(store, day.parse().unwrap())
        .try_collect()
        .await
        .unwrap();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Deletes every object under `prefix`, so a run starts from an empty day.
async fn delete_all(store: &Store, prefix: &str) {
    let keys: Vec<String> = store.list(prefix).try_collect().await.unwrap();
    futures::stream::iter(keys)
        .for_each_concurrent(16, |key| async move { store.delete(&key).await.unwrap() })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_tasks_finishing_together_leave_thirty_intact_lines_and_no_duplicates() {
    let env = ClusterEnv::load_store();
    let store = env.store().await;
    // A day of its own, so other tests do not share this log.
    let run = format!("run{}", std::process::id());
    let day = "2001-02-03";
    let prefix = hash_log_day_prefix(day.parse().unwrap());
    // The day's segments, and a single-object log an earlier version may have left.
    delete_all(&store, prefix.trim_end_matches('/')).await;

    let writer = LogWriter::spawn(store.clone(), Fence::unfenced());
    let appends: Vec<_> = (0..TASKS)
        .map(|i| {
            let writer = writer.clone();
            let line = line(&run, day, i);
            tokio::spawn(async move { writer.append(line).await })
        })
        .collect();
    for a in appends {
        a.await.unwrap().unwrap();
    }
    let log = read_log(&store, day).await;
    check_log(&log, &run);
    let segments: Vec<String> = store.list(&prefix).try_collect().await.unwrap();
    assert_eq!(
        segments.len() as u64,
        writer.batches(),
        "one segment per batch: {segments:?}"
    );

    // A restarted operator (a new writer) repeats the appends whose status it never wrote:
    // new segments, which the reader drops line by line.
    let restarted = LogWriter::spawn(store.clone(), Fence::unfenced());
    for i in (0..TASKS).step_by(3) {
        restarted.append(line(&run, day, i)).await.unwrap();
    }
    let after: Vec<String> = store.list(&prefix).try_collect().await.unwrap();
    assert!(segments.iter().all(|s| after.contains(s)), "a segment was replaced");
    assert_eq!(after.len(), segments.len() + TASKS.div_ceil(3));
    let log = read_log(&store, day).await;
    check_log(&log, &run);
    assert_eq!(log.lines().count(), TASKS);
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_pages_through_more_than_one_page_in_key_order() {
    let env = ClusterEnv::load_store();
    let store = env.store().await;
    // ListObjectsV2 answers at most 1000 keys a page.
    const KEYS: usize = 1005;
    let prefix = format!("it-list/run{}/", std::process::id());
    let keys: Vec<String> = (0..KEYS).map(|i| format!("{prefix}{i:05}")).collect();
    futures::stream::iter(keys.iter().rev())
        .for_each_concurrent(16, |key| {
            let store = &store;
            async move { store.put(key, Bytes::from_static(b"x"), "text/plain").await.unwrap() }
        })
        .await;
    let listed: Vec<String> = store.list(&prefix).try_collect().await.unwrap();
    delete_all(&store, &prefix).await;
    assert_eq!(listed, keys);
}

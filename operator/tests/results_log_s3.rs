//! The HashTask results log on the real S3 server: 30 tasks finishing together leave exactly
//! 30 intact lines, and an operator that crashed between the append and the status write
//! (and so appends again after its restart) adds no duplicate.

use taskyard_api::{Outcome, TaskIdentity};
use taskyard_common::hashlog::LogLine;
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

#[tokio::test(flavor = "multi_thread")]
async fn thirty_tasks_finishing_together_leave_thirty_intact_lines_and_no_duplicates() {
    let env = ClusterEnv::load();
    let store = env.store().await;
    // A day of its own, so other runs and tests do not share this log object.
    let run = format!("run{}", std::process::id());
    let day = "2001-02-03";
    let key = format!("logs/hashtasks/{day}.log");
    store.delete(&key).await.unwrap();

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
    let log = String::from_utf8(store.get(&key, 1 << 20).await.unwrap().unwrap().to_vec()).unwrap();
    check_log(&log, &run);

    // A restarted operator (a new writer) repeats the appends whose status it never wrote.
    let restarted = LogWriter::spawn(store.clone(), Fence::unfenced());
    for i in (0..TASKS).step_by(3) {
        restarted.append(line(&run, day, i)).await.unwrap();
    }
    let log = String::from_utf8(store.get(&key, 1 << 20).await.unwrap().unwrap().to_vec()).unwrap();
    check_log(&log, &run);
    assert_eq!(log.lines().count(), TASKS);
}

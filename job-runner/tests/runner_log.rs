//! `job-runner run` appends a HashTask's line as a new log segment, and `job-runner log`
//! prints the day once per task generation. Needs no cluster: the input is a stored object.

use std::path::Path;

use serde_json::Value;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn runner(args: &[&str]) -> Out {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_job-runner"))
        .args(args)
        .output()
        .await
        .expect("the runner starts");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// Runs a HashTask of `a.txt` in namespace default's upload area with a fixed uid; returns
/// its status.
async fn run_hash_task(store: &Path, uid: &str) -> Value {
    let task = store.with_extension(format!("{uid}.yaml"));
    let yaml = format!(
        "apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {{name: h-{uid}, uid: {uid}}}\nspec:\n  source: {{object: a.txt}}\n"
    );
    std::fs::write(&task, yaml).unwrap();
    let run = runner(&["run", "--store", store.to_str().unwrap(), task.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    serde_yaml::from_str(&run.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn run_appends_a_segment_and_log_prints_each_generation_once() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    // `job-runner run` puts a task without a namespace in "default".
    std::fs::create_dir_all(store.join("uploads/default")).unwrap();
    std::fs::write(store.join("uploads/default/a.txt"), b"").unwrap();
    // The same uid and generation twice, as a retried run would: two segments, one line.
    let first = run_hash_task(&store, "u1").await;
    run_hash_task(&store, "u1").await;
    run_hash_task(&store, "u2").await;
    let date = &first["completionTime"].as_str().unwrap()[..10];
    let segments = std::fs::read_dir(store.join(format!("logs/hashtasks/{date}")))
        .unwrap()
        .count();
    assert!(
        segments >= 2,
        "one segment per run (three, unless a run crossed midnight)"
    );

    let log = runner(&["log", "--store", store.to_str().unwrap(), "--date", date]).await;
    assert_eq!(log.code, 0, "{}", log.stderr);
    let lines: Vec<&str> = log.stdout.lines().collect();
    let uids: Vec<&str> = lines.iter().map(|l| l.split(' ').nth(2).unwrap()).collect();
    // u2 is on the next day only if the runs crossed midnight.
    assert!(uids == ["u1", "u2"] || uids == ["u1"], "{}", log.stdout);
    assert!(
        lines[0].contains(" default/h-u1 u1 1 Succeeded d41d8cd98f00b204e9800998ecf8427e 0 "),
        "{}",
        log.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn log_explains_a_bad_date_and_a_missing_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().to_str().unwrap();
    let bad = runner(&["log", "--store", store, "--date", "2026-13-01"]).await;
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("error: --date 2026-13-01 is not a date: use YYYY-MM-DD"),
        "{}",
        bad.stderr
    );

    let missing = tmp.path().join("nope");
    let missing = runner(&["log", "--store", missing.to_str().unwrap()]).await;
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("nope does not exist"), "{}", missing.stderr);

    let empty = runner(&["log", "--store", store, "--date", "2026-11-28"]).await;
    assert_eq!((empty.code, empty.stdout.as_str()), (0, ""));
    assert!(
        empty.stderr.contains("no results log for 2026-11-28"),
        "{}",
        empty.stderr
    );
}

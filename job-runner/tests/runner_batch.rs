//! A batch Job's runner (`job-runner exec` with several tasks and `batch` set) against the real
//! S3 server and a loopback web server: every task gets its own result, its own retries and
//! a done report; one task's failure fails no other; the exit code is 0 once every result is
//! written, whatever the outcomes.

mod support;

use std::collections::HashMap;

use bytes::Bytes;
use support::{Reply, Server};
use taskyard_api::{DoneReport, Outcome, RunnerInput, TaskIdentity, TaskKind, TaskResult};
use taskyard_tests::cluster::ClusterEnv;
use taskyard_tests::files::coreutils_digest;

async fn result(env: &ClusterEnv, name: &str, uid: &str) -> TaskResult {
    let id = TaskIdentity {
        namespace: "it".into(),
        name: name.into(),
        uid: uid.into(),
        generation: 1,
    };
    env.runner_result(TaskKind::HashTask, &id).await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_task_of_a_batch_ends_on_its_own_with_its_own_retries() {
    let env = ClusterEnv::load_store();
    let store = env.store().await;
    let run = std::process::id();
    let server = Server::start(HashMap::from([
        (
            "/ok".to_string(),
            Reply::Body("application/octet-stream", Bytes::from_static(b"hello batch")),
        ),
        ("/busy".to_string(), Reply::Status(503)),
    ]))
    .await;
    let object = format!("batch-{run}.bin");
    store
        .put(
            &format!("uploads/it/{object}"),
            Bytes::from_static(b"stored"),
            "application/octet-stream",
        )
        .await
        .unwrap();
    // name, source, retries
    let tasks = [
        ("stored", serde_json::json!({"object": object}), 0),
        ("fetched", serde_json::json!({"url": server.url("/ok")}), 0),
        ("gone", serde_json::json!({"url": server.url("/missing")}), 3),
        ("busy", serde_json::json!({"url": server.url("/busy")}), 1),
    ];
    let uid = |name: &str| format!("batch-{name}-{run}");
    let report_key = format!("batches/test-{run}/done.json");
    let input: RunnerInput = serde_json::from_value(serde_json::json!({
        "tasks": tasks.iter().map(|(name, source, retries)| serde_json::json!({
            "identity": {"namespace": "it", "name": name, "uid": uid(name), "generation": 1},
            "kind": "HashTask",
            "spec": {"source": source, "algorithms": ["md5"], "retries": retries, "timeoutSeconds": 60}
        })).collect::<Vec<_>>(),
        "batch": {"reportKey": report_key},
    }))
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_job-runner"))
        .arg("exec")
        .args(["--allow-network", "127.0.0.0/8"])
        .env("TASKYARD_TASKS", serde_json::to_string(&input).unwrap())
        .env("TASKYARD_S3_ENDPOINT", env.get("TASKYARD_S3_ENDPOINT"))
        .env("TASKYARD_S3_BUCKET", env.get("TASKYARD_S3_BUCKET"))
        .env("TASKYARD_S3_FORCE_PATH_STYLE", "true")
        .env("AWS_ACCESS_KEY_ID", env.get("AWS_ACCESS_KEY_ID"))
        .env("AWS_SECRET_ACCESS_KEY", env.get("AWS_SECRET_ACCESS_KEY"))
        .env("TASKYARD_TERMINATION_LOG", tmp.path().join("termination"))
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "every result is written: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let stored = result(&env, "stored", &uid("stored")).await;
    assert_eq!(stored.outcome, Outcome::Succeeded, "{stored:?}");
    assert_eq!(stored.attempts, Some(1));
    let fetched = result(&env, "fetched", &uid("fetched")).await;
    assert_eq!(fetched.outcome, Outcome::Succeeded, "{fetched:?}");
    let Some(taskyard_api::TaskOutput::Hash(hash)) = &fetched.output else {
        panic!("no digests: {fetched:?}")
    };
    let served = tmp.path().join("served");
    std::fs::write(&served, b"hello batch").unwrap();
    assert_eq!(hash.digests["md5"], coreutils_digest("md5", &served));

    let gone = result(&env, "gone", &uid("gone")).await;
    assert_eq!(gone.outcome, Outcome::Failed);
    assert_eq!(gone.attempts, Some(1), "a 404 is not retried, whatever the retries");
    assert_eq!(server.hits("/missing"), 1);
    let busy = result(&env, "busy", &uid("busy")).await;
    assert_eq!(busy.outcome, Outcome::Failed);
    assert_eq!(
        busy.attempts,
        Some(2),
        "a 503 is retried once (retries: 1), in the Pod: {busy:?}"
    );
    assert_eq!(server.hits("/busy"), 2);

    let termination = std::fs::read_to_string(tmp.path().join("termination")).unwrap();
    assert!(
        termination.contains("it/gone") && termination.contains("it/busy"),
        "{termination}"
    );

    let report = store
        .get(&report_key, 1 << 20)
        .await
        .unwrap()
        .expect("the done report is written");
    let mut reported = serde_json::from_slice::<DoneReport>(&report).unwrap().generations();
    reported.sort();
    let mut expected: Vec<(String, i64)> = tasks.iter().map(|(n, _, _)| (uid(n), 1)).collect();
    expected.sort();
    assert_eq!(
        reported, expected,
        "each task is reported done once its result is written"
    );
}

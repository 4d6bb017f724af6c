//! The runner (`job-runner exec`, the real binary) with no credentials of Taskyard's own: it
//! takes the store's keys from AWS's default chain, first from the environment, then from a
//! web-identity token file exchanged at STS, as a pod on EKS does. STS is a loopback stand-in
//! (taskyard_tests::sts) that hands out the test store's keys and records the token it got.

use std::path::Path;

use bytes::Bytes;
use taskyard_api::{Outcome, RunnerInput, TaskResult};
use taskyard_tests::cluster::ClusterEnv;
use taskyard_tests::sts::{ChainSource, IssuedKeys, StsServer, clear_aws_environment};

struct Run {
    code: i32,
    stderr: String,
}

/// Runs one task, with only the chain's sources the case names: no AWS variable of the test's
/// own environment, no profile files, no instance metadata.
async fn exec(env: &ClusterEnv, home: &Path, tasks: &str, credentials: ChainSource<'_>) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_job-runner"));
    clear_aws_environment(&mut command, home);
    command
        .arg("exec")
        .env("TASKYARD_TASKS", tasks)
        .env("TASKYARD_S3_ENDPOINT", env.get("TASKYARD_S3_ENDPOINT"))
        .env("TASKYARD_S3_BUCKET", env.get("TASKYARD_S3_BUCKET"))
        .env("TASKYARD_S3_FORCE_PATH_STYLE", "true")
        .env("TASKYARD_TERMINATION_LOG", home.join("termination"));
    credentials.apply(&mut command);
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), command.output())
        .await
        .expect("the runner finished within 120 s")
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A HashTask of a store object just uploaded (with the test's own keys).
async fn hash_task(env: &ClusterEnv, uid: &str) -> String {
    let key = format!("uploads/it/{uid}.bin");
    env.store()
        .await
        .put(&key, Bytes::from(vec![7u8; 4096]), "application/octet-stream")
        .await
        .unwrap();
    let input: RunnerInput = serde_json::from_value(serde_json::json!({"tasks": [{
        "identity": {"namespace": "it", "name": "creds", "uid": uid, "generation": 1},
        "kind": "HashTask",
        "spec": {"source": {"object": format!("{uid}.bin")}, "algorithms": ["sha256"], "retries": 0, "timeoutSeconds": 60}
    }]}))
    .unwrap();
    serde_json::to_string(&input).unwrap()
}

async fn result(env: &ClusterEnv, uid: &str) -> Option<TaskResult> {
    let key = format!("tasks/it/hashtask/creds/{uid}/1/result.json");
    let body = env.store().await.get(&key, 1 << 20).await.unwrap()?;
    Some(serde_json::from_slice(&body).unwrap())
}

fn assert_hashed(r: Option<TaskResult>) {
    let r = r.expect("result.json was written");
    assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
    let Some(taskyard_api::TaskOutput::Hash(out)) = r.output else {
        panic!("no hash output: {r:?}")
    };
    assert_eq!(out.size, 4096);
}

#[tokio::test(flavor = "multi_thread")]
async fn takes_the_store_keys_from_the_environment() {
    let env = ClusterEnv::load_store();
    let home = tempfile::tempdir().unwrap();
    let uid = format!("creds-env-{}", std::process::id());
    let tasks = hash_task(&env, &uid).await;
    let keys = ChainSource::Environment {
        id: env.get("AWS_ACCESS_KEY_ID"),
        secret: env.get("AWS_SECRET_ACCESS_KEY"),
    };
    let run = exec(&env, home.path(), &tasks, keys).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_hashed(result(&env, &uid).await);
}

/// Control for the case above: wrong keys in the environment are what the store sees, and the
/// runner says it could not reach the store, so the passing case did use the environment's.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_keys_in_the_environment_are_refused_by_the_store() {
    let env = ClusterEnv::load_store();
    let home = tempfile::tempdir().unwrap();
    let uid = format!("creds-env-wrong-{}", std::process::id());
    let tasks = hash_task(&env, &uid).await;
    let keys = ChainSource::Environment {
        id: env.get("AWS_ACCESS_KEY_ID"),
        secret: "not-the-secret",
    };
    let run = exec(&env, home.path(), &tasks, keys).await;
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("StatusCode(403)"), "{}", run.stderr);
    assert!(result(&env, &uid).await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn exchanges_a_web_identity_token_file_at_sts_for_the_store_keys() {
    let env = ClusterEnv::load_store();
    let home = tempfile::tempdir().unwrap();
    let uid = format!("creds-wi-{}", std::process::id());
    let tasks = hash_task(&env, &uid).await;
    let sts = StsServer::start(
        "127.0.0.1".parse().unwrap(),
        IssuedKeys {
            access_key_id: env.get("AWS_ACCESS_KEY_ID").into(),
            secret_access_key: env.get("AWS_SECRET_ACCESS_KEY").into(),
            session_token: format!("session-{uid}"),
        },
    )
    .await;
    // A token as the kubelet projects it: a JWT, which the runner passes on unread.
    let token = format!("eyJhbGciOiJSUzI1NiJ9.dGVzdA.sig-{uid}");
    let token_file = home.path().join("token");
    std::fs::write(&token_file, &token).unwrap();
    let role_arn = "arn:aws:iam::123456789012:role/taskyard-runner";
    let keys = ChainSource::WebIdentity {
        role_arn,
        token_file: &token_file,
        sts: &sts.url(),
    };
    let run = exec(&env, home.path(), &tasks, keys).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_hashed(result(&env, &uid).await);
    let calls = sts.calls();
    assert!(!calls.is_empty(), "the runner never called STS");
    for call in &calls {
        assert_eq!(
            (call.role_arn.as_str(), call.token.as_str()),
            (role_arn, token.as_str())
        );
    }
}

/// Control for the case above: when STS hands out keys the store does not know, the runner
/// fails, so the passing case did use STS's keys and not some other source.
#[tokio::test(flavor = "multi_thread")]
async fn keys_from_sts_the_store_does_not_know_are_refused() {
    let env = ClusterEnv::load_store();
    let home = tempfile::tempdir().unwrap();
    let uid = format!("creds-wi-wrong-{}", std::process::id());
    let tasks = hash_task(&env, &uid).await;
    let sts = StsServer::start(
        "127.0.0.1".parse().unwrap(),
        IssuedKeys {
            access_key_id: "ASIAUNKNOWN".into(),
            secret_access_key: "unknown-secret".into(),
            session_token: "session".into(),
        },
    )
    .await;
    let token_file = home.path().join("token");
    std::fs::write(&token_file, "token").unwrap();
    let keys = ChainSource::WebIdentity {
        role_arn: "arn:aws:iam::123456789012:role/taskyard-runner",
        token_file: &token_file,
        sts: &sts.url(),
    };
    let run = exec(&env, home.path(), &tasks, keys).await;
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("StatusCode(403)"), "{}", run.stderr);
    assert!(!sts.calls().is_empty(), "the runner never called STS");
    assert!(result(&env, &uid).await.is_none());
}

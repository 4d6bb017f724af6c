//! The operator's store connection with no credentials of Taskyard's own (no
//! `store.credentialsSecret`): `taskyard-operator --check-store`, the real binary, connects
//! exactly as the running operator does and lists the bucket once. The keys come from the
//! environment, then from a web-identity token file exchanged at a loopback STS stand-in, as
//! on EKS. (The rest of the operator needs a Kubernetes API server; e2e_credentials.rs runs it
//! whole on the local cluster.)

use std::path::Path;

use taskyard_tests::cluster::ClusterEnv;
use taskyard_tests::sts::{ChainSource, IssuedKeys, StsServer, clear_aws_environment};

struct Run {
    code: i32,
    output: String,
}

async fn check_store(env: &ClusterEnv, home: &Path, credentials: ChainSource<'_>) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_taskyard-operator"));
    clear_aws_environment(&mut command, home);
    command
        .arg("--check-store")
        .env("TASKYARD_STORE_ENDPOINT", env.get("TASKYARD_S3_ENDPOINT"))
        .env("TASKYARD_STORE_BUCKET", env.get("TASKYARD_S3_BUCKET"))
        .env("TASKYARD_STORE_FORCE_PATH_STYLE", "true")
        .env("TASKYARD_STORE_CREDENTIALS_SECRET", "")
        .env("TASKYARD_RUNNER_IMAGE", "runner:test");
    credentials.apply(&mut command);
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), command.output())
        .await
        .expect("--check-store finished within 120 s")
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn sts_keys(id: &str, secret: &str) -> IssuedKeys {
    IssuedKeys {
        access_key_id: id.into(),
        secret_access_key: secret.into(),
        session_token: format!("session-{}", std::process::id()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reaches_the_store_with_keys_from_the_environment() {
    let env = ClusterEnv::load_store();
    let home = tempfile::tempdir().unwrap();
    let keys = ChainSource::Environment {
        id: env.get("AWS_ACCESS_KEY_ID"),
        secret: env.get("AWS_SECRET_ACCESS_KEY"),
    };
    let run = check_store(&env, home.path(), keys).await;
    assert_eq!(run.code, 0, "{}", run.output);
    assert!(run.output.contains("is reachable"), "{}", run.output);
}

#[tokio::test(flavor = "multi_thread")]
async fn says_what_to_check_when_the_store_refuses_the_environment_keys() {
    let env = ClusterEnv::load_store();
    let home = tempfile::tempdir().unwrap();
    let keys = ChainSource::Environment {
        id: env.get("AWS_ACCESS_KEY_ID"),
        secret: "not-the-secret",
    };
    let run = check_store(&env, home.path(), keys).await;
    assert_eq!(run.code, 1, "{}", run.output);
    assert!(
        run.output.contains("the object store refused") && run.output.contains("AWS_WEB_IDENTITY_TOKEN_FILE"),
        "{}",
        run.output
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reaches_the_store_with_a_web_identity_token_exchanged_at_sts() {
    let env = ClusterEnv::load_store();
    let home = tempfile::tempdir().unwrap();
    let sts = StsServer::start(
        "127.0.0.1".parse().unwrap(),
        sts_keys(env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")),
    )
    .await;
    let token = format!("eyJhbGciOiJSUzI1NiJ9.b3BlcmF0b3I.sig-{}", std::process::id());
    let token_file = home.path().join("token");
    std::fs::write(&token_file, &token).unwrap();
    let role_arn = "arn:aws:iam::123456789012:role/taskyard-operator";
    let keys = ChainSource::WebIdentity {
        role_arn,
        token_file: &token_file,
        sts: &sts.url(),
    };
    let run = check_store(&env, home.path(), keys).await;
    assert_eq!(run.code, 0, "{}", run.output);
    let calls = sts.calls();
    assert!(!calls.is_empty(), "the operator never called STS");
    for call in &calls {
        assert_eq!(
            (call.role_arn.as_str(), call.token.as_str()),
            (role_arn, token.as_str())
        );
    }
}

/// Control for the case above: keys from STS that the store does not know fail the check.
#[tokio::test(flavor = "multi_thread")]
async fn fails_when_sts_hands_out_keys_the_store_does_not_know() {
    let env = ClusterEnv::load_store();
    let home = tempfile::tempdir().unwrap();
    let sts = StsServer::start("127.0.0.1".parse().unwrap(), sts_keys("ASIAUNKNOWN", "unknown")).await;
    let token_file = home.path().join("token");
    std::fs::write(&token_file, "token").unwrap();
    let keys = ChainSource::WebIdentity {
        role_arn: "arn:aws:iam::123456789012:role/taskyard-operator",
        token_file: &token_file,
        sts: &sts.url(),
    };
    let run = check_store(&env, home.path(), keys).await;
    assert_eq!(run.code, 1, "{}", run.output);
    assert!(!sts.calls().is_empty(), "the operator never called STS");
}

//! The runner in cluster mode (`job-runner exec`) against the real S3 server: input from the
//! bucket, result.json written back, failures in the termination message.

use bytes::Bytes;
use taskyard_api::{Outcome, RunnerInput, TaskIdentity, TaskKind, TaskResult};
use taskyard_tests::cluster::{ClusterEnv, StoreKind};
use taskyard_tests::files::{coreutils_digest, write_pattern};

async fn exec(env: &ClusterEnv, tasks: &str, termination_log: &std::path::Path) -> i32 {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_job-runner"))
        .arg("exec")
        .env("TASKYARD_TASKS", tasks)
        .env("TASKYARD_S3_ENDPOINT", env.get("TASKYARD_S3_ENDPOINT"))
        .env("TASKYARD_S3_BUCKET", env.get("TASKYARD_S3_BUCKET"))
        .env("TASKYARD_S3_FORCE_PATH_STYLE", "true")
        .env("AWS_ACCESS_KEY_ID", env.get("AWS_ACCESS_KEY_ID"))
        .env("AWS_SECRET_ACCESS_KEY", env.get("AWS_SECRET_ACCESS_KEY"))
        .env("TASKYARD_TERMINATION_LOG", termination_log)
        .output()
        .await
        .unwrap();
    out.status.code().unwrap_or(-1)
}

fn input(uid: &str, object: &str) -> String {
    let input: RunnerInput = serde_json::from_value(serde_json::json!({"tasks": [{
        "identity": {"namespace": "it", "name": "s3", "uid": uid, "generation": 1},
        "kind": "HashTask",
        "spec": {"source": {"object": object}, "algorithms": ["md5", "sha256"], "retries": 0, "timeoutSeconds": 60}
    }]}))
    .unwrap();
    serde_json::to_string(&input).unwrap()
}

fn identity(name: &str, uid: &str) -> TaskIdentity {
    TaskIdentity {
        namespace: "it".into(),
        name: name.into(),
        uid: uid.into(),
        generation: 1,
    }
}

async fn result(env: &ClusterEnv, uid: &str) -> TaskResult {
    env.runner_result(TaskKind::HashTask, &identity("s3", uid)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn hashes_a_store_object_and_writes_the_result() {
    let env = ClusterEnv::load_store();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("upload");
    write_pattern(&file, 3_000_000, 42);
    let uid = format!("s3-ok-{}", std::process::id());
    let key = format!("uploads/it/{uid}.bin");
    env.store()
        .await
        .put(
            &key,
            Bytes::from(std::fs::read(&file).unwrap()),
            "application/octet-stream",
        )
        .await
        .unwrap();

    // The object is named inside the task's namespace ("it") upload area.
    let object = format!("{uid}.bin");
    assert_eq!(
        exec(&env, &input(&uid, &object), &tmp.path().join("termination")).await,
        0
    );
    let r = result(&env, &uid).await;
    assert_eq!(r.outcome, Outcome::Succeeded);
    let Some(taskyard_api::TaskOutput::Hash(out)) = r.output else {
        panic!("no hash output: {r:?}")
    };
    assert_eq!(out.size, 3_000_000);
    assert_eq!(out.digests["md5"], coreutils_digest("md5", &file));
    assert_eq!(out.digests["sha256"], coreutils_digest("sha256", &file));
    assert!(!tmp.path().join("termination").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_object_fails_with_a_result_and_a_termination_message() {
    let env = ClusterEnv::load_store();
    let tmp = tempfile::tempdir().unwrap();
    let uid = format!("s3-missing-{}", std::process::id());
    let termination = tmp.path().join("termination");
    // A missing object fails the same way on every try: exit 0, so the Job is not retried.
    assert_eq!(exec(&env, &input(&uid, "not-there.bin"), &termination).await, 0);
    let r = result(&env, &uid).await;
    assert_eq!((r.outcome, r.reason.as_str()), (Outcome::Failed, "ObjectNotFound"));
    assert!(r.message.contains("uploads/it/not-there.bin"), "{}", r.message);
    let message = std::fs::read_to_string(&termination).unwrap();
    assert!(
        message.contains("ObjectNotFound") && message.contains("not-there.bin"),
        "{message}"
    );
}

/// Two runners storing the same images in the real bucket at once: both succeed, and every
/// image ends as one object at its shared key. (Which runner reports `Stored` is decided by
/// the server's `If-None-Match: *`; s3s-fs checks it before writing rather than atomically,
/// so both may report it for an image; RGW decides it atomically, and there the test checks
/// exact attribution, as the directory store's test does.)
#[tokio::test(flavor = "multi_thread")]
async fn two_runners_storing_the_same_images_at_once_leave_one_object_each() {
    let env = ClusterEnv::load_store();
    let tmp = tempfile::tempdir().unwrap();
    taskyard_tests::images::write_site(tmp.path());
    let http = taskyard_tests::http::FixtureServer::start(env.host_ip(), tmp.path().to_path_buf()).await;
    let names = ["a.png", "b.jpg", "c.gif", "small.jpg", "large.jpg", "hero.webp"];
    let page: String = names.iter().map(|n| format!("<img src=\"{n}\">")).collect();
    std::fs::write(tmp.path().join("page.html"), page).unwrap();
    let url = http.url("/files/page.html");
    let task = |uid: &str| {
        serde_json::json!({"tasks": [{
            "identity": {"namespace": "it", "name": "img", "uid": uid, "generation": 1},
            "kind": "ImageTask",
            "spec": {"source": {"page": url}, "maxImages": 100, "retries": 0, "timeoutSeconds": 60}
        }]})
        .to_string()
    };
    let run = |uid: String| {
        let env = env.clone();
        let input = task(&uid);
        let termination = tmp.path().join(format!("termination-{uid}"));
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_job-runner"))
                .arg("exec")
                .env("TASKYARD_TASKS", input)
                .env("TASKYARD_S3_ENDPOINT", env.get("TASKYARD_S3_ENDPOINT"))
                .env("TASKYARD_S3_BUCKET", env.get("TASKYARD_S3_BUCKET"))
                .env("TASKYARD_S3_FORCE_PATH_STYLE", "true")
                .env("TASKYARD_ALLOWED_NETWORKS", format!("{}/32", env.host_ip()))
                .env("AWS_ACCESS_KEY_ID", env.get("AWS_ACCESS_KEY_ID"))
                .env("AWS_SECRET_ACCESS_KEY", env.get("AWS_SECRET_ACCESS_KEY"))
                .env("TASKYARD_TERMINATION_LOG", termination)
                .output()
                .await
                .unwrap();
            (out.status.code(), uid)
        }
    };
    let id = std::process::id();
    let (a, b) = tokio::join!(run(format!("img-a-{id}")), run(format!("img-b-{id}")));
    assert_eq!((a.0, b.0), (Some(0), Some(0)));
    let store = env.store().await;
    let mut stored = 0;
    for uid in [a.1, b.1] {
        let r = env.runner_result(TaskKind::ImageTask, &identity("img", &uid)).await;
        let Some(taskyard_api::TaskOutput::Image(out)) = r.output else {
            panic!("no image output: {r:?}")
        };
        assert_eq!(out.counts.found, 6);
        assert_eq!(out.counts.stored + out.counts.reused, 6);
        assert_eq!(out.counts.failed, 0);
        stored += out.counts.stored;
    }
    // RGW's conditional create is atomic (measured: one success of six racing writers, every
    // time), so exactly one runner stored each image.
    if env.store_kind() == StoreKind::Rgw {
        assert_eq!(stored, 6, "each image is reported Stored by exactly one runner");
    }
    for name in names {
        let source = http.url(&format!("/files/{name}"));
        let prefix = taskyard_common::keys::image_key(taskyard_common::keys::ImageScope::Cluster, &source, "");
        // Exactly one object per image through the S3 API, whatever the race.
        let keys: Vec<String> = futures::TryStreamExt::try_collect(store.list(&prefix)).await.unwrap();
        assert_eq!(keys.len(), 1, "{source}: one object, found {keys:?}");
        // s3s-fs keeps objects as files: no stray file (a half-written temporary) beside it.
        let Some(root) = env.s3_root() else { continue };
        let bucket_dir = std::path::Path::new(root).join(env.get("TASKYARD_S3_BUCKET"));
        let dir = bucket_dir.join(std::path::Path::new(&keys[0]).parent().unwrap());
        let file_prefix = std::path::Path::new(&prefix)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let objects = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&file_prefix)
            })
            .count();
        assert_eq!(objects, 1, "{source}: one object");
    }
}

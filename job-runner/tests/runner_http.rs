//! The runner's HashTask against a real HTTP server (`job-runner run`, a directory store):
//! digests of files of every size against coreutils, and every way a fetch can go wrong.

use std::path::Path;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use serde_json::Value;
use taskyard_common::hashlog;
use taskyard_common::store::{DirStore, Store};
use taskyard_tests::cluster::ClusterEnv;
use taskyard_tests::files::{coreutils_digest, write_pattern};
use taskyard_tests::http::FixtureServer;
use taskyard_tests::local_run::run_task;

/// Runs `job-runner run` on a HashTask; returns (exit code, status, stderr).
async fn run_hash_task(store: &Path, url: &str, extra: &[&str]) -> (i32, Value, String) {
    let yaml = format!(
        "apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {{name: t, namespace: it}}\nspec:\n  source: {{url: \"{url}\"}}\n  algorithms: [md5, sha1, sha256, sha512]\n"
    );
    let run = run_task(env!("CARGO_BIN_EXE_job-runner"), store, &yaml, extra).await;
    (run.code, run.status, run.stderr)
}

fn condition(status: &Value) -> (&str, &str) {
    let c = &status["conditions"][0];
    (
        c["reason"].as_str().unwrap_or_default(),
        c["message"].as_str().unwrap_or_default(),
    )
}

async fn server(dir: &Path) -> FixtureServer {
    FixtureServer::start(ClusterEnv::load().host_ip(), dir.to_path_buf()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn digests_files_of_every_size_like_coreutils() {
    let tmp = tempfile::tempdir().unwrap();
    let files = tmp.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let sizes: [(&str, u64); 4] = [
        ("zero", 0),
        ("one", 1),
        ("three-mb", 3_000_000),
        ("big", (64 << 20) + 7),
    ];
    for (i, (name, size)) in sizes.iter().enumerate() {
        write_pattern(&files.join(name), *size, 1000 + i as u64);
    }
    let http = server(&files).await;
    let store = tmp.path().join("store");
    for (name, size) in sizes {
        let (code, status, stderr) = run_hash_task(&store, &http.url(&format!("/files/{name}")), &[]).await;
        assert_eq!(code, 0, "{name}: {status:?} {stderr}");
        assert_eq!(status["phase"], "Succeeded");
        assert_eq!(status["size"].as_u64(), Some(size), "{name}");
        for algorithm in ["md5", "sha1", "sha256", "sha512"] {
            assert_eq!(
                status["digests"][algorithm].as_str().unwrap(),
                coreutils_digest(algorithm, &files.join(name)),
                "{algorithm} of {name}"
            );
        }
    }
    // Without a cluster the runner writes the results log itself: one line per task, in the
    // log of the day (or two, across midnight) the tasks finished.
    let dir_store = Store::Dir(DirStore::new(&store));
    let mut log = String::new();
    for day in std::fs::read_dir(store.join("logs/hashtasks")).unwrap() {
        let day = day.unwrap().file_name().to_str().unwrap().parse().unwrap();
        let lines: Vec<String> = hashlog::read_day(&dir_store, day).try_collect().await.unwrap();
        log.extend(lines.iter().map(|l| format!("{l}\n")));
    }
    assert_eq!(log.lines().count(), 4, "{log}");
    assert!(
        log.lines().all(|l| l.contains(" it/t ") && l.contains(" Succeeded ")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_file_fails_with_the_http_status() {
    let tmp = tempfile::tempdir().unwrap();
    let http = server(tmp.path()).await;
    let (code, status, _) = run_hash_task(&tmp.path().join("store"), &http.url("/status/404"), &[]).await;
    assert_eq!(code, 1);
    assert_eq!(status["phase"], "Failed");
    let (reason, message) = condition(&status);
    assert_eq!(reason, "FetchFailed");
    assert!(message.contains("HTTP 404"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_server_fails_instead_of_hanging() {
    let tmp = tempfile::tempdir().unwrap();
    let http = server(tmp.path()).await;
    let started = Instant::now();
    let (code, status, _) = run_hash_task(
        &tmp.path().join("store"),
        &http.url("/stall"),
        &["--read-timeout-seconds", "2"],
    )
    .await;
    assert_eq!(code, 1);
    let (reason, message) = condition(&status);
    assert_eq!(reason, "FetchTimeout", "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_into_loopback_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("secret"), b"internal").unwrap();
    let http = server(tmp.path()).await;
    // A loopback service the redirect points at; the runner must never connect to it.
    let inner = FixtureServer::start("127.0.0.1".parse().unwrap(), tmp.path().to_path_buf()).await;
    let target = inner.url("/files/secret");
    let (code, status, _) = run_hash_task(
        &tmp.path().join("store"),
        &http.url(&format!("/redirect?to={target}")),
        &[],
    )
    .await;
    assert_eq!(code, 1);
    let (reason, message) = condition(&status);
    assert_eq!(reason, "BlockedAddress", "{message}");
    assert!(
        message.contains("127.0.0.1") && message.contains("loopback"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_size_limit_names_its_setting() {
    let tmp = tempfile::tempdir().unwrap();
    write_pattern(&tmp.path().join("f"), 10_000, 7);
    let http = server(tmp.path()).await;
    let (code, status, _) = run_hash_task(
        &tmp.path().join("store"),
        &http.url("/files/f"),
        &["--max-hash-bytes", "4096"],
    )
    .await;
    assert_eq!(code, 1);
    let (reason, message) = condition(&status);
    assert_eq!(reason, "LimitExceeded");
    assert!(
        message.contains("4096") && message.contains("--max-hash-bytes"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_exit_2_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: v1\nkind: Pod\n").unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_job-runner"))
        .args([
            "run",
            "--store",
            tmp.path().join("s").to_str().unwrap(),
            bad.to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("apiVersion"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

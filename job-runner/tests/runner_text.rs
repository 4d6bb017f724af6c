//! TextTask against a real HTTP server (`job-runner run`, a directory store): golden texts
//! for pages in UTF-8, windows-1251 (declared in a meta tag, or only in the HTTP header),
//! Shift_JIS (declared nowhere), and a text/plain file.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};
use taskyard_tests::cluster::{ClusterEnv, repo_root};
use taskyard_tests::http::FixtureServer;
use taskyard_tests::local_run::run_task;

fn fixtures() -> PathBuf {
    repo_root().join("job-runner/tests/fixtures/text")
}

fn golden(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap()
}

fn text_task(source: &str) -> String {
    format!("apiVersion: taskyard.dev/v1alpha1\nkind: TextTask\nmetadata: {{name: page}}\nspec:\n  source: {source}\n")
}

/// Runs a TextTask; returns (exit code, status, the stored text).
async fn run_text_task(store: &Path, source: &str) -> (i32, Value, Option<String>) {
    let run = run_task(env!("CARGO_BIN_EXE_job-runner"), store, &text_task(source), &[]).await;
    let text = run.status["text"]["key"]
        .as_str()
        .map(|key| std::fs::read_to_string(store.join(key)).unwrap());
    (run.code, run.status, text)
}

#[tokio::test(flavor = "multi_thread")]
async fn golden_texts_for_every_page_and_charset() {
    let http = FixtureServer::start(ClusterEnv::load().host_ip(), fixtures()).await;
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "article.html",
            "text/html",
            "article.txt",
            Some("Field notes & sketches"),
        ),
        ("cp1251-meta.html", "text/html", "cp1251.txt", Some("Новости")),
        (
            "cp1251-header.html",
            "text/html;%20charset=windows-1251",
            "cp1251.txt",
            Some("Новости"),
        ),
        ("sjis.html", "text/html", "sjis.txt", Some("猫")),
        ("plain.txt.in", "text/plain", "plain.txt.in", None),
    ];
    for (i, (page, content_type, expected, title)) in cases.into_iter().enumerate() {
        let url = http.url(&format!("/files/{page}?type={content_type}"));
        let store = tmp.path().join(format!("store-{i}"));
        let (code, status, text) = run_text_task(&store, &format!("{{page: \"{url}\"}}")).await;
        assert_eq!(code, 0, "{page}: {status:?}");
        let want = golden(expected);
        let text = text.expect("the text was stored");
        assert_eq!(text, want, "{page}");
        let summary = &status["text"];
        assert_eq!(
            summary["characters"].as_u64(),
            Some(want.chars().count() as u64),
            "{page}"
        );
        assert_eq!(
            summary["words"].as_u64(),
            Some(want.split_whitespace().count() as u64),
            "{page}"
        );
        assert_eq!(summary["lines"].as_u64(), Some(want.lines().count() as u64), "{page}");
        assert_eq!(
            summary["sha256"].as_str().unwrap(),
            hex::encode(Sha256::digest(want.as_bytes()))
        );
        assert!(
            summary["key"].as_str().unwrap().starts_with("texts/default/page/"),
            "{summary}"
        );
        assert_eq!(status["title"].as_str(), title, "{page}");
        let preview: String = want.chars().take(200).collect();
        assert_eq!(status["preview"].as_str(), Some(preview.as_str()), "{page}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn text_of_a_stored_document() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    // `job-runner run` puts a task without a namespace in "default".
    std::fs::create_dir_all(store.join("uploads/default")).unwrap();
    std::fs::copy(
        fixtures().join("cp1251-meta.html"),
        store.join("uploads/default/news.html"),
    )
    .unwrap();
    let (code, status, text) = run_text_task(&store, "{object: news.html}").await;
    assert_eq!(code, 0, "{status:?}");
    assert_eq!(text.unwrap(), golden("cp1251.txt"));
    assert_eq!(status["title"], "Новости");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_over_the_size_limit_names_the_setting() {
    let http = FixtureServer::start(ClusterEnv::load().host_ip(), fixtures()).await;
    let tmp = tempfile::tempdir().unwrap();
    let url = http.url("/files/article.html");
    let yaml = text_task(&format!("{{page: \"{url}\"}}"));
    let run = run_task(
        env!("CARGO_BIN_EXE_job-runner"),
        &tmp.path().join("store"),
        &yaml,
        &["--max-page-bytes", "100"],
    )
    .await;
    assert_eq!(run.code, 1);
    assert_eq!(run.status["conditions"][0]["reason"], "LimitExceeded");
    assert!(
        run.status["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("--max-page-bytes")
    );
}

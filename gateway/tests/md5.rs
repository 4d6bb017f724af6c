//! 004, the MD5 service, through the real gateway in local mode: ids from 1, exact MD5s
//! (checked against coreutils' md5sum), and the original's error shapes.

mod support;

use serde_json::json;
use support::{Gateway, client, file_form, get_json, json_of, poll};
use taskyard_tests::files::{coreutils_digest, write_pattern};

async fn upload(gw: &Gateway, bytes: Vec<u8>) -> u64 {
    let response = client()
        .post(gw.url("/hashes/"))
        .multipart(file_form("file", "upload.bin", bytes))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, 200, "{body}");
    body["task_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer task_id in {body}"))
}

#[tokio::test]
async fn hashes_uploads_with_ids_from_one() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let mut want = Vec::new();
    for (i, size) in [103_177u64, 0, 3 << 20].into_iter().enumerate() {
        let path = dir.path().join(format!("f{i}"));
        write_pattern(&path, size, i as u64 + 11);
        let id = upload(&gw, std::fs::read(&path).unwrap()).await;
        assert_eq!(id, i as u64 + 1, "ids count from 1");
        want.push((id, coreutils_digest("md5", &path)));
    }
    for (id, md5) in want {
        let url = gw.url(&format!("/hashes/{id}"));
        let (status, body) = poll(&url, |_, b| b["status"] != "PENDING").await;
        assert_eq!((status, body), (200, json!({"status": "SUCCESS", "result": md5})));
    }
}

#[tokio::test]
async fn a_restarted_gateway_keeps_its_ids_and_results() {
    let gw = Gateway::start();
    let id = upload(&gw, b"kept across restarts".to_vec()).await;
    let url = gw.url(&format!("/hashes/{id}"));
    let (_, before) = poll(&url, |_, b| b["status"] == "SUCCESS").await;
    let gw = gw.restart();
    assert_eq!(get_json(&gw.url(&format!("/hashes/{id}"))).await, (200, before));
    assert_eq!(upload(&gw, b"next".to_vec()).await, id + 1, "ids go on where they were");
}

#[tokio::test]
async fn concurrent_uploads_get_distinct_ids() {
    let gw = Gateway::start();
    let posts = (0..12u8).map(|i| upload(&gw, vec![i; 1000]));
    let mut ids = futures::future::join_all(posts).await;
    ids.sort();
    assert_eq!(ids, (1..=12).collect::<Vec<u64>>());
}

#[tokio::test]
async fn answers_errors_as_the_original_did() {
    let gw = Gateway::start();
    let c = client();
    assert_eq!(
        get_json(&gw.url("/hashes/0")).await,
        (404, json!({"detail": "Task 0 was not found"}))
    );
    assert_eq!(
        get_json(&gw.url("/hashes/abc")).await,
        (
            422,
            json!({"detail": [{"loc": ["path", "task_id"], "msg": "value is not a valid integer", "type": "type_error.integer"}]})
        )
    );
    let missing =
        json!({"detail": [{"loc": ["body", "file"], "msg": "field required", "type": "value_error.missing"}]});
    let no_file = c
        .post(gw.url("/hashes/"))
        .multipart(file_form("other", "x", vec![1]))
        .send();
    assert_eq!(json_of(no_file.await.unwrap()).await, (422, missing.clone()));
    let not_multipart = c.post(gw.url("/hashes/")).body("hello").send();
    assert_eq!(json_of(not_multipart.await.unwrap()).await, (422, missing));
    assert_eq!(
        json_of(c.get(gw.url("/hashes/")).send().await.unwrap()).await,
        (405, json!({"detail": "Method Not Allowed"}))
    );
    for (path, location) in [("/hashes", "/hashes/"), ("/hashes/1/", "/hashes/1")] {
        let r = c.post(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 307, "{path}");
        assert_eq!(r.headers()["location"], location, "{path}");
    }
}

#[tokio::test]
async fn an_upload_over_the_limit_is_refused_and_not_kept() {
    let store_limit = "1000";
    let gw = Gateway::start_on("127.0.0.1:0", &["--max-upload-bytes", store_limit]);
    let r = client()
        .post(gw.url("/hashes/"))
        .multipart(file_form("file", "big.bin", vec![7; 5000]))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("1000-byte limit"), "{body}");
    let uploads = gw.store.path().join("uploads/default/hashes");
    let left = std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "nothing is left in {}", uploads.display());
}

#[tokio::test]
async fn a_task_recorded_unfinished_runs_when_the_gateway_starts() {
    // What a gateway stopped mid-task leaves: the upload, and the task's record.
    let gw = Gateway::start();
    let store = gw.store.path().to_path_buf();
    let area = store.join("uploads/default/hashes");
    std::fs::create_dir_all(&area).unwrap();
    std::fs::write(area.join("left"), b"left behind").unwrap();
    let record = json!({
        "name": "md5-7", "uid": "u-7", "created": "2026-11-28T10:00:00Z",
        "labels": {"taskyard.dev/gateway-api": "md5"},
        "task": {"kind": "HashTask", "spec": {"source": {"object": "hashes/left"}}},
        "status": {"phase": "Running"},
    });
    let dir = store.join("tasks/default/hashtask/md5-7/u-7");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("resource.json"), record.to_string()).unwrap();
    let gw = gw.restart();
    let (_, body) = poll(&gw.url("/hashes/7"), |_, b| b["status"] != "PENDING").await;
    let path = area.join("left");
    assert_eq!(
        body,
        json!({"status": "SUCCESS", "result": coreutils_digest("md5", &path)})
    );
    assert_eq!(upload(&gw, vec![1]).await, 8);
}

#[test]
fn a_namespace_that_is_no_namespace_name_is_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_taskyard-gateway"))
        .args(["--local", "--listen", "127.0.0.1:0", "--namespace", "../etc"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a Kubernetes namespace name"));
}

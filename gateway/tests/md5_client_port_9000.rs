//! The MD5 service's own client test, step for step: it hard-codes http://localhost:9000,
//! asks for task 0 (404), posts a PDF to /hashes/, waits 15 s and expects exactly
//! {"status": "SUCCESS", "result": "<md5>"}. Here against `taskyard-gateway --local` on its
//! default port; the test fails (never skips) when something else holds port 9000.

mod support;

use std::time::Duration;

use serde_json::json;
use support::Gateway;
use taskyard_tests::files::{coreutils_digest, write_pattern};

#[tokio::test]
async fn the_md5_services_client_test_passes_unchanged() {
    if let Err(e) = std::net::TcpListener::bind("127.0.0.1:9000") {
        panic!("port 9000 is taken ({e}): the MD5 service's client test needs it; stop whatever listens there");
    }
    // The default address is 127.0.0.1:9000: no --listen.
    let gw = Gateway::start_on("127.0.0.1:9000", &[]);
    assert_eq!(gw.base, "http://127.0.0.1:9000");
    // A PDF the size of the client test's fixture (103,177 bytes).
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("cv.pdf");
    write_pattern(&pdf, 103_177, 5);
    let mut bytes = std::fs::read(&pdf).unwrap();
    bytes[..9].copy_from_slice(b"%PDF-1.4\n");
    std::fs::write(&pdf, &bytes).unwrap();
    let md5 = coreutils_digest("md5", &pdf);

    let http = reqwest::Client::new();
    let r = http.get("http://localhost:9000/hashes/0").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("akim_python_cv.pdf"),
    );
    let r = http
        .post("http://localhost:9000/hashes/")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let task_id = r.json::<serde_json::Value>().await.unwrap()["task_id"].clone();
    assert!(task_id.is_u64(), "task_id {task_id}");
    tokio::time::sleep(Duration::from_secs(15)).await;
    let r = http
        .get(format!("http://localhost:9000/hashes/{task_id}"))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body, json!({"status": "SUCCESS", "result": md5}));
}

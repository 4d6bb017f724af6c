//! The outputs API of `kubectl taskyard fetch` over HTTP, with the gateway's router on a
//! directory store and a stand-in for the API server's reviews: a task's outputs reach only a
//! user who may `get` that task, and only keys in that task's part of the store (or images its
//! manifest lists) are served.

#[path = "support/authorizer.rs"]
mod authorizer;

use std::sync::Arc;

use authorizer::FakeAuthorizer;
use clap::Parser;
use serde_json::Value;
use taskyard_gateway::backend::local::LocalBackend;
use taskyard_gateway::plugin_api::authorizer::Authorizer;
use taskyard_gateway::settings::Settings;

/// Token `good` may get every task in namespace `a` except `private`, and nothing elsewhere;
/// any other token is unknown.
fn fake() -> Arc<FakeAuthorizer> {
    Arc::new(FakeAuthorizer::allowing(|access| {
        access.verb == "get" && access.namespace == "a" && access.name.as_deref() != Some("private")
    }))
}

const RESULT: &str = "tasks/a/hashtask/report/u-1/1/result.json";
const MANIFEST: &str = "tasks/a/imagetask/gallery/u-2/1/manifest.json";
const IMAGE: &str = "images/ab/ab12-100x50-fill-q85.png";
const ORIGINAL: &str = "images/ab/ab12.png";
const OTHER_IMAGE: &str = "images/cd/cd34.png";
const TEXT: &str = "texts/a/page/u-3/1.txt";

/// A gateway on a loopback port whose store holds outputs of tasks in namespaces a and b.
async fn serve(authorizer: Option<Arc<dyn Authorizer>>) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = serde_json::json!({"counts": {}, "items": [
        {"source": "https://example.com/a.png", "state": "Stored", "key": IMAGE, "originalKey": ORIGINAL},
        {"source": "data:", "state": "Skipped"},
    ]});
    for (key, body) in [
        (
            RESULT,
            br#"{"digests":{"md5":"5d41402abc4b2a76b9719d911017c592"}}"#.to_vec(),
        ),
        ("tasks/b/hashtask/report/u-9/1/result.json", b"{\"secret\":1}".to_vec()),
        (MANIFEST, serde_json::to_vec(&manifest).unwrap()),
        (IMAGE, b"resized png".to_vec()),
        (ORIGINAL, b"original png".to_vec()),
        (OTHER_IMAGE, b"someone else's image".to_vec()),
        (TEXT, "héllo text".as_bytes().to_vec()),
        ("uploads/a/plugin/x/report.pdf", b"the input".to_vec()),
        ("tasks/a/hashtask/big/u-4/1/result.json", vec![7u8; 3 << 20]),
    ] {
        let path = dir.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    let settings =
        Settings::try_parse_from(["taskyard-gateway", "--local", "--store", dir.path().to_str().unwrap()]).unwrap();
    let backend = LocalBackend::start(&settings).unwrap();
    let app = taskyard_gateway::app::router(Arc::new(backend), settings.limits(), authorizer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, dir)
}

/// GET `path` (sent as written: no client-side normalisation of `..`), with `token` in
/// `X-Taskyard-Token` as the plugin sends it through the API server.
async fn get(url: &str, path: &str, token: Option<&str>) -> (u16, Option<String>, Vec<u8>) {
    let mut request = reqwest::Client::new().get(format!("{url}{path}"));
    if let Some(t) = token {
        request = request.header("X-Taskyard-Token", t);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    (status, content_type, r.bytes().await.unwrap().to_vec())
}

/// GET `path` exactly as written, over a plain HTTP/1.1 connection: an HTTP client would
/// take `%2E%2E` segments out of the URL before sending it (the URL standard says so).
async fn raw_get(url: &str, path: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-Taskyard-Token: good\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.as_bytes().to_vec();
    (status, body)
}

fn message(body: &[u8]) -> String {
    let json: Value = serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    json["message"].as_str().unwrap().to_string()
}

fn outputs(resource: &str, name: &str, key: &str) -> String {
    format!("/v1/namespaces/a/{resource}/{name}/outputs/{key}")
}

#[tokio::test]
async fn an_allowed_user_gets_the_task_s_result_text_and_listed_images() {
    let (url, _dir) = serve(Some(fake())).await;
    let (status, kind, body) = get(&url, &outputs("hashtasks", "report", RESULT), Some("good")).await;
    assert_eq!((status, kind.as_deref()), (200, Some("application/json")));
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("5d41402abc4b2a76b9719d911017c592")
    );

    let (status, kind, body) = get(&url, &outputs("texttasks", "page", TEXT), Some("good")).await;
    assert_eq!((status, kind.as_deref()), (200, Some("text/plain; charset=utf-8")));
    assert_eq!(body, "héllo text".as_bytes());

    for (key, want) in [
        (MANIFEST, None),
        (IMAGE, Some(&b"resized png"[..])),
        (ORIGINAL, Some(&b"original png"[..])),
    ] {
        let (status, _, body) = get(&url, &outputs("imagetasks", "gallery", key), Some("good")).await;
        assert_eq!(status, 200, "{key}: {}", String::from_utf8_lossy(&body));
        if let Some(want) = want {
            assert_eq!(body, want);
        }
    }
    // Large outputs come whole (streamed from the store).
    let big = "tasks/a/hashtask/big/u-4/1/result.json";
    let (status, _, body) = get(&url, &outputs("hashtasks", "big", big), Some("good")).await;
    assert_eq!((status, body.len()), (200, 3 << 20));
}

#[tokio::test]
async fn no_token_a_bad_token_and_no_get_right_are_refused() {
    let (url, _dir) = serve(Some(fake())).await;
    let path = outputs("hashtasks", "report", RESULT);
    let (status, _, body) = get(&url, &path, None).await;
    assert_eq!(status, 401);
    assert!(message(&body).contains("no bearer token"));
    let (status, _, body) = get(&url, &path, Some("bad")).await;
    assert_eq!(status, 401);
    assert!(message(&body).contains("invalid bearer token"));

    // The user may not get tasks in namespace b: its task's result is refused.
    let b = "/v1/namespaces/b/hashtasks/report/outputs/tasks/b/hashtask/report/u-9/1/result.json";
    let (status, _, body) = get(&url, b, Some("good")).await;
    assert_eq!(status, 403);
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("alice may not get hashtasks.taskyard.dev \"report\" in namespace b"),
        "{json}"
    );
    assert_eq!(json["missing"]["verb"], "get");
    assert_eq!(json["missing"]["name"], "report");
    // Nor a task of namespace a it may not get.
    let private = outputs("hashtasks", "private", "tasks/a/hashtask/private/u/1/result.json");
    let (status, _, body) = get(&url, &private, Some("good")).await;
    assert_eq!(status, 403, "{}", message(&body));
}

#[tokio::test]
async fn keys_outside_the_task_s_outputs_are_refused() {
    let (url, _dir) = serve(Some(fake())).await;
    // Another namespace's key, asked for under a task the user may get.
    for (resource, name, key) in [
        ("hashtasks", "report", "tasks/b/hashtask/report/u-9/1/result.json"),
        ("hashtasks", "report", "uploads/a/plugin/x/report.pdf"),
        ("hashtasks", "report", ORIGINAL),
        ("texttasks", "report", RESULT),
        // a stored image that no manifest of the task lists
        ("imagetasks", "gallery", OTHER_IMAGE),
        // an image listed by another task's manifest only
        ("imagetasks", "other", IMAGE),
    ] {
        let (status, _, body) = get(&url, &outputs(resource, name, key), Some("good")).await;
        assert_eq!(status, 403, "{key}");
        let m = message(&body);
        assert!(m.contains("is not an output of") && m.contains(key), "{m}");
    }
    // `..` and empty segments, encoded so that no client or router takes them out first.
    for path in [
        "/v1/namespaces/a/hashtasks/report/outputs/tasks/a/hashtask/report/%2E%2E/%2E%2E/%2E%2E/%2E%2E/b/hashtask/report/u-9/1/result.json",
        "/v1/namespaces/a/hashtasks/report/outputs/tasks/a/hashtask/report/..%2F..%2F..%2F..%2Fb%2Fhashtask%2Freport%2Fu-9%2F1%2Fresult.json",
        "/v1/namespaces/a/hashtasks/report/outputs/tasks%2Fa%2Fhashtask%2Freport%2F%2Fx",
        "/v1/namespaces/a/hashtasks/..%2F..%2Fb/outputs/tasks/b/hashtask/report/u-9/1/result.json",
        "/v1/namespaces/a/jobs/report/outputs/tasks/a/job/report/x",
    ] {
        let (status, body) = raw_get(&url, path).await;
        assert_eq!(status, 400, "{path}: {}", String::from_utf8_lossy(&body));
        assert!(!message(&body).is_empty());
    }
    // The user's own task, an output not written yet.
    let missing = outputs("hashtasks", "report", "tasks/a/hashtask/report/u-1/2/result.json");
    let (status, _, body) = get(&url, &missing, Some("good")).await;
    assert_eq!(status, 404);
    assert!(message(&body).contains("not in the store"));
}

#[tokio::test]
async fn local_mode_has_no_users_to_check() {
    let (url, _dir) = serve(None).await;
    let (status, _, body) = get(&url, &outputs("hashtasks", "report", RESULT), Some("good")).await;
    assert_eq!(status, 501);
    assert!(message(&body).contains("cluster mode"));
}

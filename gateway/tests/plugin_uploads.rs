//! The upload API of `kubectl taskyard` over HTTP, with the gateway's router on a directory
//! store and a stand-in for the API server's reviews: the token and the permission are
//! checked before a byte is stored, and an allowed upload lands in the namespace's area.

#[path = "support/authorizer.rs"]
mod authorizer;

use std::sync::Arc;

use authorizer::FakeAuthorizer;
use clap::Parser;
use serde_json::Value;
use taskyard_gateway::backend::local::LocalBackend;
use taskyard_gateway::plugin_api::authorizer::Authorizer;
use taskyard_gateway::settings::Settings;

/// Token `good` may create hashtasks in namespace `a` only; any other token is unknown.
fn fake() -> Arc<FakeAuthorizer> {
    Arc::new(FakeAuthorizer::allowing(|access| {
        access.namespace == "a" && access.resource == "hashtasks"
    }))
}

/// A gateway on a loopback port with `authorizer`; returns its URL and store directory.
async fn serve(authorizer: Option<Arc<dyn Authorizer>>) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::try_parse_from([
        "taskyard-gateway",
        "--local",
        "--store",
        dir.path().to_str().unwrap(),
        "--max-upload-bytes",
        "1000",
    ])
    .unwrap();
    let backend = LocalBackend::start(&settings).unwrap();
    let app = taskyard_gateway::app::router(Arc::new(backend), settings.limits(), authorizer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, dir)
}

async fn post(url: &str, path: &str, token: Option<&str>, body: &'static [u8]) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(format!("{url}{path}")).body(body);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

const FOR_A: &str = "/v1/namespaces/a/uploads?for=hashtasks&filename=report.pdf";

#[tokio::test]
async fn an_allowed_user_uploads_into_the_namespace_area() {
    let (url, dir) = serve(Some(fake())).await;
    let (status, body) = post(&url, FOR_A, Some("good"), b"hello").await;
    assert_eq!(status, 201, "{body}");
    let key = body["key"].as_str().unwrap();
    assert!(
        key.starts_with("uploads/a/plugin/") && key.ends_with("/report.pdf"),
        "{body}"
    );
    assert_eq!(format!("uploads/a/{}", body["object"].as_str().unwrap()), key);
    assert_eq!((body["size"].as_u64(), body["user"].as_str()), (Some(5), Some("alice")));
    assert_eq!(std::fs::read(dir.path().join(key)).unwrap(), b"hello");
}

#[tokio::test]
async fn no_token_a_bad_token_and_a_forbidden_namespace_store_nothing() {
    let (url, dir) = serve(Some(fake())).await;
    let (status, body) = post(&url, FOR_A, None, b"x").await;
    assert_eq!(status, 401, "{body}");
    assert!(body["message"].as_str().unwrap().contains("no bearer token"), "{body}");
    let (status, body) = post(&url, FOR_A, Some("bad"), b"x").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("invalid bearer token"),
        "{body}"
    );
    let (status, body) = post(&url, "/v1/namespaces/b/uploads?for=hashtasks", Some("good"), b"x").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("alice may not create hashtasks.taskyard.dev in namespace b"),
        "{body}"
    );
    assert_eq!(body["missing"]["namespace"], "b");
    assert!(!dir.path().join("uploads").exists(), "something was stored");
}

#[tokio::test]
async fn bad_requests_and_too_large_files_are_refused_with_what_to_send() {
    let (url, _dir) = serve(Some(fake())).await;
    let (status, body) = post(&url, "/v1/namespaces/a/uploads?for=jobs", Some("good"), b"x").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("hashtasks"), "{body}");
    let (status, body) = post(&url, FOR_A, Some("good"), &[0u8; 1001]).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["message"].as_str().unwrap().contains("1000-byte limit"), "{body}");
}

#[tokio::test]
async fn local_mode_has_no_users_to_check() {
    let (url, _dir) = serve(None).await;
    let (status, body) = post(&url, FOR_A, Some("good"), b"x").await;
    assert_eq!(status, 501, "{body}");
    assert!(body["message"].as_str().unwrap().contains("cluster mode"), "{body}");
}

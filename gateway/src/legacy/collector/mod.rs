//! 000, the web content collector: image tasks and text tasks of a page URL (under `/api`),
//! their documents in the original's shapes (MongoDB ids, Extended JSON in lists), and the
//! stored images at `/media/<file>`. An image task is an ImageTask `collect-images-<id>`, a
//! text task a TextTask `collect-text-<id>`; images are shared by source URL across tasks by
//! the runner itself, so a later task reuses what is stored and retries what failed.

mod docs;
mod images;
mod media;
mod text;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{any, get};
use serde_json::{Value, json};
use taskyard_api::{Phase, TaskKind};

use crate::app::AppState;
use crate::backend::{NewTask, Status, TaskView};
use crate::reply::{json, redirect, with_query};

/// Flask's 404 message.
pub const NOT_FOUND: &str = "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/images_tasks/",
            get(|s: State<AppState>| list(s, Collect::Images))
                .post(|s: State<AppState>, b: Result<Bytes, BytesRejection>| create(s, b, Collect::Images))
                .fallback(method_not_allowed),
        )
        .route(
            "/api/text_tasks/",
            get(|s: State<AppState>| list(s, Collect::Text))
                .post(|s: State<AppState>, b: Result<Bytes, BytesRejection>| create(s, b, Collect::Text))
                .fallback(method_not_allowed),
        )
        // Werkzeug redirects the other spelling with 308, which keeps the method and body.
        .route("/api/images_tasks", any(|uri: Uri| slash(uri)))
        .route("/api/text_tasks", any(|uri: Uri| slash(uri)))
        .route("/api/images_tasks/{tid}/images", any(|uri: Uri| slash(uri)))
        .merge(images::routes())
        .merge(text::routes())
        .merge(media::routes())
}

async fn slash(uri: Uri) -> Response {
    let path = format!("{}/", uri.path());
    redirect(StatusCode::PERMANENT_REDIRECT, &with_query(&path, &uri))
}

pub async fn method_not_allowed() -> Response {
    message(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method is not allowed for the requested URL.",
    )
}

pub use crate::reply::message;

pub fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, NOT_FOUND)
}

/// What a collector task collects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collect {
    Images,
    Text,
}

impl Collect {
    pub fn kind(self) -> TaskKind {
        match self {
            Collect::Images => TaskKind::ImageTask,
            Collect::Text => TaskKind::TextTask,
        }
    }

    /// The label value of the tasks this API created.
    fn api(self) -> &'static str {
        match self {
            Collect::Images => "collector-images",
            Collect::Text => "collector-text",
        }
    }

    /// The original's `_cls`.
    pub fn class(self) -> &'static str {
        match self {
            Collect::Images => "ImageTask",
            Collect::Text => "TextTask",
        }
    }

    fn name_of(self, id: &str) -> String {
        match self {
            Collect::Images => format!("collect-images-{id}"),
            Collect::Text => format!("collect-text-{id}"),
        }
    }
}

/// The task's 24-hex id (the original's MongoDB ObjectId), from its name.
pub fn id_of(view: &TaskView) -> &str {
    view.name.rsplit('-').next().unwrap_or_default()
}

/// A new ObjectId-shaped id: 4 bytes of seconds since the epoch, then 8 random bytes.
fn new_id() -> String {
    let secs = jiff::Timestamp::now().as_second() as u32;
    let random = uuid::Uuid::new_v4();
    format!("{secs:08x}{}", hex::encode(&random.as_bytes()[..8]))
}

fn is_object_id(id: &str) -> bool {
    id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A task of this API by id; `None` for an unknown or malformed id.
pub async fn find(state: &AppState, what: Collect, tid: &str) -> Result<Option<TaskView>, Response> {
    if !is_object_id(tid) {
        return Ok(None);
    }
    state
        .backend
        .get(what.kind(), &what.name_of(&tid.to_ascii_lowercase()))
        .await
        .map_err(|e| message(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
}

/// The original's status word: `waiting`, `in progress`, `success`, or `error` (also for a
/// page whose images did not all download, as the original's task did).
pub fn status_word(view: &TaskView) -> &'static str {
    match view.phase() {
        Phase::Pending => "waiting",
        Phase::Running => "in progress",
        Phase::Failed => "error",
        Phase::Succeeded => match &view.status {
            Status::Image(s) if s.images.as_ref().is_some_and(|c| c.failed > 0) => "error",
            _ => "success",
        },
    }
}

/// The page URL a task collects from.
pub fn page_of(view: &TaskView) -> &str {
    match &view.spec {
        taskyard_api::TaskSpec::ImageTask(s) => s.source.page.as_deref().unwrap_or_default(),
        taskyard_api::TaskSpec::TextTask(s) => s.source.page.as_deref().unwrap_or_default(),
        taskyard_api::TaskSpec::HashTask(_) => "",
    }
}

/// The `url` of a request body, checked: it must be an absolute http(s) URL that a task
/// can name (8 to 2048 characters). The error is the message to answer with (400).
fn requested_url(body: &[u8]) -> Result<String, String> {
    let example = "send a JSON object such as {\"url\": \"https://example.com/page.html\"}";
    let doc: Value = serde_json::from_slice(body).map_err(|_| format!("The body is not JSON: {example}"))?;
    let url = match doc.get("url") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        // Falsy or missing: the original's message.
        None | Some(Value::Null | Value::Bool(false)) | Some(Value::String(_)) => {
            return Err("Request need to contain 'url' parameter".into());
        }
        Some(other) => return Err(format!("'url' must be a string, not {other}: {example}")),
    };
    let valid = url::Url::parse(&url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if valid.is_none() || !(8..=2048).contains(&url.len()) {
        return Err(format!(
            "'url' {url:?} is not an absolute http or https URL of at most 2048 characters: {example}"
        ));
    }
    Ok(url)
}

async fn create(State(state): State<AppState>, body: Result<Bytes, BytesRejection>, what: Collect) -> Response {
    // Past the 2 MiB body limit (a URL is at most 2048 characters).
    let body = match body {
        Ok(body) => body,
        Err(e) => return message(e.status(), format!("The body could not be read: {}", e.body_text())),
    };
    let url = match requested_url(&body) {
        Ok(url) => url,
        Err(why) => return message(StatusCode::BAD_REQUEST, why),
    };
    let spec = match what {
        Collect::Images => super::spec("ImageTask", json!({"source": {"page": url}})),
        Collect::Text => super::spec("TextTask", json!({"source": {"page": url}})),
    };
    let id = new_id();
    match state
        .backend
        .create(NewTask::for_api(what.api(), what.name_of(&id), spec))
        .await
    {
        Ok(view) => json(StatusCode::CREATED, docs::task_doc(&view, what, &[], None)),
        Err(e) => message(StatusCode::SERVICE_UNAVAILABLE, format!("cannot create the task: {e}")),
    }
}

async fn list(State(state): State<AppState>, what: Collect) -> Response {
    let views = match state.backend.list(what.kind(), what.api()).await {
        Ok(views) => views,
        Err(e) => return message(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let mut items = Vec::with_capacity(views.len());
    for view in &views {
        let text = match what {
            Collect::Text => text::stored_text(&state, view).await,
            Collect::Images => None,
        };
        items.push(docs::list_item(view, what, text));
    }
    json(StatusCode::OK, Value::Array(items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_object_ids() {
        let (a, b) = (new_id(), new_id());
        assert!(is_object_id(&a) && is_object_id(&b), "{a} {b}");
        assert_ne!(a, b);
        assert!(!is_object_id("invalid_id"));
    }

    #[test]
    fn request_urls_are_checked() {
        assert_eq!(
            requested_url(br#"{"url": "https://example.com/"}"#).unwrap(),
            "https://example.com/"
        );
        assert_eq!(
            requested_url(br#"{"url": false}"#).unwrap_err(),
            "Request need to contain 'url' parameter"
        );
        for bad in [
            &b"[1"[..],
            br#"{"url": 3}"#,
            br#"{"url": "http://"}"#,
            br#"{"url": "file:///etc/passwd"}"#,
        ] {
            assert!(requested_url(bad).unwrap_err().contains("{\"url\": "), "{bad:?}");
        }
    }
}

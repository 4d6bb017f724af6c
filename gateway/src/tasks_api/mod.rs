//! The gateway's own API, for the page at `/` and scripts that want more than the legacy
//! APIs offer: an upload with what to do with it (digests of any algorithms, a resize with
//! width, height, fit and format, or text extraction) becomes one task, read back as JSON
//! with links to its outputs.
//!
//! - `POST /v1/tasks` (multipart: `action`, its options, `file`) → 201 `{"kind", "name", "url"}`
//! - `GET /v1/tasks/{kind}/{name}` → the task: phase, message, spec, status, outputs
//! - `GET /v1/tasks/{kind}/{name}/outputs/{n}` → output `n` (a resized image, the text)

mod options;
mod view;

use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;
use taskyard_api::TaskKind;

use crate::app::AppState;
use crate::backend::{NewTask, TaskView};
use crate::reply::{json, message, upload_failed};
use crate::upload::{self, Destination, Parts, UploadError};

/// The `gateway-api` label of the tasks this API creates.
const API: &str = "web";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tasks", post(create).layer(DefaultBodyLimit::disable()))
        .route("/v1/tasks/{kind}/{name}", get(show))
        .route("/v1/tasks/{kind}/{name}/outputs/{n}", get(output))
}

/// The file in a part named `file`, and the task's options as text fields.
const PARTS: Parts = Parts {
    is_file: upload::is_named_file,
    is_text: |field| options::FIELDS.contains(&field.name().unwrap_or_default()),
    text_max: options::FIELD_MAX_BYTES,
};

async fn create(State(state): State<AppState>, multipart: Result<Multipart, MultipartRejection>) -> Response {
    let Ok(mut multipart) = multipart else {
        return message(
            StatusCode::BAD_REQUEST,
            "send multipart/form-data with the fields action (hash, resize or text), its options, and file",
        );
    };
    let id = uuid::Uuid::new_v4();
    let store = state.backend.store();
    let namespace = state.backend.namespace();
    let form = upload::first_file(&mut multipart, &PARTS, store, namespace, |file| {
        // Images are bounded tighter, when the form said first that this is a resize.
        let limit = match file.texts.get("action").map(String::as_str) {
            Some("resize") => state.limits.max_image_bytes,
            _ => state.limits.max_upload_bytes,
        };
        let object = format!("web/{id}{}", extension(file.file_name));
        Ok::<_, UploadError>(Some(Destination { object, limit }))
    })
    .await;
    let (stored, fields) = match form {
        Ok(form) => (form.stored, form.texts),
        Err(failed) => {
            if let Some(s) = &failed.stored {
                let _ = store.delete(&s.key).await;
            }
            return upload_failed(failed.error);
        }
    };
    let Some(stored) = stored else {
        return message(
            StatusCode::BAD_REQUEST,
            "the form has no file: send the file to work on in the multipart part \"file\"",
        );
    };
    let spec = match options::spec(&fields, &stored.object) {
        Ok(spec) => spec,
        Err(e) => {
            // Nothing will read the upload.
            let _ = store.delete(&stored.key).await;
            return message(StatusCode::BAD_REQUEST, e);
        }
    };
    let kind = spec.kind();
    let name = format!("web-{id}");
    match state.backend.create(NewTask::for_api(API, name.clone(), spec)).await {
        Ok(_) => json(
            StatusCode::CREATED,
            json!({"kind": kind.as_str(), "name": name, "url": view::url(kind, &name)}),
        ),
        Err(e) => message(StatusCode::SERVICE_UNAVAILABLE, format!("cannot create the task: {e}")),
    }
}

/// The upload's extension (`.pdf`), kept so the stored object says what it is; letters and
/// digits only.
fn extension(file_name: Option<&str>) -> String {
    let ext = file_name.and_then(|f| f.rsplit_once('.')).map(|(_, e)| e).unwrap_or("");
    if !ext.is_empty() && ext.len() <= 10 && ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
        format!(".{}", ext.to_ascii_lowercase())
    } else {
        String::new()
    }
}

/// The task `kind`/`name`, or the 404 or 503 to answer instead.
async fn find(state: &AppState, kind: &str, name: &str) -> Result<TaskView, Response> {
    let kind: TaskKind = kind.parse().map_err(|e| message(StatusCode::NOT_FOUND, e))?;
    match state.backend.get(kind, name).await {
        Ok(Some(view)) => Ok(view),
        Ok(None) => Err(message(
            StatusCode::NOT_FOUND,
            format!("no {kind} is named {name:?}; use the kind and name POST /v1/tasks answered"),
        )),
        Err(e) => Err(message(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

async fn show(State(state): State<AppState>, Path((kind, name)): Path<(String, String)>) -> Response {
    match find(&state, &kind, &name).await {
        Ok(view) => json(StatusCode::OK, view::document(&view)),
        Err(response) => response,
    }
}

async fn output(State(state): State<AppState>, Path((kind, name, n)): Path<(String, String, String)>) -> Response {
    let view = match find(&state, &kind, &name).await {
        Ok(view) => view,
        Err(response) => return response,
    };
    let outputs = view::outputs(&view);
    let Some(out) = n.parse::<usize>().ok().and_then(|n| outputs.get(n)) else {
        return message(
            StatusCode::NOT_FOUND,
            format!(
                "{kind} {name} has no output {n:?}; it has {} (numbered from 0), listed in GET {}",
                outputs.len(),
                view::url(view.kind, &name)
            ),
        );
    };
    match crate::reply::object(state.backend.store(), &out.key, &out.content_type).await {
        Ok(Some(response)) => response,
        Ok(None) => message(
            StatusCode::NOT_FOUND,
            format!("the output {} is no longer in the store", out.key),
        ),
        Err(e) => message(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

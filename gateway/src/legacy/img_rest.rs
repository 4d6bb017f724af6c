//! 003, img-rest: POST `/resize/` with a multipart `file` answers `{"guid"}`; GET
//! `/resize/status/<guid>` answers `{"guid", "status"}` (`processing`, then `complete`);
//! GET `/resize/<guid>` is the JPEG. The upload becomes an ImageTask `imgrest-<guid>`:
//! exactly 100x100, aspect ignored, JPEG quality 75.
//!
//! Where the original hung or crashed, this answers with an error: empty or non-image
//! uploads are refused with 400 (its documentation's "future work"), a failed job reads
//! `failed` with 422 instead of `processing` for ever, an unknown guid is 404, and an image
//! not ready yet is 404 instead of a debugger page.

use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{any, get, post};
use serde_json::json;
use taskyard_api::{Phase, TaskKind};

use crate::app::AppState;
use crate::backend::{NewTask, TaskView};
use crate::reply::{json, message, redirect, upload_failed, with_query};
use crate::upload::{self, Destination, Failed, Parts, UploadError};

const API: &str = "img-rest";

/// Werkzeug's 400 message, which the original answered for a request without a file.
const BAD_REQUEST: &str = "The browser (or proxy) sent a request that this server could not understand.";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/resize/", post(create).layer(DefaultBodyLimit::disable()))
        .route(
            "/resize",
            any(|uri: Uri| async move { redirect(StatusCode::PERMANENT_REDIRECT, &with_query("/resize/", &uri)) }),
        )
        .route("/resize/status/{guid}", get(status))
        .route("/resize/{guid}", get(image))
}

/// Why an upload is refused: its body, or a file that is not an image.
enum Refused {
    Upload(UploadError),
    NotAnImage(&'static str),
}

impl From<UploadError> for Refused {
    fn from(e: UploadError) -> Self {
        Refused::Upload(e)
    }
}

async fn create(State(state): State<AppState>, multipart: Result<Multipart, MultipartRejection>) -> Response {
    let Ok(mut multipart) = multipart else {
        return message(StatusCode::BAD_REQUEST, BAD_REQUEST);
    };
    let guid = uuid::Uuid::new_v4().to_string();
    let (store, namespace) = (state.backend.store(), state.backend.namespace());
    // The type is judged from the first bytes, before anything is stored.
    let form = upload::first_file(&mut multipart, &Parts::FILE_ONLY, store, namespace, |file| {
        let Some(format) = taskyard_runner::images::format::sniff(file.head) else {
            return Err(Refused::NotAnImage(if file.head.is_empty() {
                "is empty"
            } else {
                "is not a JPEG, PNG, GIF or WebP image"
            }));
        };
        let ext = taskyard_runner::images::format::extension(format);
        Ok(Some(Destination {
            object: format!("img-rest/{guid}.{ext}"),
            limit: state.limits.max_image_bytes,
        }))
    })
    .await;
    let stored = match form.map(|form| form.stored) {
        Ok(Some(stored)) => stored,
        Ok(None) => return message(StatusCode::BAD_REQUEST, BAD_REQUEST),
        Err(Failed {
            error: Refused::Upload(e),
            ..
        }) => return upload_failed(e),
        Err(Failed {
            error: Refused::NotAnImage(what),
            ..
        }) => {
            return message(
                StatusCode::BAD_REQUEST,
                format!("the uploaded file {what}; send an image in the multipart part \"file\""),
            );
        }
    };
    let spec = super::exact_resize(&stored.object, 100, 100, "jpeg", 75);
    match state.backend.create(NewTask::for_api(API, name_of(&guid), spec)).await {
        Ok(_) => json(StatusCode::OK, json!({ "guid": guid })),
        Err(e) => message(StatusCode::SERVICE_UNAVAILABLE, format!("cannot create the task: {e}")),
    }
}

fn name_of(guid: &str) -> String {
    format!("imgrest-{guid}")
}

/// The task of `guid`, or the answer to give instead.
async fn find(state: &AppState, guid: &str) -> Result<TaskView, Response> {
    let found = if uuid::Uuid::parse_str(guid).is_ok() {
        state.backend.get(TaskKind::ImageTask, &name_of(guid)).await
    } else {
        Ok(None)
    };
    match found {
        Ok(Some(view)) => Ok(view),
        Ok(None) => Err(json(
            StatusCode::NOT_FOUND,
            json!({"guid": guid, "status": "unknown", "message": format!("no resize job has the guid {guid:?}; use the guid POST /resize/ answered")}),
        )),
        Err(e) => Err(message(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

fn failed(guid: &str, view: &TaskView) -> Response {
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"guid": guid, "status": "failed", "message": view.message()}),
    )
}

async fn status(State(state): State<AppState>, Path(guid): Path<String>) -> Response {
    let view = match find(&state, &guid).await {
        Ok(view) => view,
        Err(response) => return response,
    };
    match view.phase() {
        Phase::Pending | Phase::Running => json(StatusCode::OK, json!({"guid": guid, "status": "processing"})),
        Phase::Succeeded => json(StatusCode::OK, json!({"guid": guid, "status": "complete"})),
        Phase::Failed => failed(&guid, &view),
    }
}

async fn image(State(state): State<AppState>, Path(guid): Path<String>) -> Response {
    let view = match find(&state, &guid).await {
        Ok(view) => view,
        Err(response) => return response,
    };
    match view.phase() {
        Phase::Failed => return failed(&guid, &view),
        Phase::Succeeded => {}
        Phase::Pending | Phase::Running => {
            return message(
                StatusCode::NOT_FOUND,
                format!("the image of {guid} is still processing; poll GET /resize/status/{guid} until complete"),
            );
        }
    }
    let Some((key, content_type)) = super::first_output(&view) else {
        return message(StatusCode::NOT_FOUND, format!("the job {guid} has no output"));
    };
    match crate::reply::object(state.backend.store(), &key, &content_type).await {
        Ok(Some(response)) => response,
        Ok(None) => message(
            StatusCode::NOT_FOUND,
            format!("the image {key} is no longer in the store"),
        ),
        Err(e) => message(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

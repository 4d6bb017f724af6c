//! 002, the multipart resize service: POST `/api/v1/images/resize` with a `file` part and
//! `width`/`height` (form fields or query) answers 202 `{"status": "accepted", "message":
//! "Upload complete", "task_id"}` or 422 `{"result": "error", "message"}`; GET
//! `/api/v1/status/<uuid>` and `/api/v1/images/result/<uuid>`. The upload becomes an
//! ImageTask `resize-<uuid>`: exactly width x height, aspect ignored, in the format the
//! file's extension names (.jpg: JPEG quality 75, .png: PNG). CORS is open, as it was.

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;
use taskyard_api::{Phase, TaskKind};
use tower_http::cors::{Any, CorsLayer};

use crate::app::AppState;
use crate::backend::NewTask;
use crate::reply::json;
use crate::upload::{self, Destination, Parts, Stored, UploadError};

const API: &str = "resize-form";

pub fn routes() -> Router<AppState> {
    let cors = CorsLayer::new().allow_origin(Any).allow_methods(Any).allow_headers(Any);
    // OPTIONS is routed so that preflights reach the CORS layer, which answers them.
    let preflight = || async { StatusCode::NO_CONTENT };
    Router::new()
        .route(
            "/api/v1/images/resize",
            post(create).layer(DefaultBodyLimit::disable()).options(preflight),
        )
        .route("/api/v1/status/{id}", get(status).options(preflight))
        .route("/api/v1/images/result/{id}", get(result).options(preflight))
        .layer(cors)
}

/// The original's error shape; `hint` (new) says how to fix the request.
fn refuse(status: StatusCode, message: &str, hint: impl Into<String>) -> Response {
    json(
        status,
        json!({"result": "error", "message": message, "hint": hint.into()}),
    )
}

fn upload_failed(e: UploadError) -> Response {
    let message = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        "File too large"
    } else {
        "Invalid upload"
    };
    refuse(e.status(), message, e.to_string())
}

/// The image in a part `file` that has a file name; `width` and `height` as plain fields.
const PARTS: Parts = Parts {
    is_file: |field| upload::is_named_file(field) && field.file_name().is_some_and(|f| !f.is_empty()),
    is_text: |field| matches!(field.name(), Some("width" | "height")) && field.file_name().is_none(),
    text_max: 64,
};

/// The extension after the last dot, if it is one the service resizes.
fn allowed_extension(filename: &str) -> Option<&'static str> {
    let (_, ext) = filename.rsplit_once('.')?;
    match ext.to_ascii_lowercase().as_str() {
        "jpg" => Some("jpg"),
        "png" => Some("png"),
        _ => None,
    }
}

/// The original's size rule: 0 < width < 9999 and 0 < height <= 9999.
fn valid_size(width: Option<&str>, height: Option<&str>) -> Option<(u32, u32)> {
    let w: i64 = width?.trim().parse().ok()?;
    let h: i64 = height?.trim().parse().ok()?;
    ((1..9999).contains(&w) && (1..=9999).contains(&h)).then_some((w as u32, h as u32))
}

async fn create(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let task_id = uuid::Uuid::new_v4().to_string();
    let mut form = BTreeMap::new();
    // The file part's name, and the upload when its extension was one we resize.
    let mut file: Option<(String, Option<Stored>)> = None;
    if let Ok(mut multipart) = multipart {
        let (store, namespace) = (state.backend.store(), state.backend.namespace());
        let read = upload::first_file(&mut multipart, &PARTS, store, namespace, |file| {
            let ext = allowed_extension(file.file_name.unwrap_or_default());
            Ok::<_, UploadError>(ext.map(|ext| Destination {
                object: format!("resize-form/{task_id}.{ext}"),
                limit: state.limits.max_image_bytes,
            }))
        })
        .await;
        match read {
            Ok(read) => {
                file = read.file.map(|name| (name.unwrap_or_default(), read.stored));
                form = read.texts;
            }
            Err(failed) => return upload_failed(failed.error),
        }
    }
    // Checked in the original's order: file, size, extension. Flask's request.values reads
    // the query string before the form.
    let value = |k: &str| query.get(k).or_else(|| form.get(k)).map(String::as_str);
    let Some((filename, stored)) = file else {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "No file given",
            "send multipart/form-data with the image in a part named \"file\" that has a filename",
        );
    };
    let cleanup = |stored: &Option<Stored>| {
        let store = state.backend.store().clone();
        let key = stored.as_ref().map(|s| s.key.clone());
        async move {
            if let Some(key) = key {
                let _ = store.delete(&key).await;
            }
        }
    };
    let Some((width, height)) = valid_size(value("width"), value("height")) else {
        cleanup(&stored).await;
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid size",
            "send integer fields width (1 to 9998) and height (1 to 9999)",
        );
    };
    let Some(stored) = stored else {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid extension",
            format!("the file name {filename:?} must end in .jpg or .png (any case)"),
        );
    };
    let (format, quality) = if stored.object.ends_with(".png") {
        ("png", 75)
    } else {
        ("jpeg", 75)
    };
    let spec = super::exact_resize(&stored.object, width, height, format, quality);
    match state
        .backend
        .create(NewTask::for_api(API, name_of(&task_id), spec))
        .await
    {
        Ok(_) => json(
            StatusCode::ACCEPTED,
            json!({"status": "accepted", "message": "Upload complete", "task_id": task_id}),
        ),
        Err(e) => {
            cleanup(&Some(stored)).await;
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "Server error", e.to_string())
        }
    }
}

fn name_of(id: &str) -> String {
    format!("resize-{id}")
}

/// The task of a well-formed id, or None (an id that is not a UUID names no task).
async fn find(state: &AppState, id: &str) -> Result<Option<crate::backend::TaskView>, Response> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Ok(None);
    }
    state
        .backend
        .get(TaskKind::ImageTask, &name_of(id))
        .await
        .map_err(|e| refuse(StatusCode::SERVICE_UNAVAILABLE, "Server error", e.to_string()))
}

async fn status(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let view = match find(&state, &id).await {
        Ok(Some(view)) => view,
        Ok(None) => {
            return refuse(
                StatusCode::NOT_FOUND,
                "Task not found",
                "use the task_id POST /api/v1/images/resize answered",
            );
        }
        Err(response) => return response,
    };
    let body = match view.phase() {
        Phase::Pending => json!({"status": "SENT"}),
        Phase::Running => json!({"status": "STARTED"}),
        Phase::Succeeded => json!({"status": "SUCCESS"}),
        Phase::Failed => json!({"status": "FAILURE", "message": view.message()}),
    };
    json(StatusCode::OK, body)
}

async fn result(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let not_found = || {
        refuse(
            StatusCode::NOT_FOUND,
            "Result not found",
            format!("the result exists once GET /api/v1/status/{id} answers SUCCESS"),
        )
    };
    let view = match find(&state, &id).await {
        Ok(Some(view)) if view.phase() == Phase::Succeeded => view,
        Ok(_) => return not_found(),
        Err(response) => return response,
    };
    let Some((key, content_type)) = super::first_output(&view) else {
        return not_found();
    };
    // Unlike the original, the result stays: a second fetch gets it again.
    match crate::reply::object(state.backend.store(), &key, &content_type).await {
        Ok(Some(response)) => response,
        Ok(None) => not_found(),
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, "Server error", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_as_the_original_judged_them() {
        assert_eq!(allowed_extension("a.JPG"), Some("jpg"));
        assert_eq!(allowed_extension("a.b.png"), Some("png"));
        for refused in ["a.jpeg", "a.gif", "jpg", "a.jpg.txt", ""] {
            assert_eq!(allowed_extension(refused), None, "{refused}");
        }
    }

    #[test]
    fn sizes_as_the_original_judged_them() {
        assert_eq!(valid_size(Some("1"), Some("9999")), Some((1, 9999)));
        assert_eq!(valid_size(Some("9998"), Some("1")), Some((9998, 1)));
        for (w, h) in [
            ("9999", "1"),
            ("0", "1"),
            ("1", "10000"),
            ("-1", "1"),
            ("1.5", "2"),
            ("x", "1"),
        ] {
            assert_eq!(valid_size(Some(w), Some(h)), None, "{w}x{h}");
        }
        assert_eq!(valid_size(None, Some("1")), None);
    }
}

//! 001, the base64 resize service: POST `/api/v1/resize` with `{"imageData": "<base64>"}`
//! answers 202 `{"success": true, "token"}`; GET `/api/v1/resize/<token>` answers
//! `{"status", "resized_image_url"}` with PENDING, IN_PROGRESS or SUCCESS. The image becomes
//! an ImageTask `b64-<token>`: exactly 100x100, aspect ignored, JPEG quality 100.
//! `resized_image_url` (`<token>.jpg`) is served at `/api/v1/resize/<token>.jpg`, which the
//! original never did.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Value, json};
use taskyard_api::{Phase, TaskKind};

use crate::app::AppState;
use crate::backend::NewTask;
use crate::reply::json;

const API: &str = "resize-b64";

pub fn routes() -> Router<AppState> {
    Router::new()
        // The JSON body holds the whole image: room for a base64 image at the image limit.
        .route("/api/v1/resize", post(create).layer(DefaultBodyLimit::max(96 << 20)))
        .route("/api/v1/resize/{token}", get(status))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    json(status, json!({"success": false, "message": message.into()}))
}

/// Like Python's `b64decode` without validation: characters outside the alphabet are
/// dropped, and padding may be missing.
fn decode_lenient(text: &str) -> Option<Vec<u8>> {
    let kept: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '+' || *c == '/')
        .collect();
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    engine.decode(kept).ok()
}

async fn create(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(e) => return error(e.status(), format!("the body could not be read: {}", e.body_text())),
    };
    let how =
        "send a JSON object {\"imageData\": \"<base64 of a JPEG, PNG, GIF or WebP image, without a data: prefix>\"}";
    let Ok(doc) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, format!("the body is not JSON: {how}"));
    };
    let Some(data) = doc.get("imageData").and_then(Value::as_str) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("the body has no string \"imageData\": {how}"),
        );
    };
    let data = data.split_once("base64,").map(|(_, d)| d).unwrap_or(data);
    let Some(image) = decode_lenient(data).filter(|b| !b.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("\"imageData\" is empty or not base64: {how}"),
        );
    };
    if image.len() as u64 > state.limits.max_image_bytes {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the image is {} bytes, more than the {}-byte limit; send a smaller image",
                image.len(),
                state.limits.max_image_bytes
            ),
        );
    }
    let Some(format) = taskyard_runner::images::format::sniff(&image) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("\"imageData\" does not decode to an image: {how}"),
        );
    };
    let token = uuid::Uuid::new_v4().to_string();
    // Named with the image's extension, which the runner reads the stored original's type from.
    let ext = taskyard_runner::images::format::extension(format);
    let object = format!("resize-b64/{token}.{ext}");
    let key = match taskyard_common::keys::upload_key(state.backend.namespace(), &object) {
        Ok(key) => key,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    if let Err(e) = state
        .backend
        .store()
        .put(&key, Bytes::from(image), "application/octet-stream")
        .await
    {
        return error(StatusCode::SERVICE_UNAVAILABLE, format!("cannot store the image: {e}"));
    }
    let spec = super::exact_resize(&object, 100, 100, "jpeg", 100);
    match state.backend.create(NewTask::for_api(API, name_of(&token), spec)).await {
        Ok(_) => json(StatusCode::ACCEPTED, json!({"success": true, "token": token})),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("cannot create the task: {e}")),
    }
}

fn name_of(token: &str) -> String {
    format!("b64-{token}")
}

async fn status(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    if let Some(token) = token.strip_suffix(".jpg") {
        return image(&state, token).await;
    }
    let view = match state.backend.get(TaskKind::ImageTask, &name_of(&token)).await {
        Ok(Some(view)) => view,
        Ok(None) => return unknown(&token),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    match view.phase() {
        Phase::Pending => json(StatusCode::OK, json!({"status": "PENDING", "resized_image_url": null})),
        Phase::Running => json(
            StatusCode::OK,
            json!({"status": "IN_PROGRESS", "resized_image_url": null}),
        ),
        Phase::Succeeded => json(
            StatusCode::OK,
            json!({"status": "SUCCESS", "resized_image_url": format!("{token}.jpg")}),
        ),
        // The original answered a failed task with a 500 page.
        Phase::Failed => json(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"status": "FAILURE", "resized_image_url": null, "message": view.message()}),
        ),
    }
}

fn unknown(token: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no resize task has the token {token:?}; use the token POST /api/v1/resize answered"),
    )
}

/// The resized JPEG, once the task succeeded.
async fn image(state: &AppState, token: &str) -> Response {
    let view = match state.backend.get(TaskKind::ImageTask, &name_of(token)).await {
        Ok(Some(view)) => view,
        Ok(None) => return unknown(token),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let Some((key, content_type)) = super::first_output(&view).filter(|_| view.phase() == Phase::Succeeded) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("the resized image of {token} is not ready; poll GET /api/v1/resize/{token} until SUCCESS"),
        );
    };
    match crate::reply::object(state.backend.store(), &key, &content_type).await {
        Ok(Some(response)) => response,
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("the resized image {key} is no longer in the store"),
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64_as_leniently_as_python() {
        assert_eq!(decode_lenient("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_lenient("aGVs\nbG8").unwrap(), b"hello");
        assert_eq!(decode_lenient("aGVs bG8=!!").unwrap(), b"hello");
        assert_eq!(decode_lenient("").unwrap(), b"");
        assert!(decode_lenient("a").is_none());
    }
}

//! Small helpers for answers: JSON with a status, redirects, and store objects streamed out.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use taskyard_common::store::Store;

use crate::upload::UploadError;

/// `body` as JSON with `status`.
pub fn json(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// `{"message"}` with `status`: the error shape of most of the gateway's APIs.
pub fn message(status: StatusCode, message: impl Into<String>) -> Response {
    json(status, serde_json::json!({ "message": message.into() }))
}

/// An upload that was not stored, as a `{"message"}` with the status its cause calls for.
pub fn upload_failed(e: UploadError) -> Response {
    message(e.status(), e.to_string())
}

/// A redirect that keeps the method and body (307 or 308), as Starlette and Werkzeug send
/// for a path written without its trailing slash.
pub fn redirect(status: StatusCode, location: &str) -> Response {
    let mut response = status.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// The location with the query string of `uri` kept.
pub fn with_query(path: &str, uri: &axum::http::Uri) -> String {
    match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    }
}

/// A stored object streamed as the body, with its length and `content_type`; `None` when
/// the store has no such object.
pub async fn object(store: &Store, key: &str, content_type: &str) -> Result<Option<Response>, String> {
    let size = match store.size(key).await {
        Ok(Some(size)) => size,
        Ok(None) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let chunks = store.open(key).await.map_err(|e| e.to_string())?;
    let mut response = Body::from_stream(chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    Ok(Some(response))
}

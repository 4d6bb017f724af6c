//! `/media/<file>`: stored images, by the file name an image document's `storage_url` gives
//! (the stored original's name, `<sha256(source URL)>.<ext>`), with the Content-Type of the
//! extension.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use super::{message, not_found};
use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/media/{file}", get(media))
}

fn content_type(ext: &str) -> &'static str {
    match ext {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => "application/octet-stream",
    }
}

async fn media(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    // Only names the store gives its originals: nothing else can be reached this way.
    let Some((digest, ext)) = file.split_once('.') else {
        return not_found();
    };
    let plausible = digest.len() == 64
        && digest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && !ext.is_empty()
        && ext.bytes().all(|b| b.is_ascii_alphanumeric());
    if !plausible {
        return not_found();
    }
    let shard = &digest[..2];
    let namespace = state.backend.namespace();
    // Shared by every task, or kept per namespace (images.sharing: namespace).
    for key in [
        format!("images/{shard}/{file}"),
        format!("images/ns/{namespace}/{shard}/{file}"),
    ] {
        match crate::reply::object(state.backend.store(), &key, content_type(ext)).await {
            Ok(Some(response)) => return response,
            Ok(None) => continue,
            Err(e) => return message(StatusCode::SERVICE_UNAVAILABLE, e),
        }
    }
    not_found()
}

//! Text tasks: a task's document (with `text` once extracted) and its text alone.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::json;
use taskyard_api::Phase;

use super::docs::task_doc;
use super::{Collect, find, method_not_allowed, not_found};
use crate::app::AppState;
use crate::backend::{Status, TaskView};
use crate::reply::json;

/// Texts come from pages of at most 10 MiB; a stored text is never larger.
const TEXT_LIMIT: u64 = 16 << 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/text_tasks/{tid}", get(task).fallback(method_not_allowed))
        .route("/api/text_tasks/{tid}/text", get(text).fallback(method_not_allowed))
}

/// The extracted text of a task that succeeded.
pub async fn stored_text(state: &AppState, view: &TaskView) -> Option<String> {
    let Status::Text(status) = &view.status else {
        return None;
    };
    if view.phase() != Phase::Succeeded {
        return None;
    }
    let key = &status.text.as_ref()?.key;
    let bytes = state.backend.store().get(key, TEXT_LIMIT).await.ok()??;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

async fn task(State(state): State<AppState>, Path(tid): Path<String>) -> Response {
    match find(&state, Collect::Text, &tid).await {
        Ok(Some(view)) => {
            let text = stored_text(&state, &view).await;
            json(StatusCode::OK, task_doc(&view, Collect::Text, &[], text))
        }
        Ok(None) => not_found(),
        Err(response) => response,
    }
}

async fn text(State(state): State<AppState>, Path(tid): Path<String>) -> Response {
    let view = match find(&state, Collect::Text, &tid).await {
        Ok(Some(view)) => view,
        Ok(None) => return not_found(),
        Err(response) => return response,
    };
    match stored_text(&state, &view).await {
        Some(text) => json(StatusCode::OK, json!({ "text": text })),
        None => not_found(),
    }
}

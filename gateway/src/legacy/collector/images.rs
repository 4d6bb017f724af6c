//! Image tasks: a task's document with its image ids, its image documents, and the redirect
//! of one image to its stored copy.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use taskyard_api::{ImageItem, ItemState};

use super::docs::{image_doc, image_id, task_doc};
use super::{Collect, NOT_FOUND, find, id_of, message, method_not_allowed, not_found};
use crate::app::AppState;
use crate::backend::{Status, TaskView};
use crate::reply::json;

/// A manifest larger than this is not read (500 items of long URLs fit many times over).
const MANIFEST_LIMIT: u64 = 16 << 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/images_tasks/{tid}", get(task).fallback(method_not_allowed))
        .route(
            "/api/images_tasks/{tid}/images/",
            get(images).fallback(method_not_allowed),
        )
        .route(
            "/api/images_tasks/{tid}/images/{iid}",
            get(image).fallback(method_not_allowed),
        )
}

/// The images a finished task found (not the skipped `data:` references), in page order.
async fn items_of(state: &AppState, view: &TaskView) -> Result<Vec<ImageItem>, Response> {
    let Status::Image(status) = &view.status else {
        return Ok(Vec::new());
    };
    let Some(key) = &status.manifest else {
        return Ok(Vec::new());
    };
    let unavailable = |e: String| message(StatusCode::SERVICE_UNAVAILABLE, format!("cannot read {key}: {e}"));
    let bytes = match state.backend.store().get(key, MANIFEST_LIMIT).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(Vec::new()),
        Err(e) => return Err(unavailable(e.to_string())),
    };
    let manifest: Value = serde_json::from_slice(&bytes).map_err(|e| unavailable(e.to_string()))?;
    let items: Vec<ImageItem> =
        serde_json::from_value(manifest["items"].clone()).map_err(|e| unavailable(e.to_string()))?;
    Ok(items.into_iter().filter(|i| i.state != ItemState::Skipped).collect())
}

async fn task(State(state): State<AppState>, Path(tid): Path<String>) -> Response {
    let view = match find(&state, Collect::Images, &tid).await {
        Ok(Some(view)) => view,
        Ok(None) => return not_found(),
        Err(response) => return response,
    };
    let items = match items_of(&state, &view).await {
        Ok(items) => items,
        Err(response) => return response,
    };
    let ids: Vec<String> = items.iter().map(|i| image_id(&i.source)).collect();
    json(StatusCode::OK, task_doc(&view, Collect::Images, &ids, None))
}

/// Every image task's items, oldest task first: who found an image, when, and where it is
/// stored. Local mode reads each finished task's manifest.
struct Sightings(Vec<(TaskView, Vec<ImageItem>)>);

impl Sightings {
    async fn load(state: &AppState) -> Result<Self, Response> {
        let views = state
            .backend
            .list(Collect::Images.kind(), "collector-images")
            .await
            .map_err(|e| message(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        let mut all = Vec::with_capacity(views.len());
        for view in views {
            let items = items_of(state, &view).await?;
            all.push((view, items));
        }
        Ok(Self(all))
    }

    fn of<'a>(&'a self, src: &'a str) -> impl Iterator<Item = (&'a TaskView, &'a ImageItem)> + 'a {
        self.0
            .iter()
            .flat_map(move |(view, items)| items.iter().filter(move |i| i.source == src).map(move |i| (view, i)))
    }

    /// The image's document, seen from one of its tasks' items.
    fn doc(&self, item: &ImageItem) -> Value {
        let seen: Vec<_> = self.of(&item.source).collect();
        let stored = seen
            .iter()
            .find(|(_, i)| matches!(i.state, ItemState::Stored | ItemState::Reused))
            .and_then(|(_, i)| i.key.as_deref());
        let mut tasks: Vec<String> = seen.iter().map(|(v, _)| id_of(v).to_string()).collect();
        tasks.dedup();
        let first_seen = seen.iter().map(|(v, _)| v.created).min().unwrap_or_default();
        image_doc(item, stored, &tasks, first_seen)
    }
}

async fn images(State(state): State<AppState>, Path(tid): Path<String>) -> Response {
    let view = match find(&state, Collect::Images, &tid).await {
        Ok(Some(view)) => view,
        // The original listed nothing for a well-formed unknown id, and crashed on others.
        Ok(None) if super::is_object_id(&tid) => return json(StatusCode::OK, Value::Array(Vec::new())),
        Ok(None) => {
            return message(
                StatusCode::NOT_FOUND,
                format!("{NOT_FOUND} A task id has 24 hex digits."),
            );
        }
        Err(response) => return response,
    };
    let sightings = match Sightings::load(&state).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let Some((_, items)) = sightings.0.iter().find(|(v, _)| v.name == view.name) else {
        return json(StatusCode::OK, Value::Array(Vec::new()));
    };
    let mut seen = std::collections::HashSet::new();
    let docs: Vec<Value> = items
        .iter()
        .filter(|i| seen.insert(i.source.clone()))
        .map(|i| sightings.doc(i))
        .collect();
    json(StatusCode::OK, Value::Array(docs))
}

/// 302 to the stored image, if the task found it and it is stored.
async fn image(State(state): State<AppState>, Path((tid, iid)): Path<(String, String)>) -> Response {
    let view = match find(&state, Collect::Images, &tid).await {
        Ok(Some(view)) => view,
        Ok(None) => return not_found(),
        Err(response) => return response,
    };
    let sightings = match Sightings::load(&state).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let found = sightings
        .0
        .iter()
        .find(|(v, _)| v.name == view.name)
        .and_then(|(_, items)| items.iter().find(|i| image_id(&i.source) == iid.to_ascii_lowercase()));
    let Some(item) = found else {
        return not_found();
    };
    let doc = sightings.doc(item);
    let Some(location) = doc["storage_url"].as_str() else {
        return not_found();
    };
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string()), (header::CONTENT_TYPE, "text/html; charset=utf-8".into())],
        format!("<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n<p>You should be redirected automatically to target URL: <a href=\"{location}\">{location}</a>.  If not click the link."),
    )
        .into_response()
}

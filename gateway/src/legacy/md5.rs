//! 004, the MD5 service: POST `/hashes/` with a multipart `file` answers `{"task_id": n}`
//! (integers from 1), GET `/hashes/{task_id}` answers `{"status", "result"}` with PENDING,
//! SUCCESS or ERROR. Each upload becomes a HashTask named `md5-<n>`.

use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use taskyard_api::{Phase, TaskKind};

use crate::app::AppState;
use crate::backend::{BackendError, NewTask, Status, TaskView};
use crate::reply::{json, redirect, with_query};
use crate::upload::{self, Destination, Parts, UploadError};

const API: &str = "md5";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/hashes/",
            post(create)
                .layer(DefaultBodyLimit::disable())
                .fallback(method_not_allowed),
        )
        // FastAPI redirects the other spelling with 307, which keeps the method and body.
        .route(
            "/hashes",
            axum::routing::any(|uri: Uri| async move {
                redirect(StatusCode::TEMPORARY_REDIRECT, &with_query("/hashes/", &uri))
            }),
        )
        .route("/hashes/{task_id}", get(status).fallback(method_not_allowed))
        .route(
            "/hashes/{task_id}/",
            axum::routing::any(|Path(id): Path<String>, uri: Uri| async move {
                redirect(
                    StatusCode::TEMPORARY_REDIRECT,
                    &with_query(&format!("/hashes/{id}"), &uri),
                )
            }),
        )
}

async fn method_not_allowed() -> Response {
    json(StatusCode::METHOD_NOT_ALLOWED, json!({"detail": "Method Not Allowed"}))
}

/// FastAPI's answer for a missing required field.
fn field_required() -> Response {
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"detail": [{"loc": ["body", "file"], "msg": "field required", "type": "value_error.missing"}]}),
    )
}

fn detail(status: StatusCode, detail: impl Into<Value>) -> Response {
    json(status, json!({ "detail": detail.into() }))
}

fn upload_failed(e: UploadError) -> Response {
    detail(e.status(), e.to_string())
}

async fn create(State(state): State<AppState>, multipart: Result<Multipart, MultipartRejection>) -> Response {
    // Not multipart at all: FastAPI finds no `file` field either.
    let Ok(mut multipart) = multipart else {
        return field_required();
    };
    let (store, namespace) = (state.backend.store(), state.backend.namespace());
    let form = upload::first_file(&mut multipart, &Parts::FILE_ONLY, store, namespace, |_| {
        Ok::<_, UploadError>(Some(Destination {
            object: format!("hashes/{}", uuid::Uuid::new_v4()),
            limit: state.limits.max_upload_bytes,
        }))
    })
    .await;
    let stored = match form {
        Ok(form) => match form.stored {
            Some(stored) => stored,
            None => return field_required(),
        },
        Err(failed) => return upload_failed(failed.error),
    };
    let spec = super::spec(
        "HashTask",
        json!({"source": {"object": stored.object}, "algorithms": ["md5"]}),
    );
    match allocate(&state, spec).await {
        Ok(id) => json(StatusCode::OK, json!({ "task_id": id })),
        Err(e) => detail(StatusCode::SERVICE_UNAVAILABLE, format!("cannot create the task: {e}")),
    }
}

/// Creates the task under the next free id (see `md5_ids`): the create of the name decides
/// between replicas.
async fn allocate(state: &AppState, spec: taskyard_api::TaskSpec) -> Result<u64, BackendError> {
    let in_use = || async {
        let names = state.backend.names(TaskKind::HashTask, API).await?;
        Ok(names.iter().filter_map(|name| id_of(name)).collect())
    };
    let create = |id| {
        let task = NewTask::for_api(API, name_of(id), spec.clone());
        state.backend.create(task)
    };
    let (id, _) = state.md5_ids.allocate(in_use, create).await?;
    Ok(id)
}

fn name_of(id: u64) -> String {
    format!("md5-{id}")
}

fn id_of(name: &str) -> Option<u64> {
    name.strip_prefix("md5-")?.parse().ok()
}

async fn status(State(state): State<AppState>, Path(task_id): Path<String>) -> Response {
    let Ok(id) = task_id.parse::<i64>() else {
        return json(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"loc": ["path", "task_id"], "msg": "value is not a valid integer", "type": "type_error.integer"}]}),
        );
    };
    let found = match u64::try_from(id) {
        Ok(n) => state.backend.get(TaskKind::HashTask, &name_of(n)).await,
        Err(_) => Ok(None),
    };
    match found {
        Ok(Some(view)) => json(StatusCode::OK, status_body(&view)),
        Ok(None) => detail(StatusCode::NOT_FOUND, format!("Task {id} was not found")),
        Err(e) => detail(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// `{"status", "result"}`; a failed task also says why, in `detail` (the original never
/// stored its errors: its failed tasks stayed PENDING).
fn status_body(view: &TaskView) -> Value {
    match view.phase() {
        Phase::Pending | Phase::Running => json!({"status": "PENDING", "result": null}),
        Phase::Succeeded => {
            let md5 = match &view.status {
                Status::Hash(s) => s.digests.get("md5").cloned(),
                _ => None,
            };
            json!({"status": "SUCCESS", "result": md5})
        }
        Phase::Failed => json!({"status": "ERROR", "result": null, "detail": view.message()}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_task_names() {
        assert_eq!(name_of(12), "md5-12");
        assert_eq!(id_of("md5-12"), Some(12));
        assert_eq!(id_of("md5-x"), None);
        assert_eq!(id_of("other-1"), None);
    }
}

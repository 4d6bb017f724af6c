//! The upload API of `kubectl taskyard`, authorised as the calling user:
//!
//! `POST /v1/namespaces/{namespace}/uploads?for=<hashtasks|imagetasks|texttasks>&filename=<name>`
//! with the file as the raw body and the user's bearer token (`Authorization: Bearer`, or
//! `X-Taskyard-Token` through the API server's service proxy, which consumes `Authorization`)
//! → 201 `{"namespace", "object", "key", "size", "user"}`.
//!
//! The gateway checks the token with a TokenReview and, with a SubjectAccessReview, that its
//! user may create that task kind in that namespace, before reading a byte of the body; then
//! it streams the body into `uploads/<namespace>/plugin/<uuid>/<name>`. The plugin creates the
//! task itself with the user's own credentials: the gateway writes only the upload, so a
//! tenant never needs write access to the bucket, and gets none to another tenant's area.
//!
//! `GET /v1/namespaces/{namespace}/{resource}/{name}/outputs/{key}` streams one of a task's
//! stored outputs to a user who may `get` that task (`outputs.rs` says which keys are).

pub mod authorizer;
pub mod outputs;
pub mod request;
pub mod review;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;

use crate::app::AppState;
use crate::reply::{json, message, upload_failed};
use authorizer::Authorizer;
use review::Denied;

/// The path, as the plugin builds it.
pub const PATH: &str = "/v1/namespaces/{namespace}/uploads";
/// A task's stored outputs, by full store key.
pub const OUTPUTS_PATH: &str = "/v1/namespaces/{namespace}/{resource}/{name}/outputs/{*key}";
/// The header carrying the user's token when `Authorization` cannot (the API server's proxy).
pub const TOKEN_HEADER: &str = "x-taskyard-token";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, post(upload).layer(DefaultBodyLimit::disable()))
        .route(OUTPUTS_PATH, get(output))
}

async fn upload(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    Query(query): Query<request::Query>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Caller { authorizer, token } = match caller(&state, &headers, "kubectl taskyard uploads need") {
        Ok(caller) => caller,
        Err((status, why)) => return message(status, why),
    };
    let upload = match request::Upload::parse(&namespace, &query) {
        Ok(upload) => upload,
        Err(e) => return message(StatusCode::BAD_REQUEST, e),
    };
    let limit = upload.limit(&state.limits);
    // Refused before the check and before reading, when the client says how much it sends.
    if let Some(length) = request::content_length(&headers).filter(|n| *n > limit) {
        return message(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the file is {length} bytes, larger than the gateway's {limit}-byte limit for {}; send a smaller file (or raise gateway.maxUploadBytes)",
                upload.access.resource
            ),
        );
    }
    let user = match authorizer.authorize(token, &upload.access).await {
        Ok(user) => user,
        Err(denied) => return refused(&upload.access, denied),
    };
    let object = upload.object(&uuid::Uuid::new_v4().to_string());
    let chunks = body.into_data_stream();
    match crate::upload::store_stream(state.backend.store(), &upload.access.namespace, &object, chunks, limit).await {
        Ok(stored) => {
            tracing::info!(user = %user.username, key = %stored.key, size = stored.size, "plugin upload");
            json(
                StatusCode::CREATED,
                json!({
                    "namespace": upload.access.namespace,
                    "object": stored.object,
                    "key": stored.key,
                    "size": stored.size,
                    "user": user.username,
                }),
            )
        }
        Err(e) => upload_failed(e),
    }
}

async fn output(
    State(state): State<AppState>,
    Path((namespace, resource, name, key)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Caller { authorizer, token } = match caller(&state, &headers, "kubectl taskyard fetch needs") {
        Ok(caller) => caller,
        Err((status, why)) => return message(status, why),
    };
    // The key's shape and area are checked first: a key that is no output of this task is
    // refused whoever asks, and nothing is read for it.
    let request = match outputs::OutputRequest::parse(&namespace, &resource, &name, &key) {
        Ok(request) => request,
        Err(outputs::Refused::BadRequest(m)) => return message(StatusCode::BAD_REQUEST, m),
        Err(outputs::Refused::NotAnOutput(m)) => return message(StatusCode::FORBIDDEN, m),
    };
    let access = review::Access::get(&request.namespace, &request.resource, &request.name);
    let user = match authorizer.authorize(token, &access).await {
        Ok(user) => user,
        Err(denied) => return refused(&access, denied),
    };
    let store = state.backend.store();
    if request.area == outputs::Area::SharedImage {
        match outputs::listed_in_manifests(store, &request).await {
            Ok(true) => {}
            Ok(false) => {
                return message(
                    StatusCode::FORBIDDEN,
                    format!(
                        "the key {:?} is not an output of {}.taskyard.dev {:?} in namespace {}: no manifest of that task lists it",
                        request.key, request.resource, request.name, request.namespace
                    ),
                );
            }
            Err(e) => {
                return message(
                    StatusCode::BAD_GATEWAY,
                    format!("cannot read the task's manifests: {e}"),
                );
            }
        }
    }
    match crate::reply::object(store, &request.key, outputs::content_type(&request.key)).await {
        Ok(Some(mut response)) => {
            tracing::info!(user = %user.username, key = %request.key, "plugin output");
            response.headers_mut().insert(
                axum::http::header::X_CONTENT_TYPE_OPTIONS,
                axum::http::HeaderValue::from_static("nosniff"),
            );
            response
        }
        Ok(None) => message(
            StatusCode::NOT_FOUND,
            format!("{:?} is not in the store (yet): has the task finished?", request.key),
        ),
        Err(e) => message(
            StatusCode::BAD_GATEWAY,
            format!("cannot read {:?} from the store: {e}", request.key),
        ),
    }
}

/// Who asks, and what checks them.
struct Caller<'a> {
    authorizer: &'a dyn Authorizer,
    token: &'a str,
}

/// The authorizer and the caller's bearer token, or the status and message to answer: 501 in
/// local mode (no users to check; `feature` names what needs cluster mode), 401 without a
/// token.
fn caller<'a>(state: &'a AppState, headers: &'a HeaderMap, feature: &str) -> Result<Caller<'a>, (StatusCode, String)> {
    let Some(authorizer) = &state.authorizer else {
        return Err((
            StatusCode::NOT_IMPLEMENTED,
            format!("{feature} the gateway in cluster mode (there are no users to check in --local mode)"),
        ));
    };
    let Some(token) = request::token(headers) else {
        return Err((
            StatusCode::UNAUTHORIZED,
            "no bearer token: send Authorization: Bearer <token> (kubectl taskyard sends the token of your kubeconfig's user)"
                .to_string(),
        ));
    };
    Ok(Caller {
        authorizer: authorizer.as_ref(),
        token,
    })
}

/// 401, 403 naming the missing permission, or 503.
fn refused(access: &review::Access, denied: Denied) -> Response {
    let status = match denied {
        Denied::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Denied::Forbidden { .. } => StatusCode::FORBIDDEN,
        Denied::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut body = json!({ "message": denied.to_string() });
    if status == StatusCode::FORBIDDEN {
        body["missing"] = json!({
            "verb": access.verb,
            "group": review::GROUP,
            "resource": access.resource,
            "namespace": access.namespace,
        });
        if let Some(name) = &access.name {
            body["missing"]["name"] = json!(name);
        }
    }
    json(status, body)
}

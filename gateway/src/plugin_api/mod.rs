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

pub mod authorizer;
pub mod request;
pub mod review;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::json;

use crate::app::AppState;
use crate::reply::{json, message, upload_failed};
use review::Denied;

/// The path, as the plugin builds it.
pub const PATH: &str = "/v1/namespaces/{namespace}/uploads";
/// The header carrying the user's token when `Authorization` cannot (the API server's proxy).
pub const TOKEN_HEADER: &str = "x-taskyard-token";

pub fn routes() -> Router<AppState> {
    Router::new().route(PATH, post(upload).layer(DefaultBodyLimit::disable()))
}

async fn upload(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    Query(query): Query<request::Query>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(authorizer) = &state.authorizer else {
        return message(
            StatusCode::NOT_IMPLEMENTED,
            "kubectl taskyard uploads need the gateway in cluster mode (there are no users to check in --local mode)",
        );
    };
    let Some(token) = request::token(&headers) else {
        return message(
            StatusCode::UNAUTHORIZED,
            "no bearer token: send Authorization: Bearer <token> (kubectl taskyard sends the token of your kubeconfig's user)",
        );
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
            "verb": "create",
            "group": review::GROUP,
            "resource": access.resource,
            "namespace": access.namespace,
        });
    }
    json(status, body)
}

//! The HTTP application: every API's routes on one router, with the shared state.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use serde_json::json;

use crate::backend::Backend;
use crate::legacy::md5_ids::Ids;
use crate::plugin_api::authorizer::Authorizer;
use crate::settings::Limits;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub backend: Arc<dyn Backend>,
    pub limits: Limits,
    /// Checks `kubectl taskyard`'s users (cluster mode only).
    pub authorizer: Option<Arc<dyn Authorizer>>,
    /// The MD5 API's next ids (this process's high-water mark).
    pub md5_ids: Arc<Ids>,
}

pub fn router(backend: Arc<dyn Backend>, limits: Limits, authorizer: Option<Arc<dyn Authorizer>>) -> Router {
    crate::legacy::routes()
        .merge(crate::tasks_api::routes())
        .merge(crate::plugin_api::routes())
        .merge(crate::web::routes())
        // For the kubelet's probes: the process answers HTTP. Readiness asks no more, since
        // each request reports its own Kubernetes or store failure clearly.
        .route("/healthz", axum::routing::get(|| async { crate::reply::json(StatusCode::OK, json!({"status": "ok"})) }))
        .fallback(|| async {
            crate::reply::json(
                StatusCode::NOT_FOUND,
                json!({"message": "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again."}),
            )
        })
        // A known path asked with a method it does not take (routes with their API's own
        // shape of this answer keep it).
        .method_not_allowed_fallback(|| async {
            crate::reply::json(
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"message": "The method is not allowed for the requested URL."}),
            )
        })
        .with_state(AppState {
            backend,
            limits,
            authorizer,
            md5_ids: Arc::default(),
        })
}

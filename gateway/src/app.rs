//! The HTTP application: every API's routes on one router, with the shared state.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use serde_json::json;

use crate::backend::Backend;
use crate::settings::Limits;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub backend: Arc<dyn Backend>,
    pub limits: Limits,
}

pub fn router(backend: Arc<dyn Backend>, limits: Limits) -> Router {
    crate::legacy::routes()
        .merge(crate::web::routes())
        .fallback(|| async {
            crate::reply::json(
                StatusCode::NOT_FOUND,
                json!({"message": "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again."}),
            )
        })
        .with_state(AppState { backend, limits })
}

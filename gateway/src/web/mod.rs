//! The page for people at `/`, the interactive API docs at `/docs`, and the OpenAPI document
//! they read at `/openapi.json`. Everything is compiled into the binary: no CDN, no internet.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::app::AppState;

const INDEX: &str = include_str!("index.html");
const DOCS: &str = include_str!("docs.html");
const OPENAPI: &str = include_str!("openapi.json");

pub fn routes() -> Router<AppState> {
    let html = |body: &'static str| {
        move || async move { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response() }
    };
    Router::new()
        .route("/", get(html(INDEX)))
        .route("/docs", get(html(DOCS)))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response() }),
        )
}

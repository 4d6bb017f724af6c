//! The page for people at `/`, the interactive API docs at `/docs`, and the OpenAPI document
//! they read at `/openapi.json`. Everything is compiled into the binary: no CDN, no internet.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::app::AppState;

const INDEX: &str = include_str!("index.html");
const DOCS: &str = include_str!("docs.html");
const OPENAPI: &str = include_str!("openapi.json");
/// One stylesheet for both pages.
const CSS: &str = include_str!("taskyard.css");

pub fn routes() -> Router<AppState> {
    let html = |body: &'static str| {
        move || async move { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response() }
    };
    Router::new()
        .route("/", get(html(INDEX)))
        .route("/docs", get(html(DOCS)))
        .route("/openapi.json", get(openapi))
        .route("/taskyard.css", get(css))
        // Where the originals had their docs: 000's Swagger UI and document under /api/, 003's
        // /swagger.json, 004's ReDoc. One OpenAPI 3 document describes all five APIs here.
        .route("/api/swagger.json", get(openapi))
        .route("/swagger.json", get(openapi))
        .route("/api/", get(|| async { Redirect::to("/docs") }))
        .route("/redoc", get(|| async { Redirect::to("/docs") }))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

//! The page for people at `/`, the interactive API docs (Swagger UI) at `/docs` and `/api/`,
//! and the OpenAPI document they read at `/openapi.json`. Everything is compiled into the
//! binary: no CDN, no internet, at build or run time.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::json;
use tower::ServiceExt;

use crate::app::AppState;

const INDEX: &str = include_str!("index.html");
/// Swagger UI's page, reading `/openapi.json`, with its assets from `/swaggerui/`.
const SWAGGER_UI: &str = include_str!("swagger-ui.html");
const OPENAPI: &str = include_str!("openapi.json");
/// The page's stylesheet.
const CSS: &str = include_str!("taskyard.css");

/// Where Swagger UI's assets are served: the originals' (000's and 003's flask-restplus) path.
const ASSETS_PREFIX: &str = "/swaggerui";
/// The files served under it.
const ASSETS: [&str; 6] = [
    "swagger-ui-bundle.js",
    "swagger-ui.css",
    "swagger-ui-bundle.js.map",
    "swagger-ui.css.map",
    "oauth2-redirect.html",
    "oauth2-redirect.js",
];

/// The `swagger-ui-dist` crate's routes, used only for the assets it embeds: its own index
/// page builds asset URLs from the request's URI (wrong after a trailing slash or with a
/// query) and cannot be told to skip the public validator, so ours is served instead.
static SWAGGER_ASSETS: LazyLock<Router> = LazyLock::new(|| {
    swagger_ui_dist::generate_routes(swagger_ui_dist::ApiDefinition {
        uri_prefix: ASSETS_PREFIX,
        api_definition: swagger_ui_dist::OpenApiSource::Uri("/openapi.json"),
        title: None,
    })
});

pub fn routes() -> Router<AppState> {
    let html = |body: &'static str| {
        move || async move { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response() }
    };
    Router::new()
        .route("/", get(html(INDEX)))
        // 004's Swagger UI (and the place for the docs), and 000's.
        .route("/docs", get(html(SWAGGER_UI)))
        .route("/api/", get(html(SWAGGER_UI)))
        .route("/swaggerui/{file}", get(swagger_asset))
        .route("/openapi.json", get(openapi))
        .route("/taskyard.css", get(css))
        // The originals' documents: 000's under /api/, 003's at /swagger.json. One OpenAPI 3
        // document describes all five APIs here. 004's ReDoc leads to the Swagger UI.
        .route("/api/swagger.json", get(openapi))
        .route("/swagger.json", get(openapi))
        .route("/redoc", get(|| async { Redirect::to("/docs") }))
}

async fn swagger_asset(Path(file): Path<String>, request: Request) -> Response {
    if !ASSETS.contains(&file.as_str()) {
        return crate::reply::json(
            StatusCode::NOT_FOUND,
            json!({"message": format!("no Swagger UI asset {file:?}; the docs are at /docs")}),
        );
    }
    match SWAGGER_ASSETS.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

//! The page at `/`, Swagger UI at `/docs` and `/api/` and `/openapi.json`: served from the
//! binary with no external assets, and every documented operation answers one of its documented statuses.

mod support;

use serde_json::Value;
use support::{Gateway, client};

/// Where a page points: every `src="..."` and `href="..."`.
fn references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (i, _) in html.match_indices(attr) {
            let rest = &html[i + attr.len()..];
            found.push(rest[..rest.find('"').unwrap()].to_string());
        }
    }
    found
}

#[tokio::test]
async fn the_page_and_docs_are_self_contained() {
    let gw = Gateway::start();
    for path in ["/", "/docs", "/api/"] {
        let r = client().get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8", "{path}");
        let html = r.text().await.unwrap();
        for external in [
            "src=\"http",
            "href=\"http",
            "src=\"//",
            "href=\"//",
            "@import",
            "url(http",
        ] {
            assert!(!html.contains(external), "{path} loads an external asset ({external})");
        }
        // Everything the page points at is served by the gateway itself.
        for reference in references(&html) {
            assert!(reference.starts_with('/'), "{path} points outside: {reference}");
            let r = client().get(gw.url(&reference)).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200, "{path} points at {reference}");
        }
    }
    let css = client().get(gw.url("/taskyard.css")).send().await.unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let css = css.text().await.unwrap();
    assert!(css.contains(".page") && !css.contains("url("), "{css}");
    let page = client().get(gw.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("href=\"/taskyard.css\""), "the page uses its stylesheet");
    assert!(page.contains("href=\"/docs\""), "the page leads to the API docs");

    // The docs are Swagger UI reading /openapi.json, without the public validator.
    let docs = client()
        .get(gw.url("/docs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for wanted in [
        "src=\"/swaggerui/swagger-ui-bundle.js\"",
        "href=\"/swaggerui/swagger-ui.css\"",
        "url: \"/openapi.json\"",
        "validatorUrl: null",
    ] {
        assert!(docs.contains(wanted), "/docs lacks {wanted}");
    }
    for (asset, content_type, marker) in [
        ("swagger-ui-bundle.js", "text/javascript", "SwaggerUIBundle"),
        ("swagger-ui.css", "text/css", ".swagger-ui"),
    ] {
        let r = client()
            .get(gw.url(&format!("/swaggerui/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{asset}");
        assert_eq!(r.headers()["content-type"], content_type, "{asset}");
        let body = r.text().await.unwrap();
        assert!(
            body.len() > 100_000 && body.contains(marker),
            "{asset}: {} bytes",
            body.len()
        );
    }
    let r = client().get(gw.url("/swaggerui/nothing.js")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // 004's ReDoc path leads to the same docs.
    let r = client().get(gw.url("/redoc")).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.headers()["location"].to_str().unwrap()),
        (303, "/docs")
    );
    for path in ["/swagger.json", "/api/swagger.json"] {
        let doc: Value = client().get(gw.url(path)).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["info"]["title"], "Taskyard gateway", "{path}");
    }
}

#[tokio::test]
async fn every_documented_operation_answers_a_documented_status() {
    let gw = Gateway::start();
    let doc: Value = client()
        .get(gw.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 21, "{:?}", paths.keys());
    for (path, methods) in paths {
        // Every path parameter gets a value that names nothing.
        let mut url = path.clone();
        while let (Some(a), Some(b)) = (url.find('{'), url.find('}')) {
            url.replace_range(a..=b, "x");
        }
        for (method, op) in methods.as_object().unwrap() {
            let request = match method.as_str() {
                "get" => client().get(gw.url(&url)),
                "post" => client().post(gw.url(&url)),
                other => panic!("undocumented method {other}"),
            };
            let status = request.send().await.unwrap().status().as_u16().to_string();
            assert!(
                op["responses"].get(&status).is_some(),
                "{method} {url} answered {status}, which {path} does not document"
            );
        }
    }
}

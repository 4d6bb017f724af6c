//! 000, the web content collector, through the real gateway in local mode against a loopback
//! fixture site: task and image documents, dedup by source URL across tasks, a failed image
//! retried by a later task, stored images served at /media, text tasks, and the errors.

mod support;

use std::net::{IpAddr, Ipv4Addr};

use image::ImageFormat;
use serde_json::{Value, json};
use support::{Gateway, client, get_json, image_bytes, json_of, poll};
use taskyard_tests::http::FixtureServer;

const NOT_FOUND: &str = "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.";

async fn post(gw: &Gateway, path: &str, body: &str) -> (u16, Value) {
    let r = client()
        .post(gw.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    json_of(r).await
}

fn is_object_id(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

async fn finished(gw: &Gateway, path: &str) -> Value {
    poll(&gw.url(path), |_, b| {
        !matches!(b["status"].as_str(), Some("waiting" | "in progress"))
    })
    .await
    .1
}

#[tokio::test]
async fn image_tasks_store_dedup_and_retry_images() {
    let site = tempfile::tempdir().unwrap();
    let png = image_bytes(30, 20, ImageFormat::Png);
    std::fs::write(site.path().join("a.png"), &png).unwrap();
    std::fs::write(site.path().join("b.jpg"), image_bytes(16, 16, ImageFormat::Jpeg)).unwrap();
    std::fs::write(
        site.path().join("page.html"),
        r#"<html><body><img src="a.png" alt="Logo"><img src="b.jpg"><img src="a.png">
           <img src="later.png"><img src="data:image/png;base64,AAAA"></body></html>"#,
    )
    .unwrap();
    let server = FixtureServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST), site.path().to_path_buf()).await;
    let page = server.url("/files/page.html?type=text/html");
    let gw = Gateway::start();

    let (status, created) = post(&gw, "/api/images_tasks/", &json!({ "url": page }).to_string()).await;
    assert_eq!(status, 201, "{created}");
    assert!(is_object_id(&created["_id"]), "{created}");
    assert_eq!(
        (&created["_cls"], &created["url"], &created["images"]),
        (&json!("ImageTask"), &json!(page), &json!([]))
    );
    assert!(["waiting", "in progress"].contains(&created["status"].as_str().unwrap()));
    let date = created["date_created"].as_str().unwrap();
    assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");
    let tid1 = created["_id"].as_str().unwrap().to_string();

    // later.png does not exist yet: that image fails, and so the task reads `error`.
    let doc = finished(&gw, &format!("/api/images_tasks/{tid1}")).await;
    assert_eq!(doc["status"], "error", "{doc}");
    assert_eq!(doc["images"].as_array().unwrap().len(), 3, "{doc}");
    let (status, images) = get_json(&gw.url(&format!("/api/images_tasks/{tid1}/images/"))).await;
    assert_eq!(status, 200);
    let by_src = |images: &Value, name: &str| -> Value {
        images
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["src"] == server.url(&format!("/files/{name}")))
            .unwrap_or_else(|| panic!("no {name} in {images}"))
            .clone()
    };
    let a = by_src(&images, "a.png");
    assert_eq!(
        (&a["status"], &a["tasks"]),
        (&json!("success"), &json!([{ "$oid": tid1 }]))
    );
    assert!(
        a["_id"]["$oid"].is_string() && a["date_created"]["$date"].is_i64(),
        "{a}"
    );
    let missing = by_src(&images, "later.png");
    assert_eq!(missing["status"], "error");
    assert!(missing.get("storage_url").is_none(), "{missing}");

    // The stored image, through the redirect.
    let a_id = a["_id"]["$oid"].as_str().unwrap();
    let r = client()
        .get(gw.url(&format!("/api/images_tasks/{tid1}/images/{a_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, a["storage_url"].as_str().unwrap());
    let r = client().get(gw.url(&location)).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().to_vec(), png);
    let missing_id = missing["_id"]["$oid"].as_str().unwrap();
    let (status, body) = get_json(&gw.url(&format!("/api/images_tasks/{tid1}/images/{missing_id}"))).await;
    assert_eq!((status, body), (404, json!({ "message": NOT_FOUND })));

    // A second task of the same page: stored images are not downloaded again, the failed
    // one is retried.
    std::fs::write(site.path().join("later.png"), image_bytes(5, 5, ImageFormat::Png)).unwrap();
    let hits_before = server.hits("/files/a.png");
    let (_, created) = post(&gw, "/api/images_tasks/", &json!({ "url": page }).to_string()).await;
    let tid2 = created["_id"].as_str().unwrap().to_string();
    let doc = finished(&gw, &format!("/api/images_tasks/{tid2}")).await;
    assert_eq!(doc["status"], "success", "{doc}");
    assert_eq!(server.hits("/files/a.png"), hits_before, "a.png was downloaded again");
    assert_eq!(server.hits("/files/later.png"), 2);
    let (_, images) = get_json(&gw.url(&format!("/api/images_tasks/{tid2}/images/"))).await;
    assert_eq!(by_src(&images, "later.png")["status"], "success");
    assert_eq!(
        by_src(&images, "a.png")["tasks"],
        json!([{ "$oid": tid1 }, { "$oid": tid2 }])
    );

    // The list: Extended JSON, without images.
    let (status, list) = get_json(&gw.url("/api/images_tasks/")).await;
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["_id"], json!({ "$oid": tid1 }));
    assert!(list[0]["date_created"]["$date"].is_i64() && list[0].get("images").is_none());
}

#[tokio::test]
async fn text_tasks_extract_the_readable_text() {
    let site = tempfile::tempdir().unwrap();
    std::fs::write(
        site.path().join("article.html"),
        "<html><head><title>T</title><style>p{}</style></head><body><script>var secret=1;</script>\
         <h1>Hello</h1>\n\n<p>readable   words</p></body></html>",
    )
    .unwrap();
    let server = FixtureServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST), site.path().to_path_buf()).await;
    let gw = Gateway::start();
    let page = server.url("/files/article.html?type=text/html");
    let (status, created) = post(&gw, "/api/text_tasks/", &json!({ "url": page }).to_string()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["_cls"], "TextTask");
    assert!(
        created.get("text").is_none() && created.get("images").is_none(),
        "{created}"
    );
    let tid = created["_id"].as_str().unwrap();
    let doc = finished(&gw, &format!("/api/text_tasks/{tid}")).await;
    assert_eq!(doc["status"], "success", "{doc}");
    let (status, text) = get_json(&gw.url(&format!("/api/text_tasks/{tid}/text"))).await;
    assert_eq!(status, 200);
    let text = text["text"].as_str().unwrap();
    assert!(text.contains("Hello") && text.contains("readable words"), "{text:?}");
    assert!(
        !text.contains("secret") && !text.contains("p{}") && !text.contains("\n\n"),
        "{text:?}"
    );
    assert_eq!(doc["text"], text);
    let (_, list) = get_json(&gw.url("/api/text_tasks/")).await;
    assert_eq!(list[0]["text"], text);

    // A page that answers 404: the task reads `error` and has no text.
    let (_, created) = post(
        &gw,
        "/api/text_tasks/",
        &json!({ "url": server.url("/status/404") }).to_string(),
    )
    .await;
    let tid = created["_id"].as_str().unwrap();
    assert_eq!(
        finished(&gw, &format!("/api/text_tasks/{tid}")).await["status"],
        "error"
    );
    assert_eq!(get_json(&gw.url(&format!("/api/text_tasks/{tid}/text"))).await.0, 404);
}

#[tokio::test]
async fn collector_errors_are_json() {
    let gw = Gateway::start();
    let need_url = json!({"message": "Request need to contain 'url' parameter"});
    for path in ["/api/images_tasks/", "/api/text_tasks/"] {
        for body in [r#"{"wrong_param": 1}"#, r#"{"url": ""}"#, r#"{"url": null}"#] {
            assert_eq!(post(&gw, path, body).await, (400, need_url.clone()), "{path} {body}");
        }
        for body in [
            "not json",
            r#"{"url": "not a url"}"#,
            r#"{"url": "ftp://example.com/x"}"#,
        ] {
            let (status, reply) = post(&gw, path, body).await;
            assert_eq!(status, 400, "{path} {body}: {reply}");
            assert!(reply["message"].as_str().unwrap().contains("{\"url\": "), "{reply}");
        }
    }
    let (status, reply) = post(&gw, "/api/text_tasks/", &" ".repeat((2 << 20) + 16)).await;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(get_json(&gw.url("/api/images_tasks/")).await, (200, json!([])));
    let unknown = "0123456789abcdef01234567";
    for path in [
        format!("/api/images_tasks/{unknown}"),
        "/api/images_tasks/invalid_id".into(),
        format!("/api/text_tasks/{unknown}"),
        format!("/api/text_tasks/{unknown}/text"),
        format!("/api/images_tasks/{unknown}/images/{unknown}"),
    ] {
        assert_eq!(
            get_json(&gw.url(&path)).await,
            (404, json!({ "message": NOT_FOUND })),
            "{path}"
        );
    }
    assert_eq!(
        get_json(&gw.url(&format!("/api/images_tasks/{unknown}/images/"))).await,
        (200, json!([]))
    );
    assert_eq!(get_json(&gw.url("/api/images_tasks/invalid_id/images/")).await.0, 404);
    for (path, location) in [
        ("/api/images_tasks", "/api/images_tasks/"),
        ("/api/text_tasks", "/api/text_tasks/"),
        (
            &*format!("/api/images_tasks/{unknown}/images"),
            &*format!("/api/images_tasks/{unknown}/images/"),
        ),
    ] {
        let r = client().get(gw.url(path)).send().await.unwrap();
        assert_eq!(
            (r.status().as_u16(), r.headers()["location"].to_str().unwrap()),
            (308, location)
        );
    }
    let r = client().delete(gw.url("/api/images_tasks/")).send().await.unwrap();
    assert_eq!(
        json_of(r).await,
        (
            405,
            json!({"message": "The method is not allowed for the requested URL."})
        )
    );
    for path in [
        "/media/nothing.png",
        "/media/../../etc/passwd",
        &format!("/media/{}.png", "a".repeat(64)),
    ] {
        assert_eq!(get_json(&gw.url(path)).await.0, 404, "{path}");
    }
}

#[tokio::test]
async fn pages_on_private_networks_are_refused_unless_allowed() {
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("p.html"), "<p>private</p>").unwrap();
    let server = FixtureServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST), site.path().to_path_buf()).await;
    // No --allow-network: loopback is refused, as any private address.
    let gw = Gateway::start_on("127.0.0.1:0", &[]);
    let (_, created) = post(
        &gw,
        "/api/text_tasks/",
        &json!({ "url": server.url("/files/p.html") }).to_string(),
    )
    .await;
    let tid = created["_id"].as_str().unwrap();
    assert_eq!(
        finished(&gw, &format!("/api/text_tasks/{tid}")).await["status"],
        "error"
    );
    assert_eq!(server.total_hits(), 0, "the gateway fetched from a loopback address");
}

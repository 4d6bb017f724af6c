//! End to end on the local cluster: the four other legacy APIs through the chart-installed
//! gateway (cluster mode, two replicas; set up as in e2e_gateway.rs), each request a task
//! resource the operator runs: the web collector's image and text tasks on a page of the
//! fixture server, the base64 resize API (001), the multipart resize API (002) and img-rest
//! (003), with status codes, response shapes and the exact sizes of the images served back.

use std::time::{Duration, Instant};

use base64::Engine;
use image::ImageFormat;
use serde_json::{Value, json};
use taskyard_tests::e2e::{Setup, WAIT};
use taskyard_tests::gateway::{base, gateway_namespace, gw};
use taskyard_tests::images::{encoded, gradient};

/// A client that does not follow redirects, so the tests see them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {status} {text:?}"));
    (status, body)
}

async fn get_json(url: &str) -> (u16, Value) {
    json_of(client().get(url).send().await.unwrap()).await
}

/// Status, Content-Type and body of a GET.
async fn get_bytes(url: &str) -> (u16, String, Vec<u8>) {
    let r = client().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, r.bytes().await.unwrap().to_vec())
}

async fn post_json(url: &str, body: &Value) -> (u16, Value) {
    json_of(client().post(url).json(body).send().await.unwrap()).await
}

async fn post_form(url: &str, form: reqwest::multipart::Form) -> (u16, Value) {
    json_of(client().post(url).multipart(form).send().await.unwrap()).await
}

/// Polls `url` until `done` holds for its JSON body; fails after `WAIT`.
async fn poll(url: &str, done: impl Fn(&Value) -> bool) -> (u16, Value) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = get_json(url).await;
        if done(&body) {
            return (status, body);
        }
        assert!(Instant::now() < deadline, "{url} still answers {status} {body}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn file_form(filename: &str, bytes: Vec<u8>) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(filename.to_string()),
    )
}

fn image_bytes(w: u32, h: u32, format: ImageFormat) -> Vec<u8> {
    encoded(&gradient(w, h), format)
}

/// The format and size of an encoded image.
fn decoded(bytes: &[u8]) -> (ImageFormat, u32, u32) {
    let format = image::guess_format(bytes).expect("an image");
    let img = image::load_from_memory_with_format(bytes, format).unwrap();
    (format, img.width(), img.height())
}

fn is_object_id(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<usize> = s.split('-').map(str::len).collect();
    groups == [8, 4, 4, 4, 12] && s.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit())
}

/// The task resource behind a request: the operator ran it in the gateway's namespace.
fn assert_task_succeeded(s: &Setup, kind: &str, name: &str, api: &str) {
    let task = s.kubectl.get_json(&[kind, name, "-n", &gateway_namespace()]);
    assert_eq!(
        task["metadata"]["labels"]["taskyard.dev/gateway-api"], api,
        "{kind} {name}"
    );
    assert_eq!(
        task["status"]["phase"], "Succeeded",
        "{kind} {name}: {}",
        task["status"]
    );
}

/// A collector task's document once it is no longer waiting or in progress.
async fn finished(url: &str) -> Value {
    poll(url, |b| {
        !matches!(b["status"].as_str(), Some("waiting" | "in progress"))
    })
    .await
    .1
}

#[test]
fn image_tasks_store_dedup_by_source_url_and_serve_the_images() {
    let s = gw();
    let base = base(s);
    let png = image_bytes(30, 20, ImageFormat::Png);
    let jpg = image_bytes(16, 24, ImageFormat::Jpeg);
    std::fs::write(s.files.join("legacy-a.png"), &png).unwrap();
    std::fs::write(s.files.join("legacy-b.jpg"), &jpg).unwrap();
    let _ = std::fs::remove_file(s.files.join("legacy-later.png"));
    std::fs::write(
        s.files.join("legacy-gallery.html"),
        r#"<html><body><img src="legacy-a.png" alt="Logo"><img src="legacy-b.jpg">
           <img src="legacy-a.png"><img src="legacy-later.png"></body></html>"#,
    )
    .unwrap();
    let page = s.server.url("/files/legacy-gallery.html?type=text/html");
    let src = |name: &str| s.server.url(&format!("/files/{name}"));
    let by_src = |images: &Value, name: &str| -> Value {
        images
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["src"] == src(name))
            .unwrap_or_else(|| panic!("no {name} in {images}"))
            .clone()
    };

    s.runtime.block_on(async {
        let (status, created) = post_json(&format!("{base}/api/images_tasks/"), &json!({ "url": page })).await;
        assert_eq!(status, 201, "{created}");
        assert!(is_object_id(&created["_id"]), "{created}");
        assert_eq!(
            (&created["_cls"], &created["url"], &created["images"]),
            (&json!("ImageTask"), &json!(page), &json!([]))
        );
        assert!(
            ["waiting", "in progress"].contains(&created["status"].as_str().unwrap()),
            "{created}"
        );
        let tid1 = created["_id"].as_str().unwrap().to_string();

        // legacy-later.png does not exist yet: that image fails, so the task reads `error`;
        // the page's three distinct images are one record each.
        let doc = finished(&format!("{base}/api/images_tasks/{tid1}")).await;
        assert_eq!(doc["status"], "error", "{doc}");
        assert_eq!(doc["images"].as_array().unwrap().len(), 3, "{doc}");
        let (status, images) = get_json(&format!("{base}/api/images_tasks/{tid1}/images/")).await;
        assert_eq!(status, 200, "{images}");
        assert_eq!(images.as_array().unwrap().len(), 3, "{images}");
        let a = by_src(&images, "legacy-a.png");
        assert_eq!(
            (&a["status"], &a["tasks"]),
            (&json!("success"), &json!([{ "$oid": tid1 }])),
            "{a}"
        );
        assert!(
            a["_id"]["$oid"].is_string() && a["date_created"]["$date"].is_i64(),
            "{a}"
        );
        let missing = by_src(&images, "legacy-later.png");
        assert_eq!(missing["status"], "error", "{missing}");
        assert!(missing.get("storage_url").is_none(), "{missing}");

        // Each stored image, through the redirect and /media: the original bytes.
        for (name, bytes, content_type, size) in [
            ("legacy-a.png", &png, "image/png", (ImageFormat::Png, 30, 20)),
            ("legacy-b.jpg", &jpg, "image/jpeg", (ImageFormat::Jpeg, 16, 24)),
        ] {
            let doc = by_src(&images, name);
            let iid = doc["_id"]["$oid"].as_str().unwrap();
            let r = client()
                .get(format!("{base}/api/images_tasks/{tid1}/images/{iid}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 302, "{name}");
            let location = r.headers()["location"].to_str().unwrap().to_string();
            assert_eq!(location, doc["storage_url"].as_str().unwrap(), "{doc}");
            assert!(location.starts_with("/media/"), "{location}");
            let (status, served_type, served) = get_bytes(&format!("{base}{location}")).await;
            assert_eq!((status, served_type.as_str()), (200, content_type), "{name}");
            assert_eq!(&served, bytes, "{name}");
            assert_eq!(decoded(&served), size, "{name}");
        }
        let missing_id = missing["_id"]["$oid"].as_str().unwrap();
        let (status, _) = get_json(&format!("{base}/api/images_tasks/{tid1}/images/{missing_id}")).await;
        assert_eq!(status, 404);

        // A second task of the page: the stored images are one record each with both tasks,
        // not downloaded again; the failed one is tried again and now stored.
        std::fs::write(s.files.join("legacy-later.png"), image_bytes(5, 7, ImageFormat::Png)).unwrap();
        let hits_a = s.server.hits("/files/legacy-a.png");
        let hits_b = s.server.hits("/files/legacy-b.jpg");
        let (status, created) = post_json(&format!("{base}/api/images_tasks/"), &json!({ "url": page })).await;
        assert_eq!(status, 201, "{created}");
        let tid2 = created["_id"].as_str().unwrap().to_string();
        assert_ne!(tid1, tid2);
        let doc = finished(&format!("{base}/api/images_tasks/{tid2}")).await;
        assert_eq!(doc["status"], "success", "{doc}");
        assert_eq!(
            s.server.hits("/files/legacy-a.png"),
            hits_a,
            "legacy-a.png downloaded again"
        );
        assert_eq!(
            s.server.hits("/files/legacy-b.jpg"),
            hits_b,
            "legacy-b.jpg downloaded again"
        );
        assert_eq!(s.server.hits("/files/legacy-later.png"), 2);
        let (_, images) = get_json(&format!("{base}/api/images_tasks/{tid2}/images/")).await;
        assert_eq!(images.as_array().unwrap().len(), 3, "{images}");
        for name in ["legacy-a.png", "legacy-b.jpg"] {
            let doc = by_src(&images, name);
            assert_eq!(doc["tasks"], json!([{ "$oid": tid1 }, { "$oid": tid2 }]), "{doc}");
        }
        let later = by_src(&images, "legacy-later.png");
        assert_eq!(later["status"], "success", "{later}");
        let (status, _, served) = get_bytes(&format!("{base}{}", later["storage_url"].as_str().unwrap())).await;
        assert_eq!((status, decoded(&served)), (200, (ImageFormat::Png, 5, 7)));
        // The first task's record of a shared image is the second's too.
        let (_, first) = get_json(&format!("{base}/api/images_tasks/{tid1}/images/")).await;
        assert_eq!(by_src(&first, "legacy-a.png"), by_src(&images, "legacy-a.png"));

        // The list: both tasks, oldest first, in Extended JSON without images.
        let (status, list) = get_json(&format!("{base}/api/images_tasks/")).await;
        assert_eq!(status, 200, "{list}");
        let ids: Vec<&Value> = list.as_array().unwrap().iter().map(|t| &t["_id"]).collect();
        assert_eq!(ids, [&json!({ "$oid": tid1 }), &json!({ "$oid": tid2 })], "{list}");
        assert!(
            list[0]["date_created"]["$date"].is_i64() && list[0].get("images").is_none(),
            "{list}"
        );
    });
}

#[test]
fn a_text_task_extracts_the_pages_readable_text() {
    let s = gw();
    let base = base(s);
    std::fs::write(
        s.files.join("legacy-article.html"),
        "<html><head><title>T</title><style>p{}</style></head><body><script>var secret=1;</script>\
         <h1>Hello</h1>\n\n<p>readable   words</p></body></html>",
    )
    .unwrap();
    let page = s.server.url("/files/legacy-article.html?type=text/html");
    let tid = s.runtime.block_on(async {
        let (status, created) = post_json(&format!("{base}/api/text_tasks/"), &json!({ "url": page })).await;
        assert_eq!(status, 201, "{created}");
        assert!(is_object_id(&created["_id"]), "{created}");
        assert_eq!((&created["_cls"], &created["url"]), (&json!("TextTask"), &json!(page)));
        assert!(
            created.get("text").is_none() && created.get("images").is_none(),
            "{created}"
        );
        let tid = created["_id"].as_str().unwrap().to_string();
        let (status, _) = get_json(&format!("{base}/api/text_tasks/{tid}/text")).await;
        assert!(status == 404 || status == 200, "{status}");

        let doc = finished(&format!("{base}/api/text_tasks/{tid}")).await;
        assert_eq!(doc["status"], "success", "{doc}");
        let (status, text) = get_json(&format!("{base}/api/text_tasks/{tid}/text")).await;
        assert_eq!(status, 200, "{text}");
        let text = text["text"].as_str().unwrap();
        assert!(text.contains("Hello") && text.contains("readable words"), "{text:?}");
        assert!(
            !text.contains("secret") && !text.contains("p{}") && !text.contains("\n\n"),
            "{text:?}"
        );
        assert_eq!(doc["text"], text);
        let (status, list) = get_json(&format!("{base}/api/text_tasks/")).await;
        assert_eq!(status, 200);
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        assert_eq!((&list[0]["_id"]["$oid"], &list[0]["text"]), (&json!(tid), &json!(text)));
        tid
    });
    assert_task_succeeded(s, "texttask", &format!("collect-text-{tid}"), "collector-text");
}

#[test]
fn base64_resize_gives_a_100x100_jpeg() {
    let s = gw();
    let base = base(s);
    let data = base64::engine::general_purpose::STANDARD.encode(image_bytes(300, 120, ImageFormat::Png));
    let token = s.runtime.block_on(async {
        let (status, body) = post_json(&format!("{base}/api/v1/resize"), &json!({ "imageData": data })).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["success"], true, "{body}");
        let token = body["token"].as_str().unwrap().to_string();
        assert!(is_uuid(&token), "{token}");
        let url = format!("{base}/api/v1/resize/{token}");
        let (status, first) = get_json(&url).await;
        assert_eq!(status, 200, "{first}");
        assert!(
            ["PENDING", "IN_PROGRESS", "SUCCESS"].contains(&first["status"].as_str().unwrap()),
            "{first}"
        );
        let (status, done) = poll(&url, |b| {
            !matches!(b["status"].as_str(), Some("PENDING" | "IN_PROGRESS"))
        })
        .await;
        assert_eq!(
            (status, done),
            (
                200,
                json!({"status": "SUCCESS", "resized_image_url": format!("{token}.jpg")})
            )
        );
        let (status, content_type, jpeg) = get_bytes(&format!("{base}/api/v1/resize/{token}.jpg")).await;
        assert_eq!((status, content_type.as_str()), (200, "image/jpeg"));
        assert_eq!(decoded(&jpeg), (ImageFormat::Jpeg, 100, 100));
        token
    });
    assert_task_succeeded(s, "imagetask", &format!("b64-{token}"), "resize-b64");
}

#[test]
fn multipart_resize_writes_width_by_height_in_the_uploads_format() {
    let s = gw();
    let base = base(s);
    let ids = s.runtime.block_on(async {
        // One 422, in the original's shape: .gif is not an extension it took.
        let form = file_form("a.gif", image_bytes(8, 8, ImageFormat::Jpeg))
            .text("width", "10")
            .text("height", "10");
        let (status, body) = post_form(&format!("{base}/api/v1/images/resize"), form).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(
            (&body["result"], &body["message"]),
            (&json!("error"), &json!("Invalid extension"))
        );

        let cases = [
            ("test.jpg", ImageFormat::Jpeg, "image/jpeg", 120, 80),
            ("photo.PNG", ImageFormat::Png, "image/png", 37, 51),
        ];
        let runs = cases.map(|(name, format, content_type, w, h)| {
            let base = base.clone();
            async move {
                let form = file_form(name, image_bytes(300, 500, format))
                    .text("width", w.to_string())
                    .text("height", h.to_string());
                let (status, body) = post_form(&format!("{base}/api/v1/images/resize"), form).await;
                assert_eq!(status, 202, "{name}: {body}");
                assert_eq!(
                    (&body["status"], &body["message"]),
                    (&json!("accepted"), &json!("Upload complete")),
                    "{name}"
                );
                let id = body["task_id"].as_str().unwrap().to_string();
                assert!(is_uuid(&id), "{id}");
                let (status, done) = poll(&format!("{base}/api/v1/status/{id}"), |b| {
                    b["status"] == "SUCCESS" || b["status"] == "FAILURE"
                })
                .await;
                assert_eq!((status, done), (200, json!({"status": "SUCCESS"})), "{name}");
                let (status, served_type, out) = get_bytes(&format!("{base}/api/v1/images/result/{id}")).await;
                assert_eq!((status, served_type.as_str()), (200, content_type), "{name}");
                assert_eq!(decoded(&out), (format, w, h), "{name}");
                id
            }
        });
        let ids = futures::future::join_all(runs).await;

        let unknown = "00000000-0000-4000-8000-000000000000";
        let (status, body) = get_json(&format!("{base}/api/v1/status/{unknown}")).await;
        assert_eq!(
            (status, &body["result"], &body["message"]),
            (404, &json!("error"), &json!("Task not found"))
        );
        ids
    });
    for id in ids {
        assert_task_succeeded(s, "imagetask", &format!("resize-{id}"), "resize-form");
    }
}

#[test]
fn img_rest_resizes_to_a_100x100_jpeg() {
    let s = gw();
    let base = base(s);
    let guid = s.runtime.block_on(async {
        let form = file_form("big.png", image_bytes(640, 360, ImageFormat::Png));
        let (status, body) = post_form(&format!("{base}/resize/"), form).await;
        assert_eq!(status, 200, "{body}");
        let guid = body["guid"].as_str().unwrap().to_string();
        assert!(is_uuid(&guid), "{body}");
        assert_eq!(body, json!({ "guid": guid }));
        let url = format!("{base}/resize/status/{guid}");
        let (status, done) = poll(&url, |b| b["status"] != "processing").await;
        assert_eq!((status, done), (200, json!({"guid": guid, "status": "complete"})));
        let (status, content_type, jpeg) = get_bytes(&format!("{base}/resize/{guid}")).await;
        assert_eq!((status, content_type.as_str()), (200, "image/jpeg"));
        assert_eq!(decoded(&jpeg), (ImageFormat::Jpeg, 100, 100));
        guid
    });
    assert_task_succeeded(s, "imagetask", &format!("imgrest-{guid}"), "img-rest");
}

//! End to end on the local cluster: the four other legacy APIs through the chart-installed
//! gateway (cluster mode, two replicas; set up as in e2e_gateway.rs), each request a task
//! resource the operator runs: the web collector's image and text tasks on a page of the
//! fixture server, the base64 resize API (001), the multipart resize API (002) and img-rest
//! (003), with status codes, response shapes and the exact sizes of the images served back.
//! Then each of the five APIs' 4xx answers (unknown ids, malformed ids and bodies, failed
//! tasks) in their documented shapes, which in cluster mode come from the API server's and
//! the S3 store's answers rather than from memory.

use std::time::{Duration, Instant};

use base64::Engine;
use image::ImageFormat;
use serde_json::{Value, json};
use taskyard_tests::e2e::{Setup, WAIT};
use taskyard_tests::gateway::{base, gateway_namespace, gw};
use taskyard_tests::images::{encoded, gradient};

/// Flask's 404 message, the web collector's answer for unknown ids.
const NOT_FOUND: &str = "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.";

/// A PNG cut off after its first chunks: it passes the gateway's check of the first bytes,
/// and the runner cannot decode it, so its task fails.
fn truncated_png() -> Vec<u8> {
    let mut png = image_bytes(40, 40, ImageFormat::Png);
    png.truncate(60);
    png
}

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

/// A POST of `body` as it is, with `content_type` (none if empty).
async fn post_raw(url: &str, content_type: &str, body: &str) -> (u16, Value) {
    let mut request = client().post(url).body(body.to_string());
    if !content_type.is_empty() {
        request = request.header("content-type", content_type);
    }
    json_of(request.send().await.unwrap()).await
}

/// Status and Location of a request that is answered with a redirect.
async fn redirected(method: reqwest::Method, url: &str) -> (u16, String) {
    let r = client().request(method, url).send().await.unwrap();
    let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), location.unwrap_or_default())
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
        let not_stored = get_json(&format!("{base}/api/images_tasks/{tid1}/images/{missing_id}")).await;
        assert_eq!(not_stored, (404, json!({ "message": NOT_FOUND })));

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
    let (tid, failed) = s.runtime.block_on(async {
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

        // A page that answers 404: the task reads `error`, and its text is a 404.
        let (status, created) = post_json(
            &format!("{base}/api/text_tasks/"),
            &json!({ "url": s.server.url("/status/404") }),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let failed = created["_id"].as_str().unwrap().to_string();
        let doc = finished(&format!("{base}/api/text_tasks/{failed}")).await;
        assert_eq!(doc["status"], "error", "{doc}");
        assert!(doc.get("text").is_none(), "{doc}");
        let text = get_json(&format!("{base}/api/text_tasks/{failed}/text")).await;
        assert_eq!(text, (404, json!({ "message": NOT_FOUND })));
        (tid, failed)
    });
    assert_task_succeeded(s, "texttask", &format!("collect-text-{tid}"), "collector-text");
    let task = s.kubectl.get_json(&[
        "texttask",
        &format!("collect-text-{failed}"),
        "-n",
        &gateway_namespace(),
    ]);
    assert_eq!(task["status"]["phase"], "Failed", "{}", task["status"]);
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

#[test]
fn the_collectors_4xx_answers_through_the_cluster() {
    let s = gw();
    let base = base(s);
    s.runtime.block_on(async {
        let need_url = json!({"message": "Request need to contain 'url' parameter"});
        for path in ["/api/images_tasks/", "/api/text_tasks/"] {
            let url = format!("{base}{path}");
            for body in [r#"{"wrong_param": 1}"#, r#"{"url": ""}"#] {
                let answer = post_raw(&url, "application/json", body).await;
                assert_eq!(answer, (400, need_url.clone()), "{path} {body}");
            }
            let (status, reply) = post_raw(&url, "application/json", r#"{"url": "not a url"}"#).await;
            assert_eq!(status, 400, "{path}: {reply}");
            assert!(reply["message"].as_str().unwrap().contains("{\"url\": "), "{reply}");
        }

        // Unknown ids (well-formed, in capitals, or not ObjectIds): no task resource by
        // that name, so Flask's 404.
        let unknown = "0123456789abcdef01234567";
        let capitals = "0123456789ABCDEF01234567";
        for path in [
            format!("/api/images_tasks/{unknown}"),
            format!("/api/images_tasks/{capitals}"),
            "/api/images_tasks/invalid_id".into(),
            format!("/api/images_tasks/{unknown}/images/{unknown}"),
            format!("/api/text_tasks/{unknown}"),
            "/api/text_tasks/invalid_id".into(),
            format!("/api/text_tasks/{unknown}/text"),
            "/media/nothing.png".into(),
            // A name the store could hold, which it does not: S3's 404 read as no image.
            format!("/media/{}.png", "a".repeat(64)),
        ] {
            let answer = get_json(&format!("{base}{path}")).await;
            assert_eq!(answer, (404, json!({ "message": NOT_FOUND })), "{path}");
        }
        // The original listed nothing for a well-formed unknown id and crashed on others.
        let listed = get_json(&format!("{base}/api/images_tasks/{unknown}/images/")).await;
        assert_eq!(listed, (200, json!([])));
        let (status, body) = get_json(&format!("{base}/api/images_tasks/invalid_id/images/")).await;
        assert_eq!(status, 404, "{body}");
        assert!(body["message"].as_str().unwrap().starts_with(NOT_FOUND), "{body}");
        let r = client().delete(format!("{base}/api/text_tasks/")).send().await.unwrap();
        assert_eq!(
            json_of(r).await,
            (
                405,
                json!({"message": "The method is not allowed for the requested URL."})
            )
        );
    });
}

#[test]
fn the_md5_services_4xx_answers_through_the_cluster() {
    let s = gw();
    let base = base(s);
    s.runtime.block_on(async {
        for (id, detail) in [("0", "Task 0 was not found"), ("-1", "Task -1 was not found")] {
            let answer = get_json(&format!("{base}/hashes/{id}")).await;
            assert_eq!(answer, (404, json!({ "detail": detail })), "{id}");
        }
        let answer = get_json(&format!("{base}/hashes/abc")).await;
        assert_eq!(
            answer,
            (
                422,
                json!({"detail": [{"loc": ["path", "task_id"], "msg": "value is not a valid integer", "type": "type_error.integer"}]})
            )
        );
        let missing =
            json!({"detail": [{"loc": ["body", "file"], "msg": "field required", "type": "value_error.missing"}]});
        let other_part = reqwest::multipart::Form::new().part(
            "upload",
            reqwest::multipart::Part::bytes(vec![1, 2, 3]).file_name("x.bin"),
        );
        let answer = post_form(&format!("{base}/hashes/"), other_part).await;
        assert_eq!(answer, (422, missing.clone()), "a form without `file`");
        let answer = post_raw(&format!("{base}/hashes/"), "text/plain", "hello").await;
        assert_eq!(answer, (422, missing), "not multipart");
        let answer = get_json(&format!("{base}/hashes/")).await;
        assert_eq!(answer, (405, json!({"detail": "Method Not Allowed"})));
        for (path, location) in [("/hashes", "/hashes/"), ("/hashes/1/", "/hashes/1")] {
            let answer = redirected(reqwest::Method::POST, &format!("{base}{path}")).await;
            assert_eq!(answer, (307, location.to_string()), "{path}");
        }
    });
}

#[test]
fn the_base64_resize_apis_4xx_answers_through_the_cluster() {
    let s = gw();
    let base = base(s);
    let engine = base64::engine::general_purpose::STANDARD;
    let token = s.runtime.block_on(async {
        let url = format!("{base}/api/v1/resize");
        for (body, want) in [
            ("not json".to_string(), "not JSON"),
            (json!({"image": "x"}).to_string(), "no string \"imageData\""),
            (json!({"imageData": ""}).to_string(), "empty or not base64"),
            (
                json!({"imageData": engine.encode("hello world")}).to_string(),
                "does not decode to an image",
            ),
        ] {
            let (status, reply) = post_raw(&url, "application/json", &body).await;
            assert_eq!((status, &reply["success"]), (400, &json!(false)), "{body}: {reply}");
            assert!(reply["message"].as_str().unwrap().contains(want), "{body}: {reply}");
        }

        // Unknown tokens, among them ones no task resource can be named after (a space, a
        // '%', capitals): the API server is not asked, it is no task.
        let unknown = "00000000-0000-4000-8000-000000000000";
        for token in [unknown, "Not%20A%20Token", "%25", "UPPER", "a.jpg.jpg"] {
            for path in [format!("/api/v1/resize/{token}"), format!("/api/v1/resize/{token}.jpg")] {
                let (status, reply) = get_json(&format!("{base}{path}")).await;
                assert_eq!((status, &reply["success"]), (404, &json!(false)), "{path}: {reply}");
                assert!(
                    reply["message"]
                        .as_str()
                        .unwrap()
                        .contains("no resize task has the token"),
                    "{path}: {reply}"
                );
            }
        }
        let (status, _, _) = get_bytes(&format!("{base}/api/v1/resize/")).await;
        assert_eq!(status, 404);

        // An image the runner cannot decode: FAILURE with why (a 422 where the original
        // crashed with 500), and no resized image.
        let data = engine.encode(truncated_png());
        let (status, body) = post_json(&url, &json!({ "imageData": data })).await;
        assert_eq!(status, 202, "{body}");
        let token = body["token"].as_str().unwrap().to_string();
        let (status, failed) = poll(&format!("{url}/{token}"), |b| {
            !matches!(b["status"].as_str(), Some("PENDING" | "IN_PROGRESS"))
        })
        .await;
        assert_eq!(
            (status, &failed["status"], &failed["resized_image_url"]),
            (422, &json!("FAILURE"), &Value::Null),
            "{failed}"
        );
        assert!(failed["message"].as_str().unwrap().contains("decode"), "{failed}");
        let (status, reply) = get_json(&format!("{url}/{token}.jpg")).await;
        assert_eq!((status, &reply["success"]), (404, &json!(false)), "{reply}");
        assert!(reply["message"].as_str().unwrap().contains("is not ready"), "{reply}");
        token
    });
    let task = s
        .kubectl
        .get_json(&["imagetask", &format!("b64-{token}"), "-n", &gateway_namespace()]);
    assert_eq!(task["status"]["phase"], "Failed", "{}", task["status"]);
}

#[test]
fn the_multipart_resize_apis_422s_and_404s_through_the_cluster() {
    let s = gw();
    let base = base(s);
    s.runtime.block_on(async {
        let url = format!("{base}/api/v1/images/resize");
        let jpg = || image_bytes(8, 8, ImageFormat::Jpeg);
        let sized = |form: reqwest::multipart::Form, w: &str, h: &str| {
            form.text("width", w.to_string()).text("height", h.to_string())
        };
        let other_part =
            reqwest::multipart::Form::new().part("upload", reqwest::multipart::Part::bytes(jpg()).file_name("a.jpg"));
        // The original's checks, in its order (a .gif is in the test above).
        let cases = [
            (sized(reqwest::multipart::Form::new(), "10", "10"), "No file given"),
            (sized(other_part, "10", "10"), "No file given"),
            (sized(file_form("", jpg()), "10", "10"), "No file given"),
            (sized(file_form("a.jpg", jpg()), "0", "0"), "Invalid size"),
            (sized(file_form("a.jpg", jpg()), "9999", "10"), "Invalid size"),
            (sized(file_form("a.jpg", jpg()), "10", "ten"), "Invalid size"),
            (file_form("a.jpg", jpg()).text("width", "10"), "Invalid size"),
            (sized(file_form("a.jpeg", jpg()), "10", "10"), "Invalid extension"),
        ];
        for (i, (form, message)) in cases.into_iter().enumerate() {
            let (status, body) = post_form(&url, form).await;
            assert_eq!(
                (status, &body["result"], &body["message"]),
                (422, &json!("error"), &json!(message)),
                "case {i}: {body}"
            );
        }

        let unknown = "00000000-0000-4000-8000-000000000000";
        let answer = get_json(&format!("{base}/api/v1/status/not-a-uuid")).await;
        assert_eq!(
            (answer.0, &answer.1["result"], &answer.1["message"]),
            (404, &json!("error"), &json!("Task not found")),
            "{}",
            answer.1
        );
        for id in [unknown, "not-a-uuid"] {
            let (status, body) = get_json(&format!("{base}/api/v1/images/result/{id}")).await;
            assert_eq!(
                (status, &body["result"], &body["message"]),
                (404, &json!("error"), &json!("Result not found")),
                "{id}: {body}"
            );
        }

        // Named .jpg but not an image: accepted (the original judged the name only), the
        // task fails and says why, and there is no result.
        let form = sized(file_form("fake.jpg", b"hello, not an image".to_vec()), "10", "10");
        let (status, body) = post_form(&url, form).await;
        assert_eq!(status, 202, "{body}");
        let id = body["task_id"].as_str().unwrap().to_string();
        let (status, failed) = poll(&format!("{base}/api/v1/status/{id}"), |b| {
            b["status"] == "SUCCESS" || b["status"] == "FAILURE"
        })
        .await;
        assert_eq!((status, &failed["status"]), (200, &json!("FAILURE")), "{failed}");
        assert!(
            failed["message"]
                .as_str()
                .unwrap()
                .contains("not JPEG, PNG, GIF or WebP"),
            "{failed}"
        );
        let (status, body) = get_json(&format!("{base}/api/v1/images/result/{id}")).await;
        assert_eq!((status, &body["message"]), (404, &json!("Result not found")), "{body}");
    });
}

#[test]
fn img_rests_4xx_answers_through_the_cluster() {
    let s = gw();
    let base = base(s);
    let guid = s.runtime.block_on(async {
        let url = format!("{base}/resize/");
        let bad_request =
            json!({"message": "The browser (or proxy) sent a request that this server could not understand."});
        let other_part =
            reqwest::multipart::Form::new().part("other", reqwest::multipart::Part::bytes(vec![1]).file_name("a.png"));
        assert_eq!(post_form(&url, other_part).await, (400, bad_request.clone()));
        assert_eq!(post_raw(&url, "", "").await, (400, bad_request));
        for (bytes, want) in [(vec![], "is empty"), (b"plain text".to_vec(), "is not a JPEG")] {
            let (status, body) = post_form(&url, file_form("fake_name", bytes)).await;
            assert_eq!(status, 400, "{body}");
            assert!(body["message"].as_str().unwrap().contains(want), "{body}");
        }
        let answer = redirected(reqwest::Method::POST, &format!("{base}/resize")).await;
        assert_eq!(answer, (308, "/resize/".to_string()));

        // Unknown guids: 404 where the original read `processing` for ever or crashed.
        for guid in ["00000000-0000-4000-8000-000000000000", "not-a-guid"] {
            let (status, body) = get_json(&format!("{base}/resize/status/{guid}")).await;
            assert_eq!(
                (status, &body["guid"], &body["status"]),
                (404, &json!(guid), &json!("unknown")),
                "{body}"
            );
            assert!(body["message"].as_str().unwrap().contains(guid), "{body}");
            let (status, image) = get_json(&format!("{base}/resize/{guid}")).await;
            assert_eq!((status, &image), (404, &body), "{guid}");
        }

        // An image the runner cannot decode: `failed` with why, as a 422, for the status and
        // the image alike.
        let (status, body) = post_form(&url, file_form("broken.png", truncated_png())).await;
        assert_eq!(status, 200, "{body}");
        let guid = body["guid"].as_str().unwrap().to_string();
        let (status, failed) = poll(&format!("{base}/resize/status/{guid}"), |b| b["status"] != "processing").await;
        assert_eq!(
            (status, &failed["guid"], &failed["status"]),
            (422, &json!(guid), &json!("failed")),
            "{failed}"
        );
        assert!(failed["message"].as_str().unwrap().contains("decode"), "{failed}");
        assert_eq!(get_json(&format!("{base}/resize/{guid}")).await, (422, failed));
        guid
    });
    let task = s
        .kubectl
        .get_json(&["imagetask", &format!("imgrest-{guid}"), "-n", &gateway_namespace()]);
    assert_eq!(task["status"]["phase"], "Failed", "{}", task["status"]);
}

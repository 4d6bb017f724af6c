//! The three resize APIs through the real gateway in local mode: 001 (base64, 100x100 JPEG
//! q100), 002 (multipart, WxH in the upload's format, 422 rules) and 003 (img-rest, 100x100
//! JPEG), with exact output sizes and the originals' error shapes.

mod support;

use base64::Engine;
use image::ImageFormat;
use serde_json::json;
use support::{Gateway, client, decoded, file_form, get_json, image_bytes, json_of, poll};

async fn bytes_of(url: &str) -> (u16, String, Vec<u8>) {
    let r = client().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, r.bytes().await.unwrap().to_vec())
}

// ---- 001: base64 resize ----

#[tokio::test]
async fn base64_resize_gives_a_100x100_jpeg() {
    let gw = Gateway::start();
    let png = base64::engine::general_purpose::STANDARD.encode(image_bytes(300, 120, ImageFormat::Png));
    let r = client()
        .post(gw.url("/api/v1/resize"))
        .json(&json!({ "imageData": png }))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["success"], true);
    let token = body["token"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&token).is_ok(), "{token}");
    let url = gw.url(&format!("/api/v1/resize/{token}"));
    let (_, first) = get_json(&url).await;
    assert!(
        ["PENDING", "IN_PROGRESS", "SUCCESS"].contains(&first["status"].as_str().unwrap()),
        "{first}"
    );
    let (status, done) = poll(&url, |_, b| b["status"] == "SUCCESS" || b["status"] == "FAILURE").await;
    assert_eq!(
        (status, done),
        (
            200,
            json!({"status": "SUCCESS", "resized_image_url": format!("{token}.jpg")})
        )
    );
    let (status, content_type, jpeg) = bytes_of(&gw.url(&format!("/api/v1/resize/{token}.jpg"))).await;
    assert_eq!((status, content_type.as_str()), (200, "image/jpeg"));
    assert_eq!(decoded(&jpeg), (ImageFormat::Jpeg, 100, 100));
}

#[tokio::test]
async fn base64_resize_refuses_bad_bodies_with_json() {
    let gw = Gateway::start();
    let c = client();
    for (body, want) in [
        ("not json".to_string(), "not JSON"),
        (json!({"image": "x"}).to_string(), "no string \"imageData\""),
        (json!({"imageData": ""}).to_string(), "empty or not base64"),
        (
            json!({"imageData": "aGVsbG8gd29ybGQ="}).to_string(),
            "does not decode to an image",
        ),
    ] {
        let r = c
            .post(gw.url("/api/v1/resize"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let (status, reply) = json_of(r).await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert_eq!(reply["success"], false);
        assert!(reply["message"].as_str().unwrap().contains(want), "{body}: {reply}");
    }
    let (status, reply) = get_json(&gw.url("/api/v1/resize/no-such-token")).await;
    assert_eq!(status, 404, "{reply}");
    assert_eq!(bytes_of(&gw.url("/api/v1/resize/")).await.0, 404);
}

// ---- 002: multipart resize with 422 rules ----

async fn post_resize(gw: &Gateway, form: reqwest::multipart::Form, query: &str) -> (u16, serde_json::Value) {
    let r = client()
        .post(gw.url(&format!("/api/v1/images/resize{query}")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    json_of(r).await
}

fn sized(form: reqwest::multipart::Form, w: &str, h: &str) -> reqwest::multipart::Form {
    form.text("width", w.to_string()).text("height", h.to_string())
}

#[tokio::test]
async fn multipart_resize_writes_width_by_height_in_the_uploads_format() {
    let gw = Gateway::start();
    for (name, format, w, h) in [
        ("test.jpg", ImageFormat::Jpeg, "100", "100"),
        ("photo.PNG", ImageFormat::Png, "37", "501"),
    ] {
        let form = sized(file_form("file", name, image_bytes(300, 500, format)), w, h);
        let (status, body) = post_resize(&gw, form, "").await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(
            (&body["status"], &body["message"]),
            (&json!("accepted"), &json!("Upload complete"))
        );
        let id = body["task_id"].as_str().unwrap();
        let (_, done) = poll(&gw.url(&format!("/api/v1/status/{id}")), |_, b| {
            b["status"] == "SUCCESS" || b["status"] == "FAILURE"
        })
        .await;
        assert_eq!(done, json!({"status": "SUCCESS"}));
        let (status, content_type, out) = bytes_of(&gw.url(&format!("/api/v1/images/result/{id}"))).await;
        assert_eq!(status, 200);
        let want_type = if format == ImageFormat::Png {
            "image/png"
        } else {
            "image/jpeg"
        };
        assert_eq!(content_type, want_type);
        assert_eq!(decoded(&out), (format, w.parse().unwrap(), h.parse().unwrap()));
        // Unlike the original, fetching twice works.
        assert_eq!(bytes_of(&gw.url(&format!("/api/v1/images/result/{id}"))).await.2, out);
    }
    // Size in the query string, as Flask's request.values allowed.
    let form = file_form("file", "q.jpg", image_bytes(20, 20, ImageFormat::Jpeg));
    let (status, body) = post_resize(&gw, form, "?width=10&height=20").await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn multipart_resize_answers_422_in_the_originals_order() {
    let gw = Gateway::start();
    let jpg = || image_bytes(8, 8, ImageFormat::Jpeg);
    let cases = [
        (sized(reqwest::multipart::Form::new(), "10", "10"), "No file given"),
        (sized(file_form("file", "", jpg()), "10", "10"), "No file given"),
        (sized(file_form("upload", "a.jpg", jpg()), "10", "10"), "No file given"),
        (sized(file_form("file", "a.jpg", jpg()), "0", "0"), "Invalid size"),
        (sized(file_form("file", "a.jpg", jpg()), "9999", "10"), "Invalid size"),
        (sized(file_form("file", "a.jpg", jpg()), "10", "10000"), "Invalid size"),
        (sized(file_form("file", "a.jpg", jpg()), "ten", "10"), "Invalid size"),
        (file_form("file", "a.jpg", jpg()).text("width", "10"), "Invalid size"),
        (sized(file_form("file", "a.gif", jpg()), "0", "10"), "Invalid size"),
        (
            sized(file_form("file", "a.gif", jpg()), "10", "10"),
            "Invalid extension",
        ),
        (
            sized(file_form("file", "a.jpeg", jpg()), "10", "10"),
            "Invalid extension",
        ),
        (sized(file_form("file", "jpg", jpg()), "10", "10"), "Invalid extension"),
    ];
    for (i, (form, message)) in cases.into_iter().enumerate() {
        let (status, body) = post_resize(&gw, form, "").await;
        assert_eq!(status, 422, "case {i}: {body}");
        assert_eq!(
            (&body["result"], &body["message"]),
            (&json!("error"), &json!(message)),
            "case {i}"
        );
        assert!(body["hint"].as_str().is_some_and(|h| !h.is_empty()), "case {i}: {body}");
    }
    // Refused uploads leave nothing in the store.
    let area = gw.store.path().join("uploads/default/resize-form");
    assert_eq!(std::fs::read_dir(&area).map(|d| d.count()).unwrap_or(0), 0);
    // Heights up to 9999 are fine.
    let (status, _) = post_resize(&gw, sized(file_form("file", "a.jpg", jpg()), "1", "9999"), "").await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn multipart_resize_status_and_result_errors() {
    let gw = Gateway::start();
    let missing = uuid::Uuid::new_v4();
    for path in [format!("/api/v1/status/{missing}"), "/api/v1/status/not-a-uuid".into()] {
        assert_eq!(get_json(&gw.url(&path)).await.1["message"], "Task not found", "{path}");
    }
    let (status, body) = get_json(&gw.url(&format!("/api/v1/images/result/{missing}"))).await;
    assert_eq!((status, &body["message"]), (404, &json!("Result not found")));
    // Not an image, though named .jpg: the task fails, and says why.
    let form = sized(
        file_form("file", "fake.jpg", b"hello, not an image".to_vec()),
        "10",
        "10",
    );
    let (_, body) = post_resize(&gw, form, "").await;
    let id = body["task_id"].as_str().unwrap();
    let (status, body) = poll(&gw.url(&format!("/api/v1/status/{id}")), |_, b| {
        b["status"] == "FAILURE"
    })
    .await;
    assert_eq!(status, 200);
    assert!(
        body["message"].as_str().unwrap().contains("not JPEG, PNG, GIF or WebP"),
        "{body}"
    );
    // CORS is open, as it was.
    let r = client()
        .get(gw.url(&format!("/api/v1/status/{id}")))
        .header("Origin", "http://example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let r = client()
        .delete(gw.url(&format!("/api/v1/status/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(r).await,
        (
            405,
            json!({"message": "The method is not allowed for the requested URL."})
        )
    );
    let preflight = client()
        .request(reqwest::Method::OPTIONS, gw.url("/api/v1/images/resize"))
        .header("Origin", "http://example.test")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 200);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
}

// ---- 003: img-rest ----

#[tokio::test]
async fn img_rest_resizes_to_100x100_jpeg() {
    let gw = Gateway::start();
    let c = client();
    let r = c
        .post(gw.url("/resize/"))
        .multipart(file_form("file", "big.png", image_bytes(1000, 1000, ImageFormat::Png)))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!(status, 200, "{body}");
    let guid = body["guid"].as_str().unwrap().to_string();
    let (status, done) = poll(&gw.url(&format!("/resize/status/{guid}")), |_, b| {
        b["status"] != "processing"
    })
    .await;
    assert_eq!((status, done), (200, json!({"guid": guid, "status": "complete"})));
    let (status, content_type, jpeg) = bytes_of(&gw.url(&format!("/resize/{guid}"))).await;
    assert_eq!((status, content_type.as_str()), (200, "image/jpeg"));
    assert_eq!(decoded(&jpeg), (ImageFormat::Jpeg, 100, 100));
}

#[tokio::test]
async fn img_rest_refuses_what_the_original_crashed_on() {
    let gw = Gateway::start();
    let c = client();
    let bad_request =
        json!({"message": "The browser (or proxy) sent a request that this server could not understand."});
    let r = c
        .post(gw.url("/resize/"))
        .multipart(file_form("other", "a.png", vec![1]))
        .send()
        .await;
    assert_eq!(json_of(r.unwrap()).await, (400, bad_request.clone()));
    let r = c.post(gw.url("/resize/")).send().await;
    assert_eq!(json_of(r.unwrap()).await, (400, bad_request));
    for (bytes, want) in [(vec![], "is empty"), (b"plain text".to_vec(), "is not a JPEG")] {
        let r = c
            .post(gw.url("/resize/"))
            .multipart(file_form("file", "fake_name", bytes))
            .send()
            .await;
        let (status, body) = json_of(r.unwrap()).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["message"].as_str().unwrap().contains(want), "{body}");
    }
    let r = c.post(gw.url("/resize")).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.headers()["location"].to_str().unwrap()),
        (308, "/resize/")
    );
    let missing = uuid::Uuid::new_v4();
    let (status, body) = get_json(&gw.url(&format!("/resize/status/{missing}"))).await;
    assert_eq!((status, &body["status"]), (404, &json!("unknown")));
    assert_eq!(get_json(&gw.url(&format!("/resize/{missing}"))).await.0, 404);
}

//! The gateway's own API (`/v1/tasks`) through the real gateway in local mode: digests of
//! chosen algorithms equal coreutils', a resize honours width, height, fit and format, an
//! uploaded document's text and title, and every bad request says what to send.

mod support;

use image::ImageFormat;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use support::{Gateway, client, decoded, get_json, image_bytes, json_of, poll};
use taskyard_tests::files::coreutils_digest;

/// A form with `fields` first, then the file.
fn form(fields: &[(&str, &str)], filename: &str, bytes: Vec<u8>) -> Form {
    let mut form = Form::new();
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    form.part("file", Part::bytes(bytes).file_name(filename.to_string()))
}

/// Creates a task; its document once finished.
async fn run(gw: &Gateway, form: Form) -> Value {
    let (status, created) = json_of(client().post(gw.url("/v1/tasks")).multipart(form).send().await.unwrap()).await;
    assert_eq!(status, 201, "{created}");
    let url = created["url"].as_str().unwrap();
    assert_eq!(
        url,
        format!(
            "/v1/tasks/{}/{}",
            created["kind"].as_str().unwrap(),
            created["name"].as_str().unwrap()
        )
    );
    let (status, doc) = poll(&gw.url(url), |_, b| {
        matches!(b["phase"].as_str(), Some("Succeeded" | "Failed"))
    })
    .await;
    assert_eq!((status, &doc["phase"]), (200, &json!("Succeeded")), "{doc}");
    doc
}

async fn bytes_of(gw: &Gateway, path: &str) -> (u16, String, Vec<u8>) {
    let r = client().get(gw.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn digests_of_the_chosen_algorithms_match_coreutils() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    taskyard_tests::files::write_pattern(&path, 300_000, 7);
    let doc = run(
        &gw,
        form(
            &[("action", "hash"), ("algorithms", "md5,sha1,sha256,sha512")],
            "data.bin",
            std::fs::read(&path).unwrap(),
        ),
    )
    .await;
    assert_eq!(doc["kind"], "HashTask");
    for alg in ["md5", "sha1", "sha256", "sha512"] {
        assert_eq!(
            doc["status"]["digests"][alg],
            json!(coreutils_digest(alg, &path)),
            "{alg}"
        );
    }
    assert_eq!(doc["status"]["size"], 300_000);
    assert_eq!(doc["outputs"], json!([]));
}

#[tokio::test]
async fn a_resize_honours_size_fit_and_format() {
    let gw = Gateway::start();
    let jpeg = image_bytes(300, 100, ImageFormat::Jpeg);
    let cases = [
        (
            &[("width", "64"), ("height", "48"), ("fit", "cover"), ("format", "png")][..],
            ImageFormat::Png,
            (64, 48),
        ),
        (
            &[
                ("width", "64"),
                ("height", "48"),
                ("fit", "contain"),
                ("format", "webp"),
            ][..],
            ImageFormat::WebP,
            (64, 21),
        ),
        (
            &[("width", "50"), ("height", "50"), ("fit", "fill")][..],
            ImageFormat::Jpeg,
            (50, 50),
        ),
    ];
    for (options, format, size) in cases {
        let mut fields = vec![("action", "resize")];
        fields.extend_from_slice(options);
        let doc = run(&gw, form(&fields, "photo.jpg", jpeg.clone())).await;
        let out = &doc["outputs"][0];
        let (status, _, bytes) = bytes_of(&gw, out["url"].as_str().unwrap()).await;
        assert_eq!(status, 200, "{doc}");
        let (found, w, h) = decoded(&bytes);
        assert_eq!((found, (w, h)), (format, size), "{options:?}: {doc}");
        assert_eq!((&out["width"], &out["height"]), (&json!(w), &json!(h)));
    }
}

#[tokio::test]
async fn an_uploaded_documents_text_and_title() {
    let gw = Gateway::start();
    let html =
        "<html><head><title>Quarterly report</title></head><body><p>Sales rose.</p><script>x()</script></body></html>";
    let doc = run(&gw, form(&[("action", "text")], "report.html", html.into())).await;
    assert_eq!(doc["status"]["title"], "Quarterly report", "{doc}");
    let (status, ct, text) = bytes_of(&gw, doc["outputs"][0]["url"].as_str().unwrap()).await;
    assert_eq!((status, ct.as_str()), (200, "text/plain; charset=utf-8"));
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("Sales rose.") && !text.contains("x()"), "{text:?}");
}

#[tokio::test]
async fn bad_requests_say_what_to_send() {
    let gw = Gateway::start();
    let post =
        |form: Form| async { json_of(client().post(gw.url("/v1/tasks")).multipart(form).send().await.unwrap()).await };
    let cases = [
        (form(&[], "a.txt", b"x".to_vec()), "the form has no action"),
        (
            form(&[("action", "zip")], "a.txt", b"x".to_vec()),
            "the action \"zip\" is unknown",
        ),
        (
            form(&[("action", "resize"), ("width", "9")], "a.png", b"x".to_vec()),
            "a resize needs height",
        ),
        (Form::new().text("action", "hash"), "the form has no file"),
    ];
    for (f, expected) in cases {
        let (status, body) = post(f).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["message"].as_str().unwrap().contains(expected), "{body}");
    }
    let not_multipart = client().post(gw.url("/v1/tasks")).body("x").send().await.unwrap();
    let (status, body) = json_of(not_multipart).await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("send multipart/form-data"),
        "{body}"
    );
    // A refused upload is not left in the store.
    let uploads = gw.store.path().join("uploads/default/web");
    let left = std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "uploads left in {}", uploads.display());

    let (status, body) = get_json(&gw.url("/v1/tasks/ZipTask/x")).await;
    assert_eq!(status, 404);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("expected ImageTask, TextTask or HashTask"),
        "{body}"
    );
    let (status, body) = get_json(&gw.url("/v1/tasks/HashTask/web-none")).await;
    assert_eq!(status, 404);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no HashTask is named \"web-none\""),
        "{body}"
    );
    let doc = run(&gw, form(&[("action", "hash")], "a.txt", b"x".to_vec())).await;
    let (status, body) = get_json(&gw.url(&format!(
        "/v1/tasks/HashTask/{}/outputs/0",
        doc["name"].as_str().unwrap()
    )))
    .await;
    assert_eq!(status, 404);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("has no output \"0\"; it has 0"),
        "{body}"
    );
}

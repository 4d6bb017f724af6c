//! Runner memory is a promise: for any input within the documented limits the real
//! `job-runner run` peaks under 256 MiB of resident memory. Each hostile input of issue 10
//! is served from a loopback server; the runner's peak RSS comes from wait4's rusage.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use support::images::{gif_with_frame, padded_png, png_gradient};
use support::{Reply, Run, Server, run_task, task_yaml};

const LIMIT_MIB: u64 = 256;
const TIMEOUT: Duration = Duration::from_secs(240);

async fn serve(routes: Vec<(&str, Reply)>) -> Server {
    Server::start(
        routes
            .into_iter()
            .map(|(p, r)| (p.to_string(), r))
            .collect::<HashMap<_, _>>(),
    )
    .await
}

async fn run_kind(kind: &str, spec: String, extra: &'static [&'static str]) -> (Run, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let yaml = task_yaml(kind, &spec);
    let run = tokio::task::spawn_blocking(move || run_task(&store, &yaml, extra, TIMEOUT))
        .await
        .unwrap();
    (run, dir)
}

fn assert_bounded(case: &str, run: &Run) {
    eprintln!(
        "peak RSS {case}: {} MiB (exit {}, {:?})",
        run.peak_mib(),
        run.code,
        run.elapsed
    );
    assert!(
        run.peak_mib() < LIMIT_MIB,
        "{case}: peak RSS {} MiB, over {LIMIT_MIB} MiB; status {}",
        run.peak_mib(),
        run.status
    );
}

/// What a one-image task says about its image: the item's error, or (when that one image
/// failed, and so the task) the task's message.
fn image_error(run: &Run) -> String {
    match run.status["items"][0]["error"].as_str() {
        Some(e) => e.to_string(),
        None => run.message().to_string(),
    }
}

#[tokio::test]
async fn gif_frame_larger_than_its_screen() {
    let http = serve(vec![(
        "/bomb.gif",
        Reply::Body("image/gif", gif_with_frame((1, 1), (11000, 11000)).into()),
    )])
    .await;
    let (run, _dir) = run_kind(
        "ImageTask",
        format!("  source: {{url: '{}'}}", http.url("/bomb.gif")),
        &[],
    )
    .await;
    assert_bounded("GIF 1x1 screen, 11000x11000 frame", &run);
    assert_eq!(run.code, 1, "{}", run.status);
    let error = image_error(&run);
    assert!(
        error.contains("LimitExceeded: the image has a frame that is 11000x11000"),
        "{error}"
    );
    assert!(error.contains("--max-image-pixels"), "{error}");
}

#[tokio::test]
async fn resize_to_ten_thousand_square() {
    let http = serve(vec![(
        "/a.png",
        Reply::Body("image/png", png_gradient(64, 64, png::BitDepth::Eight).into()),
    )])
    .await;
    for fit in ["fill", "cover", "contain"] {
        let spec = format!(
            "  source: {{url: '{}'}}\n  resize: {{width: 10000, height: 10000, fit: {fit}}}",
            http.url("/a.png")
        );
        let (run, _dir) = run_kind("ImageTask", spec, &[]).await;
        assert_bounded(&format!("resize 64x64 to 10000x10000 {fit}"), &run);
        assert_eq!(run.code, 1, "{}", run.status);
        let said = image_error(&run);
        assert!(said.contains("10000x10000 = 100000000 pixels"), "{fit}: {said}");
        assert!(said.contains("--max-output-pixels"), "{fit}: {said}");
    }
}

#[tokio::test]
async fn sixteen_bit_rgba_png_just_under_the_pixel_limit() {
    // 7000 x 7000 = 49 MP; 392 MB as 16-bit RGBA, 196 MB even stripped to 8 bits.
    let big = Bytes::from(png_gradient(7000, 7000, png::BitDepth::Sixteen));
    let http = serve(vec![("/deep.png", Reply::Body("image/png", big))]).await;
    let (run, _dir) = run_kind(
        "ImageTask",
        format!("  source: {{url: '{}'}}", http.url("/deep.png")),
        &[],
    )
    .await;
    assert_bounded("49 MP 16-bit RGBA PNG, stored as is", &run);
    assert_eq!(run.code, 0, "{}", run.status);
    assert_eq!(run.status["items"][0]["width"], 7000);
    let spec = format!(
        "  source: {{url: '{}'}}\n  resize: {{width: 300, height: 300, format: jpeg}}",
        http.url("/deep.png")
    );
    let (run, _dir) = run_kind("ImageTask", spec, &[]).await;
    assert_bounded("49 MP 16-bit RGBA PNG, resized to 300x300", &run);
    assert_eq!(run.code, 0, "{}", run.status);
    assert_eq!(
        (
            run.status["items"][0]["width"].as_u64(),
            run.status["items"][0]["height"].as_u64()
        ),
        (Some(300), Some(300))
    );
}

#[tokio::test]
async fn eight_images_just_under_the_size_limit() {
    let body = Bytes::from(padded_png((50 << 20) - 64 * 1024));
    assert!(body.len() < 50 << 20);
    let page: String = (0..8).map(|i| format!("<img src=\"/i{i}.png\">")).collect();
    let mut routes = vec![("/page.html", Reply::Body("text/html", Bytes::from(page)))];
    let names: Vec<String> = (0..8).map(|i| format!("/i{i}.png")).collect();
    for (i, name) in names.iter().enumerate() {
        // Half with a Content-Length, half chunked: both are bounded.
        let reply = if i % 2 == 0 {
            Reply::Body("image/png", body.clone())
        } else {
            Reply::Chunked("image/png", body.clone())
        };
        routes.push((name.as_str(), reply));
    }
    let http = serve(routes).await;
    let (run, _dir) = run_kind(
        "ImageTask",
        format!("  source: {{page: '{}'}}", http.url("/page.html")),
        &[],
    )
    .await;
    assert_bounded("8 images of 49.9 MiB", &run);
    assert_eq!(run.code, 0, "{}", run.status);
    assert_eq!(run.status["images"]["stored"], 8, "{}", run.status);
}

#[tokio::test]
async fn unclosed_formatting_tags() {
    // A 9 MB page: 500 distinct unclosed <font>s, then blocks whose text re-opens them all.
    let mut page = String::from("<div>");
    page.extend((0..500).map(|i| format!("<font id={i}>")));
    page.push_str("</div>");
    page.push_str(&"<div>x</div><img src=a.png>".repeat(9_000_000 / 26));
    let http = serve(vec![("/tags.html", Reply::Body("text/html", Bytes::from(page)))]).await;
    let (run, _dir) = run_kind(
        "ImageTask",
        format!("  source: {{page: '{}'}}", http.url("/tags.html")),
        &[],
    )
    .await;
    assert_bounded("ImageTask of a page of unclosed formatting tags", &run);
    assert_eq!(run.reason(), "LimitExceeded", "{}", run.status);
    assert!(run.message().contains("--max-html-elements"), "{}", run.message());
    let (run, _dir) = run_kind(
        "TextTask",
        format!("  source: {{page: '{}'}}", http.url("/tags.html")),
        &[],
    )
    .await;
    assert_bounded("TextTask of a page of unclosed formatting tags", &run);
    assert_eq!(run.reason(), "LimitExceeded", "{}", run.status);
}

#[tokio::test]
async fn huge_title_and_long_urls_keep_result_json_small() {
    let title = "T".repeat(9_000_000);
    let page = format!("<html><head><title>{title}</title></head><body><p>hello</p></body></html>");
    let mut long: String = (0..50)
        .map(|i| format!("<img src=\"/{i}/{}.png\">", "u".repeat(100_000)))
        .collect();
    long.push_str("<img src=\"/ok.png\">");
    let http = serve(vec![
        ("/title.html", Reply::Body("text/html", Bytes::from(page))),
        ("/long.html", Reply::Body("text/html", Bytes::from(long))),
        (
            "/ok.png",
            Reply::Body("image/png", png_gradient(8, 8, png::BitDepth::Eight).into()),
        ),
    ])
    .await;
    let (run, dir) = run_kind(
        "TextTask",
        format!("  source: {{page: '{}'}}", http.url("/title.html")),
        &[],
    )
    .await;
    assert_bounded("TextTask with a 9 MB title", &run);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let result = support::find_file(dir.path(), "result.json").unwrap();
    let len = std::fs::metadata(&result).unwrap().len();
    assert!(len < 64 << 10, "result.json is {len} bytes");
    assert!(run.stdout_len < 64 << 10, "status is {} bytes", run.stdout_len);
    let manifest = support::find_file(dir.path(), "manifest.json").unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    assert_eq!(
        manifest["title"].as_str().map(str::len),
        Some(9_000_000),
        "the whole title stays in the manifest"
    );

    let (run, dir) = run_kind(
        "ImageTask",
        format!("  source: {{page: '{}'}}", http.url("/long.html")),
        &[],
    )
    .await;
    assert_bounded("ImageTask with 50 URLs of 100 KB", &run);
    let result = support::find_file(dir.path(), "result.json").unwrap();
    let len = std::fs::metadata(&result).unwrap().len();
    assert!(len < 256 << 10, "result.json is {len} bytes");
    assert_eq!(run.code, 0, "{}", run.status);
    assert_eq!(run.status["images"]["failed"], 50);
    let items = run.status["items"].as_array().unwrap();
    assert_eq!(items.len(), 50);
    assert!(
        items
            .iter()
            .all(|i| i["source"].as_str().unwrap().chars().count() <= 512)
    );
}

/// A `w`x`h` RGB image of soft gradients, encoded as `format` (no noise: the files stay small).
fn smooth(w: u32, h: u32, format: image::ImageFormat) -> Bytes {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x / 32) as u8, (y / 32) as u8, ((x + y) / 64) as u8])
    }));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    Bytes::from(out.into_inner())
}

#[tokio::test]
async fn jpeg_just_under_the_pixel_limit() {
    let http = serve(vec![(
        "/big.jpg",
        Reply::Body("image/jpeg", smooth(7000, 7000, image::ImageFormat::Jpeg)),
    )])
    .await;
    let (run, _dir) = run_kind(
        "ImageTask",
        format!("  source: {{url: '{}'}}", http.url("/big.jpg")),
        &[],
    )
    .await;
    assert_bounded("49 MP JPEG, stored as is", &run);
    assert_eq!(run.code, 0, "{}", run.status);
    let spec = format!(
        "  source: {{url: '{}'}}\n  resize: {{width: 300, height: 300, fit: cover}}",
        http.url("/big.jpg")
    );
    let (run, _dir) = run_kind("ImageTask", spec, &[]).await;
    assert_bounded("49 MP JPEG, resized to 300x300", &run);
    assert_eq!(run.code, 0, "{}", run.status);
    // Resizing to a large box needs the whole image decoded: past the working memory.
    let spec = format!(
        "  source: {{url: '{}'}}\n  resize: {{width: 6000, height: 6000}}",
        http.url("/big.jpg")
    );
    let (run, _dir) = run_kind("ImageTask", spec, &[]).await;
    assert_bounded("49 MP JPEG, resized to 6000x6000", &run);
    assert!(
        image_error(&run).contains("LimitExceeded: processing the 7000x7000 Jpeg image"),
        "{}",
        image_error(&run)
    );
    assert!(
        image_error(&run).contains("--image-work-bytes"),
        "{}",
        image_error(&run)
    );
}

#[tokio::test]
async fn webp_decoded_whole() {
    let http = serve(vec![
        (
            "/mid.webp",
            Reply::Body("image/webp", smooth(4000, 4000, image::ImageFormat::WebP)),
        ),
        (
            "/big.webp",
            Reply::Body("image/webp", smooth(7000, 7000, image::ImageFormat::WebP)),
        ),
    ])
    .await;
    let (run, _dir) = run_kind(
        "ImageTask",
        format!("  source: {{url: '{}'}}", http.url("/mid.webp")),
        &[],
    )
    .await;
    assert_bounded("16 MP WebP, stored as is", &run);
    assert_eq!(run.code, 0, "{}", run.status);
    // WebP has no row-by-row decoder: 49 MP would take 196 MB, past the working memory.
    let (run, _dir) = run_kind(
        "ImageTask",
        format!("  source: {{url: '{}'}}", http.url("/big.webp")),
        &[],
    )
    .await;
    assert_bounded("49 MP WebP", &run);
    assert!(
        image_error(&run).contains("LimitExceeded: processing the 7000x7000 WebP image"),
        "{}",
        image_error(&run)
    );
}

/// Hashing streams through a few fixed buffers: a gigabyte from the store, and a quarter of
/// one over HTTP, each keep the runner under 64 MiB (issue 12's bound for a 1 GiB hash).
#[tokio::test(flavor = "multi_thread")]
async fn hashing_large_inputs_stays_under_64_mib() {
    const HASH_LIMIT_MIB: u64 = 64;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let file = store.join("uploads/default/big.bin");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    // Sparse: a gigabyte of zeros that costs no disk.
    std::fs::File::create(&file).unwrap().set_len(1 << 30).unwrap();
    let want = taskyard_tests::files::coreutils_digest("md5", &file);
    let yaml = task_yaml("HashTask", "  source: {object: big.bin}");
    let run = tokio::task::spawn_blocking(move || run_task(&store, &yaml, &[], TIMEOUT))
        .await
        .unwrap();
    assert_eq!(run.status["digests"]["md5"], want.as_str(), "{}", run.status);
    assert!(
        run.peak_mib() < HASH_LIMIT_MIB,
        "1 GiB from the store: peak RSS {} MiB",
        run.peak_mib()
    );

    let body = Bytes::from(vec![0u8; 256 << 20]);
    let server = serve(vec![("/big.bin", Reply::Chunked("application/octet-stream", body))]).await;
    let (run, _dir) = run_kind(
        "HashTask",
        format!("  source: {{url: \"http://{}/big.bin\"}}", server.addr),
        &[],
    )
    .await;
    assert_eq!(run.status["size"], 256u64 << 20, "{}", run.status);
    assert!(
        run.peak_mib() < HASH_LIMIT_MIB,
        "256 MiB over HTTP: peak RSS {} MiB",
        run.peak_mib()
    );
}

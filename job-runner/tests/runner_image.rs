//! ImageTask against a fixture website on a real HTTP server (`job-runner run`, a directory
//! store): the exact URLs collected, failures with their reasons, sharing across tasks,
//! resizing geometry, EXIF orientation, and a status that stays small for a large page.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use taskyard_tests::cluster::ClusterEnv;
use taskyard_tests::http::FixtureServer;
use taskyard_tests::images::write_site;
use taskyard_tests::local_run::run_task;

struct Site {
    dir: tempfile::TempDir,
    http: FixtureServer,
}

async fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    write_site(dir.path());
    let http = FixtureServer::start(ClusterEnv::load().host_ip(), dir.path().to_path_buf()).await;
    let origin = format!("{}", http.addr);
    let gallery = format!(
        r#"<html><head><base href="/files/"></head><body>
        <img src="a.png"><img src="a.png"><img src="/files/b.jpg">
        <img src="//{origin}/files/c.gif">
        <img src="small.jpg" srcset="small.jpg 100w, large.jpg 800w">
        <picture><source srcset="hero.webp 1x, hero-2x.png 2x"><img src="fallback.png"></picture>
        <img src="data:image/png;base64,iVBORw0KGgo=">
        <img src="missing.png"><img src="fake.png?type=image/png"><img src="huge.png">
        <img src="truncated.jpg"><img src="rotated.jpg">
        </body></html>"#
    );
    std::fs::write(dir.path().join("gallery.html"), gallery).unwrap();
    let many: String = (0..3000)
        .map(|i| format!("<img src=\"/files/tiny.png?i={i}\">\n"))
        .collect();
    std::fs::write(
        dir.path().join("many.html"),
        format!("<html><body>{many}</body></html>"),
    )
    .unwrap();
    Site { dir, http }
}

/// Runs an ImageTask whose spec (after `source:`) is `spec`; returns (exit code, status, stdout bytes).
async fn run_image_task(store: &Path, spec: &str) -> (i32, Value, usize) {
    let yaml =
        format!("apiVersion: taskyard.dev/v1alpha1\nkind: ImageTask\nmetadata: {{name: gallery}}\nspec:\n{spec}\n");
    let run = run_task(env!("CARGO_BIN_EXE_job-runner"), store, &yaml, &[]).await;
    (run.code, run.status, run.stdout_len)
}

fn manifest(store: &Path, status: &Value) -> Vec<Value> {
    let key = status["manifest"].as_str().expect("a manifest key");
    let m: Value = serde_json::from_slice(&std::fs::read(store.join(key)).unwrap()).unwrap();
    m["items"].as_array().unwrap().clone()
}

fn stored_objects(store: &Path) -> usize {
    walk(&store.join("images"))
}

fn walk(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                walk(&p)
            } else {
                usize::from(!p.file_name().unwrap().to_string_lossy().starts_with('.'))
            }
        })
        .sum()
}

fn counts(status: &Value) -> [u64; 5] {
    let c = &status["images"];
    ["found", "stored", "reused", "failed", "skipped"].map(|k| c[k].as_u64().unwrap_or(u64::MAX))
}

fn decode(store: &Path, key: &str) -> image::DynamicImage {
    image::load_from_memory(&std::fs::read(store.join(key)).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn collects_every_reference_form_and_explains_every_failure() {
    let s = site().await;
    let store = s.dir.path().join("store");
    let page = s.http.url("/files/gallery.html");
    let (code, status, _) = run_image_task(&store, &format!("  source: {{page: \"{page}\"}}")).await;
    assert_eq!(code, 0, "{status:?}");
    assert_eq!(counts(&status), [12, 8, 0, 4, 1], "{status:?}");

    let items = manifest(&store, &status);
    let base = s.http.url("/files/");
    let sources: BTreeSet<String> = items
        .iter()
        .map(|i| i["source"].as_str().unwrap().to_string())
        .collect();
    let mut want: BTreeSet<String> = [
        "a.png",
        "b.jpg",
        "c.gif",
        "small.jpg",
        "large.jpg",
        "hero-2x.png",
        "fallback.png",
        "missing.png",
        "fake.png?type=image/png",
        "huge.png",
        "truncated.jpg",
        "rotated.jpg",
    ]
    .iter()
    .map(|f| format!("{base}{f}"))
    .collect();
    want.insert("data:image/png;base64,iVBORw0KGgo=".into());
    assert_eq!(sources, want);

    let error_of = |name: &str| -> String {
        let item = items
            .iter()
            .find(|i| i["source"].as_str().unwrap().ends_with(name))
            .unwrap();
        assert_eq!(item["state"], "Failed", "{item}");
        item["error"].as_str().unwrap().to_string()
    };
    assert!(error_of("missing.png").contains("HTTP 404"));
    assert!(error_of("fake.png?type=image/png").contains("not an image"));
    let huge = error_of("huge.png");
    assert!(
        huge.contains("40000x40000") && huge.contains("--max-image-pixels"),
        "{huge}"
    );
    assert!(error_of("truncated.jpg").contains("decode"));

    // Stored originals: at the shared key, with the type from the bytes.
    let a = items
        .iter()
        .find(|i| i["source"].as_str().unwrap().ends_with("/a.png"))
        .unwrap();
    assert_eq!(a["state"], "Stored");
    assert_eq!((a["width"].as_u64(), a["height"].as_u64()), (Some(120), Some(80)));
    assert_eq!(a["contentType"], "image/png");
    assert!(a["key"].as_str().unwrap().starts_with("images/") && a["key"].as_str().unwrap().ends_with(".png"));
    assert_eq!(stored_objects(&store), 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_task_reuses_everything_without_downloading() {
    let s = site().await;
    let store = s.dir.path().join("store");
    let page = format!("  source: {{page: \"{}\"}}", s.http.url("/files/gallery.html"));
    let (code, first, _) = run_image_task(&store, &page).await;
    assert_eq!(code, 0);
    let fetched_once = s.http.hits("/files/a.png");
    assert_eq!(fetched_once, 1);

    let (code, status, _) = run_image_task(&store, &page).await;
    assert_eq!(code, 0);
    assert_eq!(counts(&status), [12, 0, 8, 4, 1], "{status:?}");
    assert_eq!(s.http.hits("/files/a.png"), 1, "a stored image was downloaded again");
    assert_eq!(s.http.hits("/files/large.jpg"), 1);
    assert_eq!(stored_objects(&store), 8);
    // A reused item describes its image as fully as the item that stored it.
    let described = |status: &Value, state: &str| -> Vec<(String, u64, u64, u64)> {
        manifest(&store, status)
            .iter()
            .filter(|i| i["state"] == state)
            .map(|i| {
                let n = |k: &str| i[k].as_u64().unwrap_or_else(|| panic!("no {k} in {i}"));
                (
                    i["source"].as_str().unwrap().to_string(),
                    n("width"),
                    n("height"),
                    n("bytes"),
                )
            })
            .collect()
    };
    assert_eq!(described(&status, "Reused"), described(&first, "Stored"));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_tasks_on_one_page_at_once_both_succeed_with_one_object_per_image() {
    let s = site().await;
    let store = s.dir.path().join("store");
    let page = format!("  source: {{page: \"{}\"}}", s.http.url("/files/gallery.html"));
    let (first, second) = tokio::join!(run_image_task(&store, &page), run_image_task(&store, &page));
    assert_eq!((first.0, second.0), (0, 0));
    let [f1, s1, r1, ..] = counts(&first.1);
    let [f2, s2, r2, ..] = counts(&second.1);
    assert_eq!((f1, f2), (12, 12));
    assert_eq!((s1 + r1, s2 + r2), (8, 8));
    assert_eq!(s1 + s2, 8, "each image is stored by exactly one task");
    assert_eq!(stored_objects(&store), 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn resizes_to_exact_or_contained_geometry_in_every_format() {
    let s = site().await;
    let store = s.dir.path().join("store");
    let url = s.http.url("/files/b.jpg"); // 300x200
    for (fit, format, (w, h), want_type) in [
        ("fill", "jpeg", (64, 48), "image/jpeg"),
        ("cover", "png", (50, 50), "image/png"),
        ("contain", "webp", (100, 100), "image/webp"),
        ("contain", "original", (90, 30), "image/jpeg"),
    ] {
        let spec = format!(
            "  source: {{url: \"{url}\"}}\n  resize: {{width: {w}, height: {h}, fit: {fit}, format: {format}, quality: 80}}"
        );
        let (code, status, _) = run_image_task(&store, &spec).await;
        assert_eq!(code, 0, "{fit}/{format}: {status:?}");
        let item = &status["items"][0];
        assert_eq!(item["contentType"], want_type);
        assert!(item["originalKey"].as_str().unwrap().ends_with(".jpg"));
        let key = item["key"].as_str().unwrap();
        assert!(key.contains(&format!("-{w}x{h}-{fit}-q80.")), "{key}");
        let out = decode(&store, key);
        let (ow, oh) = (out.width(), out.height());
        assert_eq!(
            (item["width"].as_u64(), item["height"].as_u64()),
            (Some(ow as u64), Some(oh as u64))
        );
        match fit {
            "contain" => {
                assert!(
                    ow <= w && oh <= h && (ow == w || oh == h),
                    "{fit}: {ow}x{oh} in {w}x{h}"
                );
                let aspect = ow as f64 / oh as f64;
                assert!((aspect - 1.5).abs() < 0.06, "aspect {aspect}");
            }
            _ => assert_eq!((ow, oh), (w, h), "{fit}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exif_rotated_input_comes_out_upright() {
    let s = site().await;
    let store = s.dir.path().join("store");
    let spec = format!(
        "  source: {{url: \"{}\"}}\n  resize: {{width: 100, height: 100, fit: contain, format: png}}",
        s.http.url("/files/rotated.jpg")
    );
    let (code, status, _) = run_image_task(&store, &spec).await;
    assert_eq!(code, 0, "{status:?}");
    let out = decode(&store, status["items"][0]["key"].as_str().unwrap()).to_rgb8();
    assert_eq!(out.dimensions(), (50, 100), "turned upright: portrait");
    // The stored original keeps its EXIF; reused, it is still described upright.
    let original = format!("  source: {{url: \"{}\"}}", s.http.url("/files/rotated.jpg"));
    for (spec, want) in [(&spec, (50, 100)), (&original, (20, 40))] {
        let (code, again, _) = run_image_task(&store, spec).await;
        assert_eq!(code, 0, "{again:?}");
        let item = &again["items"][0];
        assert_eq!(item["state"], "Reused", "{item}");
        assert_eq!(
            (item["width"].as_u64(), item["height"].as_u64()),
            (Some(want.0), Some(want.1)),
            "{item}"
        );
    }
    let top = out.get_pixel(25, 10);
    let bottom = out.get_pixel(25, 90);
    assert!(top[0] > 200 && top[2] < 60, "top is red: {top:?}");
    assert!(bottom[2] > 200 && bottom[0] < 60, "bottom is blue: {bottom:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_of_3000_images_keeps_status_small_and_the_cap_is_reported() {
    let s = site().await;
    let store = s.dir.path().join("store");
    let page = s.http.url("/files/many.html");
    let (code, status, stdout_len) =
        run_image_task(&store, &format!("  source: {{page: \"{page}\"}}\n  maxImages: 5000")).await;
    assert_eq!(code, 0, "{status:?}");
    assert_eq!(counts(&status), [3000, 3000, 0, 0, 0]);
    assert_eq!(status["items"].as_array().unwrap().len(), 50);
    assert!(stdout_len < 32 * 1024, "status is {stdout_len} bytes");
    assert_eq!(manifest(&store, &status).len(), 3000);

    let (code, status, _) = run_image_task(&store, &format!("  source: {{page: \"{page}\"}}\n  maxImages: 10")).await;
    assert_eq!(code, 0);
    assert_eq!(counts(&status)[0], 10);
    assert_eq!(status["images"]["truncated"].as_u64(), Some(2990));
    let message = status["conditions"][0]["message"].as_str().unwrap();
    assert!(message.contains("2990 more not collected (maxImages 10)"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_that_redirects_into_loopback_is_refused() {
    let s = site().await;
    let store = s.dir.path().join("store");
    let inner = FixtureServer::start("127.0.0.1".parse().unwrap(), s.dir.path().to_path_buf()).await;
    let page = s
        .http
        .url(&format!("/redirect?to={}", inner.url("/files/gallery.html")));
    let (code, status, _) = run_image_task(&store, &format!("  source: {{page: \"{page}\"}}")).await;
    assert_eq!(code, 1);
    assert_eq!(status["conditions"][0]["reason"], "BlockedAddress");
    assert_eq!(inner.total_hits(), 0);
}

/// Runs an ImageTask in `namespace` with extra runner flags; returns (exit code, status).
async fn run_in(store: &Path, namespace: &str, spec: &str, flags: &[&str]) -> (i32, Value) {
    let yaml = format!(
        "apiVersion: taskyard.dev/v1alpha1\nkind: ImageTask\nmetadata: {{name: shared, namespace: {namespace}}}\nspec:\n{spec}\n"
    );
    let run = run_task(env!("CARGO_BIN_EXE_job-runner"), store, &yaml, flags).await;
    (run.code, run.status)
}

fn first_item(status: &Value) -> (String, String) {
    let item = &status["items"][0];
    (
        item["key"].as_str().unwrap_or_default().to_string(),
        item["state"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn variants_never_share_a_file_across_parameters_and_follow_changed_content() {
    let site = site().await;
    let store = site.dir.path().join("variant-store");
    let url = site.http.url("/files/b.jpg");
    let spec = |quality: u8| {
        format!(
            "  source: {{url: \"{url}\"}}\n  resize: {{width: 40, height: 40, fit: fill, format: jpeg, quality: {quality}}}"
        )
    };
    let (code, best) = run_in(&store, "default", &spec(100), &[]).await;
    assert_eq!(code, 0, "{best}");
    let (code, worst) = run_in(&store, "default", &spec(1), &[]).await;
    assert_eq!(code, 0, "{worst}");
    let (best_key, _) = first_item(&best);
    let (worst_key, worst_state) = first_item(&worst);
    assert_ne!(best_key, worst_key, "quality 1 was served quality 100's file");
    assert!(
        best_key.contains("-q100.") && worst_key.contains("-q1."),
        "{best_key} {worst_key}"
    );
    assert_eq!(worst_state, "Stored");
    let size = |key: &str| std::fs::metadata(store.join(key)).unwrap().len();
    assert!(size(&worst_key) < size(&best_key));

    // A re-uploaded object is processed again, not answered with its old variant.
    let upload = store.join("uploads/default/up.png");
    std::fs::create_dir_all(upload.parent().unwrap()).unwrap();
    let contain = "  source: {object: up.png}\n  resize: {width: 40, height: 40}";
    let write = |w, h| {
        let img = taskyard_tests::images::gradient(w, h);
        std::fs::write(&upload, taskyard_tests::images::encoded(&img, image::ImageFormat::Png)).unwrap()
    };
    write(200, 100);
    let (_, wide) = run_in(&store, "default", contain, &[]).await;
    write(100, 200);
    let (_, tall) = run_in(&store, "default", contain, &[]).await;
    assert_eq!(
        (&wide["items"][0]["width"], &wide["items"][0]["height"]),
        (&40.into(), &20.into())
    );
    assert_eq!(
        (&tall["items"][0]["width"], &tall["items"][0]["height"]),
        (&20.into(), &40.into())
    );
    assert_ne!(first_item(&wide).0, first_item(&tall).0);
}

#[tokio::test(flavor = "multi_thread")]
async fn namespace_sharing_keeps_each_namespaces_images_apart() {
    let site = site().await;
    let store = site.dir.path().join("namespace-store");
    let spec = format!("  source: {{url: \"{}\"}}", site.http.url("/files/a.png"));
    let flags = ["--image-sharing", "namespace"];
    let (code, a) = run_in(&store, "team-a", &spec, &flags).await;
    assert_eq!(code, 0, "{a}");
    let (_, b) = run_in(&store, "team-b", &spec, &flags).await;
    let (a_key, a_state) = first_item(&a);
    let (b_key, b_state) = first_item(&b);
    assert!(a_key.starts_with("images/ns/team-a/"), "{a_key}");
    assert!(b_key.starts_with("images/ns/team-b/"), "{b_key}");
    // team-b cannot tell that team-a fetched the URL: it stores its own copy.
    assert_eq!((a_state.as_str(), b_state.as_str()), ("Stored", "Stored"));
    let (_, again) = run_in(&store, "team-b", &spec, &flags).await;
    assert_eq!(first_item(&again), (b_key, "Reused".to_string()));
}

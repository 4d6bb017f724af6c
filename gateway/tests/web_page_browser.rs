//! The page at `/` used as a person would, in a real headless Chromium against the real
//! `taskyard-gateway --local`: a file's MD5 and SHA-256 (checked against coreutils), a
//! resized image and a thumbnail that load at their sizes, an uploaded document's text under
//! its title, and the image grid of a page served on loopback. A screenshot of the
//! page is left in the test's temporary directory (its path is printed; set
//! TASKYARD_SCREENSHOT_DIR to keep it). And the API docs: Swagger UI at `/docs` and `/api/`,
//! rendered from the gateway's own assets, with a screenshot too.

mod support;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use image::ImageFormat;
use serde_json::json;
use support::Gateway;
use taskyard_tests::files::coreutils_digest;
use taskyard_tests::http::FixtureServer;
use taskyard_tests::images::{encoded, gradient};
use webdriver::Browser;

const TASK_TIME: Duration = Duration::from_secs(60);

/// What the newest task card says, for failure messages.
const NEWEST_CARD: &str = "const c = document.querySelector('#tasks .card'); return c ? c.innerText : 'no task card';";

/// Submits the upload form with `file` and the action `action`, after `setup` (a script
/// that sets the action's options).
async fn upload(browser: &Browser, file: &std::path::Path, action: &str, setup: &str) {
    browser
        .type_into("#upload input[type=file]", file.to_str().unwrap())
        .await;
    browser
        .click(&format!("#upload input[name=action][value={action}]"))
        .await;
    browser.run(setup, json!([])).await;
    submit(browser, "#upload").await;
}

/// Submits `form`, after marking the task cards already shown so that the new task's card
/// is known.
async fn submit(browser: &Browser, form: &str) {
    browser
        .run(
            "document.querySelectorAll('#tasks .card').forEach(c => c.dataset.before = '1');",
            json!([]),
        )
        .await;
    browser.click(&format!("{form} button[type=submit]")).await;
}

/// Waits until the newest task card (the one the last submit made) has ended well and `script` (given that card as `c`)
/// returns a value.
async fn newest_done(browser: &Browser, what: &str, script: &str) -> serde_json::Value {
    let wait = format!(
        "const c = document.querySelector('#tasks .card');
         if (!c || c.dataset.before || !c.classList.contains('done')) return null;
         {script}"
    );
    browser.wait_for(what, TASK_TIME, &wait, NEWEST_CARD).await
}

/// Saves a screenshot as `name` in TASKYARD_SCREENSHOT_DIR (kept after the run), else in
/// `temp`, checks it is a PNG and prints its path.
async fn save_screenshot(browser: &Browser, temp: &std::path::Path, name: &str) {
    let shots = std::env::var_os("TASKYARD_SCREENSHOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temp.to_path_buf());
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join(name);
    browser.screenshot(&shot).await;
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot {name} is a PNG");
    println!("screenshot: {}", shot.display());
}

#[tokio::test]
async fn a_person_hashes_resizes_extracts_and_collects_on_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start();
    let browser = Browser::start().await;
    browser.goto(&gw.url("/")).await;

    // Digests of a small file: the page shows md5sum's and sha256sum's.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "Taskyard in a browser\n".repeat(100)).unwrap();
    upload(
        &browser,
        &text,
        "hash",
        "document.querySelector('#upload input[name=alg][value=sha256]').checked = true;",
    )
    .await;
    let shown = newest_done(
        &browser,
        "the digests",
        "const d = a => { const e = c.querySelector(`code.digest[data-alg=${a}]`); return e && e.textContent; };
         return d('md5') && d('sha256') && [d('md5'), d('sha256')];",
    )
    .await;
    assert_eq!(
        shown,
        json!([coreutils_digest("md5", &text), coreutils_digest("sha256", &text)])
    );

    // A PNG resized to 64x48, cropped to fill the box, as WebP: the image shown loads at
    // that size.
    let png = dir.path().join("gradient.png");
    std::fs::write(&png, encoded(&gradient(320, 200), ImageFormat::Png)).unwrap();
    upload(
        &browser,
        &png,
        "resize",
        "const f = document.getElementById('upload').elements;
         f.width.value = '64'; f.height.value = '48'; f.fit.value = 'cover'; f.format.value = 'webp';",
    )
    .await;
    let loaded = "const i = c.querySelector('img.thumb');
                  return i && i.complete && i.naturalWidth > 0 && [i.naturalWidth, i.naturalHeight];";
    let size = newest_done(&browser, "the resized image loading", loaded).await;
    assert_eq!(size, json!([64, 48]));

    // The same PNG as img-rest's 100x100 thumbnail.
    upload(&browser, &png, "thumb", "").await;
    let size = newest_done(&browser, "the thumbnail loading", loaded).await;
    assert_eq!(size, json!([100, 100]), "img-rest makes 100x100 thumbnails");

    // The text of an uploaded HTML document, under its title.
    let report = dir.path().join("report.html");
    std::fs::write(
        &report,
        "<html><head><title>Quarterly report</title></head><body><p>Sales rose in the north.</p></body></html>",
    )
    .unwrap();
    upload(&browser, &report, "text", "").await;
    let shown = newest_done(
        &browser,
        "the extracted text",
        "const t = c.querySelector('h3.title'), p = c.querySelector('pre.text');
         return t && p && [t.textContent, p.textContent];",
    )
    .await;
    assert_eq!(shown[0], "Quarterly report");
    assert!(
        shown[1].as_str().unwrap().contains("Sales rose in the north."),
        "{shown}"
    );

    // The images of a page served on loopback, shown as a grid of loaded images.
    let site = tempfile::tempdir().unwrap();
    let colours = [(40, 30), (64, 64), (90, 45)];
    let mut html = String::from("<html><body><h1>Gallery</h1>");
    for (i, (w, h)) in colours.iter().enumerate() {
        let format = if i % 2 == 0 {
            ImageFormat::Png
        } else {
            ImageFormat::Jpeg
        };
        let name = format!("p{i}.{}", format.extensions_str()[0]);
        std::fs::write(site.path().join(&name), encoded(&gradient(*w, *h), format)).unwrap();
        html.push_str(&format!("<img src=\"{name}\" alt=\"picture {i}\">"));
    }
    html.push_str("</body></html>");
    std::fs::write(site.path().join("gallery.html"), html).unwrap();
    let server = FixtureServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST), site.path().to_path_buf()).await;
    let page = server.url("/files/gallery.html?type=text/html");
    browser.type_into("#page input[name=url]", &page).await;
    browser.click("#page input[name=what][value=images]").await;
    submit(&browser, "#page").await;
    let sizes = newest_done(
        &browser,
        "the image grid loading",
        "const imgs = [...c.querySelectorAll('.grid img')];
         const loaded = imgs.filter(i => i.complete && i.naturalWidth > 0);
         return imgs.length === 3 && loaded.length === 3 && loaded.map(i => [i.naturalWidth, i.naturalHeight]);",
    )
    .await;
    let mut sizes: Vec<(u64, u64)> = sizes
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s[0].as_u64().unwrap(), s[1].as_u64().unwrap()))
        .collect();
    sizes.sort();
    assert_eq!(
        sizes,
        vec![(40, 30), (64, 64), (90, 45)],
        "the grid shows the page's images"
    );

    save_screenshot(&browser, dir.path(), "web-page.png").await;
}

/// The docs as a person opens them: Swagger UI renders `/openapi.json` at `/docs` (and at
/// 000's `/api/`) with no error, from assets the gateway serves, and shows the MD5 API's
/// upload and the gateway's own task API.
#[tokio::test]
async fn swagger_ui_renders_every_api_at_docs() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start();
    let browser = Browser::start().await;
    // What the page shows, for failure messages.
    let report = "const e = document.querySelector('.errors-wrapper');
                  return (e ? 'errors: ' + e.innerText + '; ' : '') + document.body.innerText.slice(0, 500);";
    for path in ["/api/", "/docs"] {
        browser.goto(&gw.url(path)).await;
        let shown = browser
            .wait_for(
                &format!("Swagger UI rendering {path}"),
                Duration::from_secs(30),
                "const paths = [...document.querySelectorAll('.opblock .opblock-summary-path')]
                   .map(p => p.getAttribute('data-path'));
                 const title = document.querySelector('.info .title');
                 return paths.length > 0 && title && [title.innerText, paths];",
                report,
            )
            .await;
        assert!(shown[0].as_str().unwrap().starts_with("Taskyard gateway"), "{shown}");
        let paths: Vec<&str> = shown[1]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        for wanted in [
            "/hashes/",
            "/hashes/{task_id}",
            "/v1/tasks",
            "/api/images_tasks/",
            "/resize/",
        ] {
            assert!(paths.contains(&wanted), "{path} does not show {wanted}: {paths:?}");
        }
        assert_eq!(paths.len(), 23, "{path}: every operation of openapi.json");
        let errors = browser
            .run(
                "const e = document.querySelector('.errors-wrapper'); return e && e.innerText;",
                json!([]),
            )
            .await;
        assert!(errors.is_null(), "Swagger UI reports errors in /openapi.json: {errors}");
    }
    // The MD5 upload opened: its form takes a file (Swagger UI's "try it out" is on).
    browser
        .click(".opblock-post .opblock-summary-path[data-path='/hashes/']")
        .await;
    browser
        .wait_for(
            "the /hashes/ operation opening with a file input",
            Duration::from_secs(10),
            "return document.querySelector('.opblock-post.is-open input[type=file]') !== null;",
            report,
        )
        .await;

    save_screenshot(&browser, dir.path(), "swagger-ui.png").await;
}

//! The page at `/` used as a person would, in a real headless Chromium against the real
//! `taskyard-gateway --local`: a file's MD5 (checked against coreutils' md5sum), a resized
//! image that loads, and the image grid of a page served on loopback. A screenshot of the
//! page is left in the test's temporary directory (its path is printed; set
//! TASKYARD_SCREENSHOT_DIR to keep it).

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

/// Submits the upload form with `file` and the action `action`.
async fn upload(browser: &Browser, file: &std::path::Path, action: &str) {
    browser
        .type_into("#upload input[type=file]", file.to_str().unwrap())
        .await;
    browser
        .click(&format!("#upload input[name=action][value={action}]"))
        .await;
    browser.click("#upload button[type=submit]").await;
}

#[tokio::test]
async fn a_person_hashes_resizes_and_collects_images_on_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start();
    let browser = Browser::start().await;
    browser.goto(&gw.url("/")).await;

    // MD5 of a small file: the digest on the page is md5sum's.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "Taskyard in a browser\n".repeat(100)).unwrap();
    upload(&browser, &text, "md5").await;
    let shown = browser
        .wait_for(
            "the MD5 result",
            TASK_TIME,
            "const d = document.querySelector('#tasks .card.done code.digest'); return d && d.textContent;",
            NEWEST_CARD,
        )
        .await;
    assert_eq!(shown, json!(coreutils_digest("md5", &text)));

    // A PNG resized to the 100x100 thumbnail: the image the page shows loads.
    let png = dir.path().join("gradient.png");
    std::fs::write(&png, encoded(&gradient(320, 200), ImageFormat::Png)).unwrap();
    upload(&browser, &png, "thumb").await;
    let size = browser
        .wait_for(
            "the thumbnail loading",
            TASK_TIME,
            "const i = document.querySelector('#tasks .card.done img.thumb');
             return i && i.complete && i.naturalWidth > 0 && [i.naturalWidth, i.naturalHeight];",
            NEWEST_CARD,
        )
        .await;
    assert_eq!(size, json!([100, 100]), "img-rest makes 100x100 thumbnails");

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
    browser.click("#page button[type=submit]").await;
    let sizes = browser
        .wait_for(
            "the image grid loading",
            TASK_TIME,
            "const imgs = [...document.querySelectorAll('#tasks .card.done .grid img')];
             const loaded = imgs.filter(i => i.complete && i.naturalWidth > 0);
             return imgs.length === 3 && loaded.length === 3 && loaded.map(i => [i.naturalWidth, i.naturalHeight]);",
            NEWEST_CARD,
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

    let shots = std::env::var_os("TASKYARD_SCREENSHOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().to_path_buf());
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("web-page.png");
    browser.screenshot(&shot).await;
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is a PNG");
    println!("screenshot: {}", shot.display());
}

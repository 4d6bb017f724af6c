//! The bad-input catalog: hostile and malformed inputs run through the real `job-runner run`
//! against one loopback server and a directory store, each expected to end with its exact
//! reason, without a panic, within a time bound. `{u}` in a spec is the server's base URL
//! and `{p}` its port. Blocked networks in every notation are also classified directly,
//! without any fetch (see `blocked_in_every_notation`).

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use support::images::*;
use support::{Reply, Run, Server, run_task, task_yaml};

/// How a case must end.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// The task ends with this condition reason (Completed for success), the message
    /// containing the text.
    Task(&'static str, &'static str),
    /// A one-image ImageTask whose image fails with this reason, the message containing the
    /// text (the task fails with AllImagesFailed, naming the first error).
    Image(&'static str, &'static str),
    /// An ImageTask that succeeds with this many images failed and stored.
    Images { failed: u64, stored: u64 },
    /// A usage error (exit code 2), stderr containing the text.
    Usage(&'static str),
}

struct Case {
    name: &'static str,
    kind: &'static str,
    spec: &'static str,
    flags: &'static [&'static str],
    expect: Expect,
}

const fn case(name: &'static str, kind: &'static str, spec: &'static str, expect: Expect) -> Case {
    Case {
        name,
        kind,
        spec,
        flags: &[],
        expect,
    }
}

const fn with(
    name: &'static str,
    kind: &'static str,
    spec: &'static str,
    flags: &'static [&'static str],
    expect: Expect,
) -> Case {
    Case {
        name,
        kind,
        spec,
        flags,
        expect,
    }
}

use Expect::*;

const IMG: &str = "ImageTask";
const TXT: &str = "TextTask";
const HASH: &str = "HashTask";

fn cases() -> Vec<Case> {
    vec![
        // --- HTTP failures ---
        case(
            "http 404",
            HASH,
            "source: {url: '{u}/404'}",
            Task("FetchFailed", "HTTP 404"),
        ),
        case(
            "http 410",
            HASH,
            "source: {url: '{u}/410'}",
            Task("FetchFailed", "HTTP 410"),
        ),
        case(
            "http 403",
            HASH,
            "source: {url: '{u}/403'}",
            Task("FetchFailed", "HTTP 403"),
        ),
        case(
            "http 500",
            HASH,
            "source: {url: '{u}/500'}",
            Task("FetchFailed", "HTTP 500"),
        ),
        case(
            "http 503 page",
            TXT,
            "source: {page: '{u}/503'}",
            Task("FetchFailed", "HTTP 503"),
        ),
        case(
            "connection reset",
            HASH,
            "source: {url: '{u}/reset'}",
            Task("FetchFailed", "GET"),
        ),
        case(
            "closed port",
            HASH,
            "source: {url: 'http://127.0.0.1:1/x'}",
            Task("FetchFailed", "127.0.0.1:1"),
        ),
        with(
            "https to a plain http server",
            HASH,
            "source: {url: 'https://127.0.0.1:{p}/ok.png'}",
            &["--connect-timeout-seconds", "2"],
            Task("FetchTimeout", "https://127.0.0.1"),
        ),
        with(
            "stalled body",
            HASH,
            "source: {url: '{u}/stall'}",
            &["--read-timeout-seconds", "1"],
            Task("FetchTimeout", "raise the runner setting TASKYARD_READ_TIMEOUT_SECONDS"),
        ),
        with(
            "drip feed",
            TXT,
            "source: {page: '{u}/drip'}",
            &["--download-timeout-seconds", "2"],
            Task("FetchTimeout", "--download-timeout-seconds"),
        ),
        with(
            "drip-fed image",
            IMG,
            "source: {url: '{u}/drip'}",
            &["--download-timeout-seconds", "2"],
            Image("FetchTimeout", "whole-download deadline"),
        ),
        with(
            "headers sent a byte at a time",
            HASH,
            "source: {url: '{u}/slow-headers'}",
            &["--download-timeout-seconds", "2"],
            Task("FetchTimeout", "whole-download deadline"),
        ),
        // Compressed bodies are taken as sent, never inflated: a gzip bomb stays small.
        case(
            "gzip-encoded image",
            IMG,
            "source: {url: '{u}/gzip.png'}",
            Image("NotAnImage", "not JPEG, PNG, GIF or WebP"),
        ),
        // A file to hash may be 10 GiB: the task's own timeout bounds its download.
        case(
            "drip-fed file to hash",
            HASH,
            "source: {url: '{u}/drip'}\n  timeoutSeconds: 2",
            Task("TimedOut", "timeoutSeconds (2 s)"),
        ),
        case(
            "content-length longer than the body",
            HASH,
            "source: {url: '{u}/short-body'}",
            Task("FetchFailed", "GET"),
        ),
        case(
            "content-length shorter than the body",
            IMG,
            "source: {url: '{u}/long-body'}",
            Image("NotAnImage", "not JPEG, PNG, GIF or WebP"),
        ),
        case(
            "redirect loop",
            HASH,
            "source: {url: '{u}/loop'}",
            Task("TooManyRedirects", "more than 5 times"),
        ),
        case(
            "redirect chain of 5",
            HASH,
            "source: {url: '{u}/chain5'}",
            Task("Completed", ""),
        ),
        // --- redirects into blocked networks: refused before connecting ---
        case(
            "redirect to private",
            HASH,
            "source: {url: '{u}/to?10.0.0.1'}",
            Task("BlockedAddress", "10.0.0.1, a private address"),
        ),
        case(
            "redirect to metadata",
            HASH,
            "source: {url: '{u}/to-metadata'}",
            Task("BlockedAddress", "link-local"),
        ),
        case(
            "redirect to azure wireserver",
            HASH,
            "source: {url: '{u}/to-azure'}",
            Task("BlockedAddress", "cloud metadata"),
        ),
        case(
            "redirect to other loopback",
            HASH,
            "source: {url: '{u}/to-loopback2'}",
            Task("BlockedAddress", "loopback"),
        ),
        case(
            "redirect to decimal ip",
            HASH,
            "source: {url: '{u}/to-decimal'}",
            Task("BlockedAddress", "127.0.0.2"),
        ),
        case(
            "redirect to octal ip",
            HASH,
            "source: {url: '{u}/to-octal'}",
            Task("BlockedAddress", "127.0.0.2"),
        ),
        case(
            "redirect to hex ip",
            HASH,
            "source: {url: '{u}/to-hex'}",
            Task("BlockedAddress", "127.0.0.2"),
        ),
        case(
            "redirect to ipv4-mapped",
            HASH,
            "source: {url: '{u}/to-mapped'}",
            Task("BlockedAddress", "private"),
        ),
        case(
            "redirect to ipv4-compatible",
            HASH,
            "source: {url: '{u}/to-compatible'}",
            Task("BlockedAddress", "::7f00:2, a loopback"),
        ),
        case(
            "redirect to nat64",
            HASH,
            "source: {url: '{u}/to-nat64'}",
            Task("BlockedAddress", "link-local"),
        ),
        case(
            "redirect to 6to4",
            HASH,
            "source: {url: '{u}/to-6to4'}",
            Task("BlockedAddress", "private"),
        ),
        case(
            "redirect to ftp",
            HASH,
            "source: {url: '{u}/to-ftp'}",
            Task("InvalidSpec", "other than http or https"),
        ),
        case(
            "redirect to file",
            IMG,
            "source: {url: '{u}/to-file'}",
            Image("InvalidSpec", "other than http or https"),
        ),
        // --- URLs ---
        case(
            "blocked literal private",
            HASH,
            "source: {url: 'http://192.168.0.1/a'}",
            Task("BlockedAddress", "private"),
        ),
        case(
            "blocked literal v6 loopback",
            HASH,
            "source: {url: 'http://[::1]:{p}/ok.png'}",
            Task("BlockedAddress", "loopback"),
        ),
        case(
            "blocked literal unspecified",
            HASH,
            "source: {url: 'http://0.0.0.0:{p}/ok.png'}",
            Task("BlockedAddress", "unspecified"),
        ),
        case(
            "blocked literal decimal",
            HASH,
            "source: {url: 'http://2130706434/'}",
            Task("BlockedAddress", "loopback"),
        ),
        case(
            "blocked literal benchmarking",
            HASH,
            "source: {url: 'http://198.18.0.1/'}",
            Task("BlockedAddress", "benchmarking"),
        ),
        case(
            "blocked literal teredo",
            HASH,
            "source: {url: 'http://[2001::1]/'}",
            Task("BlockedAddress", "Teredo"),
        ),
        case(
            "userinfo in url",
            HASH,
            "source: {url: 'http://user:secret@127.0.0.1:{p}/ok.png'}",
            Task("Completed", ""),
        ),
        case(
            "percent-encoded path",
            HASH,
            "source: {url: '{u}/%6Fk.png'}",
            Task("FetchFailed", "HTTP 404"),
        ),
        case(
            "unterminated ipv6 host",
            HASH,
            "source: {url: 'http://[::1/x'}",
            Task("InvalidSpec", "invalid URL"),
        ),
        case(
            "port out of range",
            HASH,
            "source: {url: 'http://127.0.0.1:99999/'}",
            Task("InvalidSpec", "invalid URL"),
        ),
        case(
            "very long url",
            HASH,
            "source: {url: '{u}/{long}'}",
            Task("FetchFailed", "HTTP 404"),
        ),
        case(
            "non-http scheme",
            HASH,
            "source: {url: 'ftp://127.0.0.1/x'}",
            Usage("spec.source.url in body should match"),
        ),
        case(
            "url over maxLength",
            HASH,
            "source: {url: 'http://h/{toolong}'}",
            Usage("spec.source.url: Too long: may not be more than 2048 bytes"),
        ),
        // --- pages ---
        case(
            "empty page",
            IMG,
            "source: {page: '{u}/empty.html'}",
            Images { failed: 0, stored: 0 },
        ),
        case(
            "broken markup",
            TXT,
            "source: {page: '{u}/broken.html'}",
            Task("Completed", ""),
        ),
        case(
            "deeply nested divs",
            TXT,
            "source: {page: '{u}/nested.html'}",
            Task("LimitExceeded", "more than 512 deep"),
        ),
        case(
            "nesting under the cap",
            TXT,
            "source: {page: '{u}/nested-ok.html'}",
            Task("Completed", ""),
        ),
        case(
            "deeply nested images",
            IMG,
            "source: {page: '{u}/nested-img.html'}",
            Task("LimitExceeded", "flatten the page's markup"),
        ),
        with(
            "unclosed formatting tags",
            IMG,
            "source: {page: '{u}/tags.html'}",
            &["--max-html-elements", "5000"],
            Task("LimitExceeded", "--max-html-elements"),
        ),
        with(
            "unclosed formatting tags text",
            TXT,
            "source: {page: '{u}/tags.html'}",
            &["--max-html-elements", "5000"],
            Task("LimitExceeded", "5000-element limit"),
        ),
        with(
            "page over the size limit",
            TXT,
            "source: {page: '{u}/broken.html'}",
            &["--max-page-bytes", "10"],
            Task("LimitExceeded", "--max-page-bytes"),
        ),
        case(
            "non-ascii image urls",
            IMG,
            "source: {page: '{u}/nonascii.html'}",
            Images { failed: 2, stored: 1 },
        ),
        case(
            "garbage srcset",
            IMG,
            "source: {page: '{u}/srcset.html'}",
            // "1x" is a URL there, as the HTML spec parses it.
            Images { failed: 1, stored: 1 },
        ),
        case(
            "data uris only",
            IMG,
            "source: {page: '{u}/data.html'}",
            Images { failed: 0, stored: 0 },
        ),
        case(
            "binary junk page",
            TXT,
            "source: {page: '{u}/junk.bin'}",
            Task("Completed", ""),
        ),
        case(
            "shift_jis page",
            TXT,
            "source: {page: '{u}/sjis.html'}",
            Task("Completed", ""),
        ),
        case(
            "unknown charset",
            TXT,
            "source: {page: '{u}/badcharset.html'}",
            Task("Completed", ""),
        ),
        case(
            "utf-16 page",
            TXT,
            "source: {page: '{u}/utf16.html'}",
            Task("Completed", ""),
        ),
        case(
            "invalid utf-8",
            TXT,
            "source: {page: '{u}/badutf8.html'}",
            Task("Completed", ""),
        ),
        case(
            "page with a 404 and a non-image",
            IMG,
            "source: {page: '{u}/mixed.html'}",
            Images { failed: 2, stored: 1 },
        ),
        // --- images ---
        case(
            "gif frame bomb",
            IMG,
            "source: {url: '{u}/gif-bomb.gif'}",
            Image("LimitExceeded", "frame that is 11000x11000"),
        ),
        case(
            "png pixel bomb",
            IMG,
            "source: {url: '{u}/png-bomb.png'}",
            Image("LimitExceeded", "--max-image-pixels"),
        ),
        case(
            "apng frame bomb",
            IMG,
            "source: {url: '{u}/apng-bomb.png'}",
            Image("LimitExceeded", "10000x10000"),
        ),
        case(
            "jpeg pixel bomb",
            IMG,
            "source: {url: '{u}/jpeg-bomb.jpg'}",
            Image("LimitExceeded", "65000x65000"),
        ),
        case(
            "webp pixel bomb",
            IMG,
            "source: {url: '{u}/webp-bomb.webp'}",
            Image("LimitExceeded", "16384x16384"),
        ),
        case(
            "webp animation frame bomb",
            IMG,
            "source: {url: '{u}/webp-anim-bomb.webp'}",
            Image("LimitExceeded", "12000x12000"),
        ),
        case(
            "interlaced png needing too much memory",
            IMG,
            "source: {url: '{u}/interlaced-bomb.png'}\n  resize: {width: 5000, height: 5000}",
            Image("LimitExceeded", "--image-work-bytes"),
        ),
        case(
            "16-bit png",
            IMG,
            "source: {url: '{u}/deep.png'}",
            Task("Completed", "1 images: "),
        ),
        case(
            "16-bit png resized",
            IMG,
            "source: {url: '{u}/deep.png'}\n  resize: {width: 40, height: 40}",
            Task("Completed", "1 images: "),
        ),
        case(
            "interlaced png",
            IMG,
            "source: {url: '{u}/interlaced.png'}",
            Task("Completed", "1 images: "),
        ),
        case(
            "interlaced png resized",
            IMG,
            "source: {url: '{u}/interlaced.png'}\n  resize: {width: 20, height: 20, format: webp}",
            Task("Completed", "1 images: "),
        ),
        case(
            "truncated png",
            IMG,
            "source: {url: '{u}/truncated.png'}",
            Image("InvalidImage", "fix or replace it at its source"),
        ),
        case(
            "truncated jpeg",
            IMG,
            "source: {url: '{u}/truncated.jpg'}",
            Image("InvalidImage", "truncated"),
        ),
        case(
            "truncated gif",
            IMG,
            "source: {url: '{u}/truncated.gif'}",
            Image("InvalidImage", ""),
        ),
        case(
            "truncated webp",
            IMG,
            "source: {url: '{u}/truncated.webp'}",
            Image("InvalidImage", ""),
        ),
        case(
            "bmp",
            IMG,
            "source: {url: '{u}/image.bmp'}",
            Image("NotAnImage", "not JPEG, PNG, GIF or WebP"),
        ),
        case("tiff", IMG, "source: {url: '{u}/image.tiff'}", Image("NotAnImage", "")),
        case("svg", IMG, "source: {url: '{u}/image.svg'}", Image("NotAnImage", "")),
        case(
            "html named png",
            IMG,
            "source: {url: '{u}/fake.png'}",
            Image("NotAnImage", "not its name or Content-Type"),
        ),
        case(
            "empty png",
            IMG,
            "source: {url: '{u}/zero.png'}",
            Image("NotAnImage", ""),
        ),
        with(
            "image over the size limit",
            IMG,
            "source: {url: '{u}/ok.png?limit'}",
            &["--max-image-bytes", "100"],
            Image("LimitExceeded", "--max-image-bytes"),
        ),
        with(
            "chunked image over the size limit",
            IMG,
            "source: {url: '{u}/chunked.png'}",
            &["--max-image-bytes", "100"],
            Image("LimitExceeded", "100-byte limit"),
        ),
        case(
            "resize box over the output limit",
            IMG,
            "source: {url: '{u}/ok.png'}\n  resize: {width: 8000, height: 8000, fit: fill}",
            Task("LimitExceeded", "--max-output-pixels"),
        ),
        with(
            "small output limit contain",
            IMG,
            "source: {url: '{u}/ok.png'}\n  resize: {width: 100, height: 100}",
            &["--max-output-pixels", "50"],
            Image("LimitExceeded", "--max-output-pixels"),
        ),
        case(
            "every format resized",
            IMG,
            "source: {page: '{u}/formats.html'}\n  resize: {width: 16, height: 16, fit: cover, format: png}",
            Images { failed: 0, stored: 4 },
        ),
        // --- the store ---
        case(
            "missing object hash",
            HASH,
            "source: {object: missing}",
            Task("ObjectNotFound", "upload it first"),
        ),
        case(
            "missing object text",
            TXT,
            "source: {object: missing.html}",
            Task("ObjectNotFound", "uploads/default/missing.html"),
        ),
        case(
            "missing object image",
            IMG,
            "source: {object: missing.png}",
            Image("ObjectNotFound", ""),
        ),
        case(
            "stored non-image",
            IMG,
            "source: {object: notes.txt}",
            Image("NotAnImage", ""),
        ),
        case(
            "stored object hashed",
            HASH,
            "source: {object: notes.txt}\n  algorithms: [sha256, md5]",
            Task("Completed", "sha256"),
        ),
        case(
            "object outside the upload area",
            HASH,
            "source: {object: ../other/notes.txt}",
            Task("InvalidSpec", "uploads/default/"),
        ),
        case(
            "absolute object key",
            TXT,
            "source: {object: /texts/other/t/u/1.txt}",
            Usage(
                "TextTask.taskyard.dev \"t\" is invalid: spec.source.object: Invalid value: \"/texts/other/t/u/1.txt\": spec.source.object in body should match '^[^/]'",
            ),
        ),
        // --- invalid specs ---
        case(
            "resize width 0",
            IMG,
            "source: {url: '{u}/ok.png'}\n  resize: {width: 0, height: 10}",
            Usage(
                "ImageTask.taskyard.dev \"t\" is invalid: spec.resize.width: Invalid value: 0: spec.resize.width in body should be greater than or equal to 1",
            ),
        ),
        case(
            "no algorithms",
            HASH,
            "source: {url: '{u}/ok.png'}\n  algorithms: []",
            Usage("spec.algorithms: Invalid value: 0: spec.algorithms in body should have at least 1 items"),
        ),
        case(
            "unknown algorithm",
            HASH,
            "source: {url: '{u}/ok.png'}\n  algorithms: [crc32]",
            Usage("Unsupported value: \"crc32\""),
        ),
        case(
            "maxImages 0",
            IMG,
            "source: {url: '{u}/ok.png'}\n  maxImages: 0",
            Usage("spec.maxImages"),
        ),
        case(
            "timeout 0",
            TXT,
            "source: {page: '{u}/ok.png'}\n  timeoutSeconds: 0",
            Usage("spec.timeoutSeconds"),
        ),
        case(
            "retries 11",
            TXT,
            "source: {page: '{u}/ok.png'}\n  retries: 11",
            Usage("less than or equal to 10"),
        ),
        case(
            "quality 101",
            IMG,
            "source: {url: '{u}/ok.png'}\n  resize: {width: 1, height: 1, quality: 101}",
            Usage("spec.resize.quality"),
        ),
        case(
            "unknown fit",
            IMG,
            "source: {url: '{u}/ok.png'}\n  resize: {width: 1, height: 1, fit: stretch}",
            Usage("supported values: \"contain\", \"fill\", \"cover\""),
        ),
        case("empty source", TXT, "source: {}", Usage("Found none valid")),
        case(
            "two sources",
            TXT,
            "source: {page: '{u}/x', object: a}",
            Usage("Found 2 valid alternatives"),
        ),
        case(
            "url wrong type",
            HASH,
            "source: {url: 5}",
            Usage("must be of type string"),
        ),
        case(
            "object starting with a slash",
            HASH,
            "source: {object: /etc/passwd}",
            Usage("spec.source.object in body should match"),
        ),
    ]
}

/// A page of `fonts` distinct unclosed formatting tags, then blocks whose text re-opens them.
fn amplifying_page(fonts: usize, blocks: usize) -> String {
    let mut page = String::from("<div>");
    page.extend((0..fonts).map(|i| format!("<font id={i}>")));
    page.push_str("</div>");
    page.push_str(&"<div>x</div>".repeat(blocks));
    page
}

fn cut(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(&b[..b.len() / 2])
}

fn routes(port: u16) -> HashMap<String, Reply> {
    let png = png_gradient(32, 24, png::BitDepth::Eight);
    let jpeg = encoded(64, 48, image::ImageFormat::Jpeg);
    let gif = encoded(64, 48, image::ImageFormat::Gif);
    let webp = encoded(64, 48, image::ImageFormat::WebP);
    let b = |ct: &'static str, body: Vec<u8>| Reply::Body(ct, Bytes::from(body));
    let html = |s: String| Reply::Body("text/html", Bytes::from(s));
    let to = |loc: String| Reply::Redirect(loc);
    let mut r: Vec<(String, Reply)> = vec![
        ("/ok.png".into(), b("image/png", png.clone())),
        (
            "/chunked.png".into(),
            Reply::Chunked("image/png", Bytes::from(png.clone())),
        ),
        ("/410".into(), Reply::Status(410)),
        ("/403".into(), Reply::Status(403)),
        ("/500".into(), Reply::Status(500)),
        ("/503".into(), Reply::Status(503)),
        ("/reset".into(), Reply::Reset),
        ("/stall".into(), Reply::Stall),
        (
            "/slow-headers".into(),
            Reply::DripHeaders(Duration::from_millis(500), 40),
        ),
        // A gzip header alone: were the body inflated, the cut stream would fail the fetch
        // (FetchFailed) instead of reaching the image check as the bytes sent.
        (
            "/gzip.png".into(),
            Reply::Encoded("gzip", Bytes::from_static(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03")),
        ),
        ("/drip".into(), Reply::Drip(Duration::from_millis(700), 20)),
        (
            "/short-body".into(),
            Reply::WrongLength(10_000, Bytes::from(png.clone())),
        ),
        ("/long-body".into(), Reply::WrongLength(5, Bytes::from(png.clone()))),
        ("/loop".into(), to("/loop".into())),
        ("/to".into(), to("http://10.0.0.1/x".into())),
        (
            "/to-metadata".into(),
            to("http://169.254.169.254/latest/meta-data/".into()),
        ),
        ("/to-azure".into(), to("http://168.63.129.16/machine".into())),
        ("/to-loopback2".into(), to(format!("http://127.0.0.2:{port}/ok.png"))),
        ("/to-decimal".into(), to(format!("http://2130706434:{port}/ok.png"))),
        ("/to-octal".into(), to(format!("http://0177.0.0.2:{port}/ok.png"))),
        ("/to-hex".into(), to(format!("http://0x7f.0.0.2:{port}/ok.png"))),
        ("/to-mapped".into(), to("http://[::ffff:10.1.2.3]/".into())),
        (
            "/to-compatible".into(),
            // Not the allowed 127.0.0.1: an allow-list admits the IPv6 forms of its networks.
            to(format!("http://[::127.0.0.2]:{port}/ok.png")),
        ),
        ("/to-nat64".into(), to("http://[64:ff9b::a9fe:a9fe]/".into())),
        ("/to-6to4".into(), to("http://[2002:c0a8:101::1]/".into())),
        ("/to-ftp".into(), to("ftp://127.0.0.1/x".into())),
        ("/to-file".into(), to("file:///etc/passwd".into())),
        ("/empty.html".into(), b("text/html", Vec::new())),
        (
            "/broken.html".into(),
            html("<html><p>a<<<b>>> &&& &#xFFFFFFFF; <img src=\"\" <a href=>x</p></html>".into()),
        ),
        (
            "/nested.html".into(),
            html(format!("{}text{}", "<div>".repeat(100_000), "</div>".repeat(3))),
        ),
        ("/nested-ok.html".into(), html(format!("{}text", "<div>".repeat(500)))),
        (
            "/nested-img.html".into(),
            html(format!("{}<img src=\"/ok.png\">", "<span>".repeat(50_000))),
        ),
        ("/tags.html".into(), html(amplifying_page(100, 1000))),
        (
            "/nonascii.html".into(),
            html("<img src=\"日本.png\"><img src=\"é\"><img src=\"/ok.png\">".into()),
        ),
        (
            "/srcset.html".into(),
            html(
                "<img srcset=\",,, ,, 1x, ,\"><img srcset=\"  \"><img src=\"/ok.png\" srcset=\"/ok.png 1e309w\">"
                    .into(),
            ),
        ),
        (
            "/data.html".into(),
            html("<img src=\"data:image/png;base64,AAAA\"><img src=\"DATA:,x\">".into()),
        ),
        (
            "/junk.bin".into(),
            b(
                "application/octet-stream",
                (0..5000u32)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                    .collect(),
            ),
        ),
        (
            "/sjis.html".into(),
            b(
                "text/html",
                [&b"<meta charset=\"shift_jis\"><p>"[..], &[0x93, 0xfa, 0x96, 0x7b][..]].concat(),
            ),
        ),
        (
            "/badcharset.html".into(),
            b("text/html; charset=x-no-such-charset", b"<p>hello</p>".to_vec()),
        ),
        (
            "/utf16.html".into(),
            b(
                "text/html",
                [
                    &[0xFF, 0xFE][..],
                    &"<p>hi</p>"
                        .encode_utf16()
                        .flat_map(u16::to_le_bytes)
                        .collect::<Vec<_>>(),
                ]
                .concat(),
            ),
        ),
        (
            "/badutf8.html".into(),
            b("text/html; charset=utf-8", b"<p>\xff\xfe\xc3\x28 ok</p>".to_vec()),
        ),
        (
            "/mixed.html".into(),
            html("<img src=\"/404.png\"><img src=\"/fake.png\"><img src=\"/ok.png\">".into()),
        ),
        (
            "/formats.html".into(),
            html("<img src=\"/f.png\"><img src=\"/f.jpg\"><img src=\"/f.gif\"><img src=\"/f.webp\">".into()),
        ),
        ("/f.png".into(), b("image/png", png.clone())),
        ("/f.jpg".into(), b("image/jpeg", jpeg.clone())),
        ("/f.gif".into(), b("image/gif", gif.clone())),
        ("/f.webp".into(), b("image/webp", webp.clone())),
        (
            "/gif-bomb.gif".into(),
            b("image/gif", gif_with_frame((1, 1), (11000, 11000))),
        ),
        (
            "/png-bomb.png".into(),
            b("image/png", png_header_only(8000, 8000, false)),
        ),
        ("/apng-bomb.png".into(), b("image/png", apng_with_frame(10000, 10000))),
        ("/jpeg-bomb.jpg".into(), b("image/jpeg", jpeg_header_only(65000, 65000))),
        (
            "/webp-bomb.webp".into(),
            b("image/webp", webp_header_only(16384, 16384)),
        ),
        (
            "/webp-anim-bomb.webp".into(),
            b("image/webp", webp_with_frame(12000, 12000)),
        ),
        (
            "/interlaced-bomb.png".into(),
            b("image/png", png_header_only(7000, 7000, true)),
        ),
        (
            "/deep.png".into(),
            b("image/png", png_gradient(120, 80, png::BitDepth::Sixteen)),
        ),
        ("/interlaced.png".into(), b("image/png", interlaced_png(67, 45, 90))),
        (
            "/truncated.png".into(),
            Reply::Body("image/png", cut(&png_gradient(300, 300, png::BitDepth::Eight))),
        ),
        ("/truncated.jpg".into(), Reply::Body("image/jpeg", cut(&jpeg))),
        ("/truncated.gif".into(), Reply::Body("image/gif", cut(&gif))),
        ("/truncated.webp".into(), Reply::Body("image/webp", cut(&webp))),
        // A 1x1 24-bit BMP.
        (
            "/image.bmp".into(),
            b(
                "image/bmp",
                [
                    &b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\x01\0\0\0\x01\0\0\0\x01\0\x18\0"[..],
                    &[0; 24][..],
                ]
                .concat(),
            ),
        ),
        (
            "/image.tiff".into(),
            b("image/tiff", b"II*\x00\x08\x00\x00\x00".to_vec()),
        ),
        (
            "/image.svg".into(),
            b(
                "image/svg+xml",
                b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"99999\" height=\"99999\"/>".to_vec(),
            ),
        ),
        (
            "/fake.png".into(),
            b("image/png", b"<!doctype html><html>not an image</html>".to_vec()),
        ),
        ("/zero.png".into(), b("image/png", Vec::new())),
    ];
    for i in 0..5 {
        let next = if i == 4 {
            "/ok.png".to_string()
        } else {
            format!("/chain{}", i + 1)
        };
        r.push((if i == 0 { "/chain5".into() } else { format!("/chain{i}") }, to(next)));
    }
    r.into_iter().collect()
}

fn spec_for(case: &Case, base: &str, port: u16) -> String {
    let long = "a".repeat(1900);
    let toolong = "a".repeat(2100);
    let spec = case
        .spec
        .replace("{u}", base)
        .replace("{p}", &port.to_string())
        .replace("{long}", &long)
        .replace("{toolong}", &toolong);
    format!("  {spec}")
}

/// What went wrong with a case, if anything.
fn judge(case: &Case, run: &Run) -> Option<String> {
    let said = format!(
        "exit {}, status {}, stderr {}",
        run.code,
        run.status,
        run.stderr.chars().take(600).collect::<String>()
    );
    if run.stderr.contains("panicked") || !(0..=2).contains(&run.code) {
        return Some(format!("crashed or was killed: {said}"));
    }
    let ok = match case.expect {
        Task(reason, text) => {
            let code = if reason == "Completed" { 0 } else { 1 };
            run.code == code && run.reason() == reason && run.message().contains(text)
        }
        Image(reason, text) => {
            run.code == 1
                && run.reason() == "AllImagesFailed"
                && run.message().contains(&format!("the first: {reason}: "))
                && run.message().contains(text)
        }
        Images { failed, stored } => {
            run.code == 0
                && run.status["images"]["failed"].as_u64() == Some(failed)
                && run.status["images"]["stored"].as_u64().unwrap_or(0)
                    + run.status["images"]["reused"].as_u64().unwrap_or(0)
                    == stored
        }
        Usage(text) => run.code == 2 && run.stderr.contains(text),
    };
    (!ok).then(|| format!("expected {:?}: {said}", case.expect))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_input_ends_with_its_own_reason() {
    let http = Server::start_with(routes).await;
    let port = http.addr.port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let uploads = dir.path().join("store/uploads/default");
    std::fs::create_dir_all(&uploads).unwrap();
    std::fs::write(uploads.join("notes.txt"), "plain notes, not an image").unwrap();
    let store: Arc<PathBuf> = Arc::new(dir.path().join("store"));

    let cases = cases();
    assert!(cases.len() >= 60, "the catalog has {} cases", cases.len());
    let results: Vec<(String, Option<String>)> = futures::stream::iter(cases.iter())
        .map(|case| {
            let yaml = task_yaml(case.kind, &spec_for(case, &base, port));
            let store = store.clone();
            let flags = case.flags;
            async move {
                let run = tokio::task::spawn_blocking(move || run_task(&store, &yaml, flags, Duration::from_secs(60)))
                    .await
                    .unwrap();
                (case.name.to_string(), judge(case, &run))
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(name, f)| f.as_ref().map(|f| format!("- {name}: {f}")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
    drop(http);
}

/// Internal networks in every notation a URL can spell them, refused by the URL check before
/// any connection (the default policy: nothing allowed). No request leaves the machine:
/// each is refused from its literal address, or from `localhost`'s (/etc/hosts; no name
/// that would need a DNS server is used).
#[tokio::test]
async fn blocked_in_every_notation() {
    taskyard_runner::install_crypto_provider();
    let fetcher = taskyard_runner::fetch::Fetcher::new(&taskyard_runner::settings::RunnerArgs::default()).unwrap();
    for (url, class) in [
        ("http://127.0.0.1/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://017700000001/", "loopback"),
        ("http://0x7f000001/", "loopback"),
        ("http://0x7f.0.0.1/", "loopback"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://127.0.1/", "loopback"),
        ("http://0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://[::1]/", "loopback"),
        ("http://[0:0:0:0:0:0:0:1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:7f00:1]/", "loopback"),
        ("http://[::127.0.0.1]/", "loopback"),
        ("http://[::ffff:a9fe:a9fe]/", "link-local"),
        ("http://[64:ff9b::169.254.169.254]/", "link-local"),
        ("http://[64:ff9b:1::a00:1]/", "NAT64 local-use"),
        ("http://[2002:a9fe:a9fe::]/", "link-local"),
        ("http://[2002:7f00:1::1]/", "loopback"),
        ("http://[2001:0:53aa:64c::1]/", "Teredo"),
        ("http://[fec0::1]/", "site-local"),
        ("http://[fd12:3456::1]/", "private (unique local)"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[ff02::1]/", "multicast"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://0xa9fea9fe/", "link-local"),
        ("http://2852039166/", "link-local"),
        ("http://168.63.129.16/", "cloud metadata"),
        ("http://100.100.100.200/", "cloud metadata"),
        ("http://10.0.0.1/", "private"),
        ("http://012.0.0.1/", "private"),
        ("http://172.16.0.1/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://0xc0a80101/", "private"),
        ("http://100.64.0.1/", "CGNAT"),
        ("http://198.18.0.1/", "benchmarking"),
        ("http://192.0.0.1/", "IETF protocol assignment"),
        ("http://224.0.0.1/", "multicast"),
        ("http://255.255.255.255/", "reserved"),
        ("http://user:pw@127.0.0.1/", "loopback"),
        ("http://127.0.0.1:80@10.0.0.1/", "private"),
        ("http://localhost/", "loopback"),
    ] {
        let err = fetcher
            .get(url)
            .await
            .err()
            .unwrap_or_else(|| panic!("{url} was fetched"));
        assert_eq!(err.reason().as_str(), "BlockedAddress", "{url}: {err}");
        assert!(err.to_string().contains(&format!("a {class} address")), "{url}: {err}");
        assert!(err.to_string().contains("--allow-network"), "{url}: {err}");
    }
}

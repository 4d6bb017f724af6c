//! Starts the real `taskyard-gateway --local` binary with a temporary store, and helpers to
//! talk to it. The gateway is killed when the handle drops.

#![allow(dead_code)] // each test binary uses part of this

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Gateway {
    pub base: String,
    pub store: tempfile::TempDir,
    child: Child,
}

impl Gateway {
    /// A gateway on a free loopback port that may fetch from loopback (the fixture server).
    pub fn start() -> Self {
        Self::start_on("127.0.0.1:0", &["--allow-network", "127.0.0.0/8"])
    }

    pub fn start_on(listen: &str, extra: &[&str]) -> Self {
        let store = tempfile::tempdir().unwrap();
        let (child, base) = spawn(listen, store.path(), extra);
        Self { base, store, child }
    }

    /// Stops this gateway and starts another on the same store (and a new port).
    pub fn restart(mut self) -> Self {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, base) = spawn("127.0.0.1:0", self.store.path(), &["--allow-network", "127.0.0.0/8"]);
        self.child = child;
        self.base = base;
        self
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The gateway's peak resident memory so far (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kib << 10
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the gateway and reads the address it listens on from its first line.
fn spawn(listen: &str, store: &std::path::Path, extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskyard-gateway"))
        .args(["--local", "--listen", listen, "--store"])
        .arg(store)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start taskyard-gateway");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let Some(addr) = line.split("http://").nth(1).and_then(|s| s.split_whitespace().next()) else {
        let _ = child.kill();
        let status = child.wait().unwrap();
        panic!("taskyard-gateway did not start listening on {listen} ({status}); its stderr is above");
    };
    (child, format!("http://{addr}"))
}

/// A client that does not follow redirects, so tests see them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Status and JSON body of a response.
pub async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    (status, body)
}

pub async fn get_json(url: &str) -> (u16, Value) {
    json_of(client().get(url).send().await.unwrap()).await
}

/// Polls `url` until `done` holds for its status and body, for at most 60 s.
pub async fn poll(url: &str, done: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get_json(url).await;
        if done(status, &body) {
            return (status, body);
        }
        assert!(
            Instant::now() < deadline,
            "{url} still answers {status} {body} after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A multipart form with one file part.
pub fn file_form(part_name: &str, filename: &str, bytes: Vec<u8>) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        part_name.to_string(),
        reqwest::multipart::Part::bytes(bytes).file_name(filename.to_string()),
    )
}

/// An image of `w` x `h` in `format`.
pub fn image_bytes(w: u32, h: u32, format: image::ImageFormat) -> Vec<u8> {
    taskyard_tests::images::encoded(&taskyard_tests::images::gradient(w, h), format)
}

/// The format and size of an encoded image.
pub fn decoded(bytes: &[u8]) -> (image::ImageFormat, u32, u32) {
    let format = image::guess_format(bytes).expect("an image");
    let img = image::load_from_memory_with_format(bytes, format).unwrap();
    (format, img.width(), img.height())
}

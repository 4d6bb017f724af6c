//! Headless Chromium driven through ChromeDriver (Debian's `chromium` and `chromium-driver`)
//! with the W3C WebDriver protocol: JSON over HTTP, so the tests' own HTTP client speaks it
//! and no browser-automation crate is needed. ChromeDriver is killed when the handle drops,
//! and it ends the browser it started.

#![allow(dead_code)] // each test binary uses part of this

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key WebDriver names a found element by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts ChromeDriver on a free loopback port and a headless Chromium session with a
    /// new empty profile.
    pub async fn start() -> Self {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: install Debian's chromium and chromium-driver packages \
                 (tests/cluster/install-packages.sh does)"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Self {
            driver,
            base,
            session: String::new(),
            http,
            _profile: profile,
        };
        browser.wait_ready().await;
        // The flags this machine's closed network needs (no background connections), and
        // root's need for --no-sandbox.
        let args = json!([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,2300",
            format!("--user-data-dir={}", browser._profile.path().display()),
        ]);
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let created = browser.call("POST", "/session", caps).await;
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {created}"))
            .to_string();
        browser
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = self.http.get(format!("{}/status", self.base)).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                return;
            }
            assert!(Instant::now() < deadline, "chromedriver was not ready within 20 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One WebDriver command; its `value`, or a panic with WebDriver's error.
    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let response = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status();
        let v: Value = response.json().await.unwrap();
        assert!(status.is_success(), "WebDriver {method} {path} answered {status}: {v}");
        v["value"].clone()
    }

    async fn session_call(&self, method: &str, path: &str, body: Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    pub async fn goto(&self, url: &str) {
        self.session_call("POST", "/url", json!({ "url": url })).await;
    }

    /// The element `css` selects (the first), by its WebDriver id.
    pub async fn find(&self, css: &str) -> String {
        let v = self
            .session_call("POST", "/element", json!({"using": "css selector", "value": css}))
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.session_call("POST", &format!("/element/{id}/click"), json!({}))
            .await;
    }

    /// Types `text` into the element; for a file input, `text` is the file's path.
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.session_call("POST", &format!("/element/{id}/value"), json!({ "text": text }))
            .await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page; its result.
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.session_call("POST", "/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Runs `script` until it returns something other than null or false, for at most
    /// `limit`; that result. On timeout, panics with `what` and the last result of `report`.
    pub async fn wait_for(&self, what: &str, limit: Duration, script: &str, report: &str) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.run(script, json!([])).await;
            if !v.is_null() && v != false {
                return v;
            }
            if Instant::now() > deadline {
                let seen = self.run(report, json!([])).await;
                panic!("{what} did not happen within {limit:?}; the page shows: {seen}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A PNG of the window, written to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let v = self.session_call("GET", "/screenshot", Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("the screenshot is base64"))
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session first, so ChromeDriver closes the browser it started (killing
        // ChromeDriver alone would leave Chromium running). A plain blocking request: this
        // also runs when a test panics.
        if !self.session.is_empty() {
            let _ = delete_session(&self.base, &self.session);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn delete_session(base: &str, session: &str) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "DELETE /session/{session} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(())
}

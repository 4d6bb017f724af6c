//! A fixture web server for tests, on an address of the test network. Routes:
//!
//! - `/files/NAME[?type=MEDIA-TYPE]`: a file from the server's directory, streamed with a
//!   Content-Length and the given (percent-encoded) Content-Type
//! - `/status/CODE`: an empty answer with that status
//! - `/stall`: headers and a few bytes, then nothing, forever
//! - `/slow/NAME?ms=N`: a file spread evenly over N milliseconds
//! - `/redirect?to=URL`: a 302 to URL
//!
//! It speaks just enough HTTP/1.1 for a client that sends one request per connection.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

pub struct FixtureServer {
    pub addr: SocketAddr,
    hits: Hits,
    task: tokio::task::JoinHandle<()>,
}

/// Requests served, by path (without the query).
type Hits = Arc<Mutex<HashMap<String, u64>>>;

impl FixtureServer {
    /// Serves `dir` on `ip`, on a free port, until dropped.
    pub async fn start(ip: IpAddr, dir: PathBuf) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind the fixture server");
        let addr = listener.local_addr().unwrap();
        let hits = Hits::default();
        let counter = hits.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let dir = dir.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, dir, counter).await;
                });
            }
        });
        Self { addr, hits, task }
    }

    /// How many requests were made for `path` (without its query).
    pub fn hits(&self, path: &str) -> u64 {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// How many requests were made in all.
    pub fn total_hits(&self) -> u64 {
        self.hits.lock().unwrap().values().sum()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads the head of the next request on a kept-alive connection, for fake servers in unit
/// tests: the request line and headers, and the body's length from Content-Length (the body
/// is left to read). None once the client has closed the connection.
pub async fn read_request_head(conn: &mut BufReader<TcpStream>) -> Option<(String, usize)> {
    let (mut head, mut length) = (String::new(), 0usize);
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
            return None;
        }
        if line == "\r\n" {
            return Some((head, length));
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
    }
}

async fn serve(stream: TcpStream, dir: PathBuf, hits: Hits) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    *hits.lock().unwrap().entry(path.to_string()).or_default() += 1;
    let mut stream = reader.into_inner();
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    };

    if let Some(name) = path.strip_prefix("/files/") {
        let content_type = param("type").map(|t| percent_decode(&t));
        return send_file(&mut stream, dir.join(name), content_type.as_deref(), None).await;
    }
    if let Some(name) = path.strip_prefix("/slow/") {
        let ms = param("ms").and_then(|v| v.parse().ok()).unwrap_or(5000);
        return send_file(&mut stream, dir.join(name), None, Some(Duration::from_millis(ms))).await;
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let head = format!("HTTP/1.1 {code} Fixture\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return stream.write_all(head.as_bytes()).await;
    }
    if path == "/stall" {
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\nstarted")
            .await?;
        stream.flush().await?;
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return Ok(());
    }
    if path == "/redirect" {
        let to = param("to").unwrap_or_default();
        let head = format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return stream.write_all(head.as_bytes()).await;
    }
    stream
        .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await
}

/// Decodes `%XX` escapes (and `+` as a space) of a query value.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn send_file(
    stream: &mut TcpStream,
    path: PathBuf,
    content_type: Option<&str>,
    spread: Option<Duration>,
) -> std::io::Result<()> {
    let Ok(mut file) = tokio::fs::File::open(&path).await else {
        return stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
    };
    let len = file.metadata().await?.len();
    let content_type = content_type.unwrap_or("application/octet-stream");
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let chunk = match spread {
        Some(_) => (len / 20).max(1) as usize,
        None => 256 << 10,
    };
    let pause = spread.map(|d| d / 20);
    let mut buf = vec![0u8; chunk];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        stream.write_all(&buf[..n]).await?;
        if let Some(p) = pause {
            tokio::time::sleep(p).await;
        }
    }
    stream.flush().await
}

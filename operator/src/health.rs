//! The operator's HTTP endpoints: `/metrics`, `/healthz` (the process serves), `/readyz`
//! (the task CRDs exist and every controller's cache has synced).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::metrics::Metrics;

#[derive(Default)]
pub struct Readiness(AtomicBool);

impl Readiness {
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// How long a client may take to send its request, and how much of it is read: a scraper's
/// request is a few hundred bytes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_MAX_BYTES: u64 = 16 * 1024;

/// Serves the endpoints until the process ends.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, ready: Arc<Readiness>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (metrics, ready) = (metrics.clone(), ready.clone());
        tokio::spawn(async move {
            let mut reader = BufReader::new(stream);
            let Ok(Some(path)) = tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut reader)).await else {
                return;
            };
            let (status, content_type, body) = match path.as_str() {
                "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
                "/healthz" => ("200 OK", "text/plain", "ok\n".to_string()),
                "/readyz" if ready.is_ready() => ("200 OK", "text/plain", "ready\n".to_string()),
                "/readyz" => (
                    "503 Service Unavailable",
                    "text/plain",
                    "caches not synced\n".to_string(),
                ),
                _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let mut stream = reader.into_inner();
            if stream.write_all(response.as_bytes()).await.is_ok() {
                let _ = stream.shutdown().await;
            }
        });
    }
}

/// Reads a request through its headers and returns its path. The headers are read though
/// unused: an answer before the whole request could be reset by the client's later bytes
/// (a socket closed with unread data is reset), and a client that never ends its request
/// is dropped at the timeout instead of holding a task.
async fn read_request<R: AsyncBufRead + Unpin>(reader: &mut R) -> Option<String> {
    let mut limited = reader.take(REQUEST_MAX_BYTES);
    let mut line = String::new();
    limited.read_line(&mut line).await.ok()?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    loop {
        line.clear();
        match limited.read_line(&mut line).await {
            Ok(0) => return None,
            Ok(_) if line.trim_end().is_empty() => return Some(path),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends a request in two writes, the headers a moment after the request line, as
    /// clients may, and reads the whole response.
    async fn get(address: std::net::SocketAddr, line: &str, headers: &str) -> std::io::Result<String> {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream.write_all(line.as_bytes()).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        stream.write_all(headers.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok(response)
    }

    #[tokio::test]
    async fn metrics_and_readiness_are_served_to_a_request_sent_in_parts() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        metrics.reconciled("HashTask", Duration::from_millis(3));
        tokio::spawn(serve(listener, metrics, Arc::new(Readiness::default())));
        let headers = "Host: x\r\nAccept: */*\r\nConnection: close\r\n\r\n";
        let response = get(address, "GET /metrics HTTP/1.1\r\n", headers).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(
            response.contains("taskyard_reconciles_total{kind=\"HashTask\"} 1"),
            "{response}"
        );
        let response = get(address, "GET /readyz HTTP/1.1\r\n", "\r\n").await.unwrap();
        assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    }

    #[tokio::test]
    async fn a_request_that_never_ends_its_headers_is_dropped() {
        let (client, server) = tokio::io::duplex(64);
        let mut reader = BufReader::new(server);
        let mut client = client;
        client.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        drop(client);
        assert_eq!(read_request(&mut reader).await, None);
    }
}

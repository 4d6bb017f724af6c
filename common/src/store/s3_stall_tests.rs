//! A store that stops answering fails the request within the stall timeout; a slow upload
//! that keeps sending is not cut off; a body that stops arriving fails the read (the SDK's
//! stalled-stream protection, 5 s, which the store relies on). Against fake S3 servers on
//! loopback.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use taskyard_tests::http::read_request_head;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::{S3Settings, S3Store, StoreError};

const STALL: Duration = Duration::from_secs(1);

/// What the fake server does with each request, once its head and body are read.
#[derive(Clone, Copy)]
enum Server {
    /// Never answers.
    Silent,
    /// Answers a GET with the head of a 1 MiB body and 10 KiB of it, then nothing more.
    StopsMidBody,
    /// Reads the request's body at about 512 KiB/s, then answers 200.
    ReadsSlowly,
}

async fn serve(server: Server) -> S3Store {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(handle(conn, server));
        }
    });
    S3Store::connect(&S3Settings {
        endpoint: Some(endpoint),
        region: "us-east-1".into(),
        bucket: "taskyard".into(),
        force_path_style: true,
        credentials: Some(("id".into(), "secret".into())),
        stall_timeout: STALL,
    })
    .await
}

async fn handle(conn: TcpStream, server: Server) {
    let mut conn = BufReader::new(conn);
    while let Some((_, length)) = read_request_head(&mut conn).await {
        let mut body = vec![0; length];
        match server {
            Server::ReadsSlowly => {
                for chunk in body.chunks_mut(64 * 1024) {
                    if conn.read_exact(chunk).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(125)).await;
                }
            }
            _ => {
                if conn.read_exact(&mut body).await.is_err() {
                    return;
                }
            }
        }
        let answer: &[u8] = match server {
            Server::Silent => return std::future::pending().await,
            Server::StopsMidBody => b"HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 1048576\r\n\r\n",
            Server::ReadsSlowly => b"HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 0\r\n\r\n",
        };
        if conn.get_mut().write_all(answer).await.is_err() {
            return;
        }
        if let Server::StopsMidBody = server {
            let _ = conn.get_mut().write_all(&[7; 10 * 1024]).await;
            return std::future::pending().await;
        }
    }
}

/// Bounds a request that might never end, so the test fails instead of hanging.
async fn within<T>(request: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), request)
        .await
        .expect("the request still waits for the store after 30 s")
}

/// The SDK tries three times, each attempt bounded by the stall timeout.
fn assert_gave_up(started: Instant, error: &StoreError) {
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "gave up only after {took:?}: {error}");
    assert!(error.to_string().contains("timeout"), "not a timeout: {error}");
}

#[tokio::test]
async fn a_store_that_never_answers_fails_each_kind_of_request() {
    let store = serve(Server::Silent).await;
    let started = Instant::now();
    let error = within(store.size("k")).await.expect_err("a HEAD without an answer");
    assert_gave_up(started, &error);
    let started = Instant::now();
    let error = within(store.put("k", Bytes::from_static(b"line\n"), "text/plain"))
        .await
        .expect_err("a PUT without an answer");
    assert_gave_up(started, &error);
    let started = Instant::now();
    let error = within(store.open("k"))
        .await
        .map(drop)
        .expect_err("a GET without an answer");
    assert_gave_up(started, &error);
}

/// Guards the SDK default the store relies on for bodies: a read that stops fails.
#[tokio::test]
async fn a_body_that_stops_arriving_fails_the_read() {
    let store = serve(Server::StopsMidBody).await;
    let started = Instant::now();
    let mut chunks = store.open("k").await.expect("the answer's head arrives");
    let mut read = 0;
    let error = loop {
        match within(chunks.next()).await {
            Some(Ok(chunk)) => read += chunk.len(),
            Some(Err(e)) => break e,
            None => panic!("the body ended after {read} bytes without an error"),
        }
    };
    assert_eq!(read, 10 * 1024);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "gave up only after {took:?}: {error}");
}

#[tokio::test]
async fn an_upload_that_keeps_sending_is_not_cut_off() {
    // 1 MiB at 512 KiB/s: two seconds, twice the stall timeout.
    let store = serve(Server::ReadsSlowly).await;
    let started = Instant::now();
    within(store.put("k", Bytes::from(vec![1; 1 << 20]), "application/octet-stream"))
        .await
        .expect("a slow upload that keeps going succeeds");
    assert!(started.elapsed() > STALL * 3 / 2, "the server read faster than meant");
}

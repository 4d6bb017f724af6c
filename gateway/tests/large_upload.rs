//! A 1 GiB upload streams through the gateway into the store: its memory stays under 64 MiB
//! (the bound), and the MD5 of what was stored matches coreutils' md5sum of the
//! same bytes.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use support::{Gateway, client, get_json, json_of};

const CHUNK: usize = 1 << 20;
const CHUNKS: u64 = 1024;

/// Chunk `i` of the upload: a fixed pseudo-random block, stamped with its index so that no
/// two chunks are alike.
fn chunk(block: &[u8], i: u64) -> Bytes {
    let mut c = block.to_vec();
    c[..8].copy_from_slice(&i.to_le_bytes());
    Bytes::from(c)
}

fn block() -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..CHUNK)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// MD5 of the whole upload by coreutils, fed the same chunks.
fn md5sum_of_upload(block: &[u8]) -> String {
    let mut md5sum = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("coreutils md5sum");
    let mut stdin = md5sum.stdin.take().unwrap();
    for i in 0..CHUNKS {
        stdin.write_all(&chunk(block, i)).unwrap();
    }
    drop(stdin);
    let out = md5sum.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..32].to_string()
}

#[tokio::test]
async fn a_1_gib_upload_streams_with_little_memory() {
    let gw = Gateway::start();
    let block = block();
    let want = md5sum_of_upload(&block);
    let sent = block.clone();
    let body = futures::stream::iter((0..CHUNKS).map(move |i| Ok::<_, std::io::Error>(chunk(&sent, i))));
    let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(body), CHUNKS * CHUNK as u64)
        .file_name("big.bin");
    let started = Instant::now();
    let r = client()
        .post(gw.url("/hashes/"))
        .timeout(Duration::from_secs(300))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!((status, &body), (200, &json!({"task_id": 1})));
    let uploaded_in = started.elapsed();
    let peak = gw.peak_rss();
    assert!(
        peak <= 64 << 20,
        "the gateway's peak RSS was {} MiB during a 1 GiB upload",
        peak >> 20
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (_, body) = get_json(&gw.url("/hashes/1")).await;
        if body["status"] != "PENDING" {
            assert_eq!(body, json!({"status": "SUCCESS", "result": want}));
            break;
        }
        assert!(Instant::now() < deadline, "no result 180 s after the upload");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "1 GiB uploaded in {uploaded_in:?}, hashed {:?} later; gateway peak RSS {} MiB",
        started.elapsed() - uploaded_in,
        peak >> 20
    );
}

//! Streamed uploads into the real S3 server of the local cluster (tests/cluster/up.sh): the
//! multipart path the gateway's cluster mode uses, its one-part path, and that a refused or
//! broken stream leaves no object behind.

use bytes::Bytes;
use futures::StreamExt;
use md5::Digest;
use taskyard_common::store::{Store, StoreError};
use taskyard_tests::cluster::ClusterEnv;

/// `total` bytes of a pattern, in chunks of `chunk` bytes, like a request body arrives.
fn pattern(total: usize, chunk: usize) -> (impl futures::Stream<Item = Result<Bytes, String>> + Send, String) {
    let bytes: Vec<u8> = (0..total).map(|i| (i * 31 % 251) as u8).collect();
    let md5 = hex::encode(md5::Md5::digest(&bytes));
    let chunks: Vec<Result<Bytes, String>> = bytes.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    (futures::stream::iter(chunks), md5)
}

async fn md5_of(store: &Store, key: &str) -> String {
    let mut body = store.open(key).await.unwrap();
    let mut hasher = md5::Md5::new();
    while let Some(chunk) = body.next().await {
        hasher.update(chunk.unwrap());
    }
    hex::encode(hasher.finalize())
}

fn key(name: &str) -> String {
    format!("uploads/it-gateway/{name}-{}", uuid::Uuid::new_v4())
}

#[tokio::test]
async fn a_stream_of_several_parts_is_one_object_with_every_byte() {
    let store = ClusterEnv::load().store().await;
    let key = key("multipart");
    // 2.5 parts of 8 MiB, in odd-sized chunks that straddle the part boundaries.
    let total = 20 << 20;
    let (chunks, md5) = pattern(total, 65_537);
    let size = store.put_stream(&key, chunks, 1 << 30).await.unwrap();
    assert_eq!(size, total as u64);
    assert_eq!(store.size(&key).await.unwrap(), Some(total as u64));
    assert_eq!(md5_of(&store, &key).await, md5);
    store.delete(&key).await.unwrap();
}

#[tokio::test]
async fn a_small_stream_is_written_in_one_put() {
    let store = ClusterEnv::load().store().await;
    let key = key("small");
    let (chunks, md5) = pattern(100_000, 4096);
    assert_eq!(store.put_stream(&key, chunks, 1 << 20).await.unwrap(), 100_000);
    assert_eq!(md5_of(&store, &key).await, md5);
    let empty = key.clone() + "-empty";
    let none = futures::stream::iter(Vec::<Result<Bytes, String>>::new());
    assert_eq!(store.put_stream(&empty, none, 10).await.unwrap(), 0);
    assert_eq!(store.size(&empty).await.unwrap(), Some(0));
    store.delete(&key).await.unwrap();
    store.delete(&empty).await.unwrap();
}

#[tokio::test]
async fn over_the_limit_after_parts_were_sent_leaves_nothing() {
    let store = ClusterEnv::load().store().await;
    let key = key("too-large");
    let (chunks, _) = pattern(18 << 20, 1 << 20);
    let refused = store.put_stream(&key, chunks, 17 << 20).await;
    assert!(matches!(refused, Err(StoreError::TooLarge { .. })), "{refused:?}");
    assert_eq!(store.size(&key).await.unwrap(), None);
}

#[tokio::test]
async fn a_stream_that_breaks_after_a_part_leaves_nothing() {
    let store = ClusterEnv::load().store().await;
    let key = key("broken");
    let (chunks, _) = pattern(9 << 20, 1 << 20);
    let broken = chunks.chain(futures::stream::iter(vec![Err("connection reset".to_string())]));
    let e = store.put_stream(&key, broken, 1 << 30).await;
    assert!(
        matches!(&e, Err(StoreError::Interrupted { message, .. }) if message.contains("connection reset")),
        "{e:?}"
    );
    assert_eq!(store.size(&key).await.unwrap(), None);
}

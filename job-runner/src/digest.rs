//! Digests of a byte stream: every requested algorithm in one pass, hashing on a blocking
//! thread while the next chunks are read, in memory that does not grow with the input.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use md5::Digest as _;
use taskyard_api::{HashAlgorithm, HashOutput};

use crate::error::RunnerError;

/// Chunks in flight between the reader and the hashing thread.
const QUEUE_DEPTH: usize = 16;

enum Hasher {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(algorithm: HashAlgorithm) -> Self {
        match algorithm {
            HashAlgorithm::Md5 => Hasher::Md5(md5::Md5::new()),
            HashAlgorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            HashAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> String {
        match self {
            Hasher::Md5(h) => hex::encode(h.finalize()),
            Hasher::Sha1(h) => hex::encode(h.finalize()),
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// Several digests computed together.
pub struct MultiDigest {
    hashers: Vec<(HashAlgorithm, Hasher)>,
}

impl MultiDigest {
    pub fn new(algorithms: &[HashAlgorithm]) -> Self {
        let mut algorithms = algorithms.to_vec();
        algorithms.sort();
        algorithms.dedup();
        Self {
            hashers: algorithms.into_iter().map(|a| (a, Hasher::new(a))).collect(),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        for (_, h) in &mut self.hashers {
            h.update(data);
        }
    }

    pub fn finish(self) -> BTreeMap<String, String> {
        self.hashers
            .into_iter()
            .map(|(a, h)| (a.as_str().to_string(), h.finish()))
            .collect()
    }
}

/// Hashes a stream, failing with `TooLarge` as soon as it passes `limit` bytes.
pub async fn digest_stream<S>(
    chunks: S,
    algorithms: &[HashAlgorithm],
    limit: u64,
    what: &str,
) -> Result<HashOutput, RunnerError>
where
    S: Stream<Item = Result<Bytes, RunnerError>> + Unpin,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUE_DEPTH);
    let mut digest = MultiDigest::new(algorithms);
    let hashing = tokio::task::spawn_blocking(move || {
        while let Some(chunk) = rx.blocking_recv() {
            digest.update(&chunk);
        }
        digest.finish()
    });

    let mut size = 0u64;
    let mut chunks = chunks;
    let read = async {
        while let Some(chunk) = chunks.try_next().await? {
            size += chunk.len() as u64;
            if size > limit {
                return Err(RunnerError::TooLarge {
                    what: what.to_string(),
                    limit,
                    setting: "the runner setting TASKYARD_MAX_HASH_BYTES (--max-hash-bytes)",
                });
            }
            if tx.send(chunk).await.is_err() {
                break;
            }
        }
        Ok(())
    };
    let outcome = read.await;
    drop(tx);
    let digests = hashing.await.expect("the hashing thread does not panic");
    outcome?;
    Ok(HashOutput { digests, size })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(parts: Vec<&'static [u8]>) -> impl Stream<Item = Result<Bytes, RunnerError>> + Unpin {
        futures::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p))))
    }

    #[tokio::test]
    async fn known_vectors_in_one_pass_across_chunk_boundaries() {
        let all = [
            HashAlgorithm::Sha512,
            HashAlgorithm::Md5,
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha1,
        ];
        let out = digest_stream(stream(vec![b"a", b"", b"bc"]), &all, 100, "x")
            .await
            .unwrap();
        assert_eq!(out.size, 3);
        assert_eq!(out.digests["md5"], "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(out.digests["sha1"], "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            out.digests["sha256"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(out.digests["sha512"].starts_with("ddaf35a193617abacc417349ae204131"));
        let empty = digest_stream(stream(vec![]), &[HashAlgorithm::Md5], 0, "x")
            .await
            .unwrap();
        assert_eq!(
            (empty.size, empty.digests["md5"].as_str()),
            (0, "d41d8cd98f00b204e9800998ecf8427e")
        );
    }

    #[tokio::test]
    async fn stops_at_the_limit_and_names_the_setting() {
        let err = digest_stream(stream(vec![b"1234", b"5678"]), &[HashAlgorithm::Md5], 6, "the file")
            .await
            .unwrap_err();
        assert_eq!(err.reason().as_str(), "LimitExceeded");
        assert!(err.to_string().contains("TASKYARD_MAX_HASH_BYTES"), "{err}");
    }
}

//! Digests of a byte stream or a file: every requested algorithm in one pass, on a blocking
//! thread that hashes one page-aligned buffer while the next is filled (double buffering),
//! in memory that does not grow with the input.

mod aligned;
mod md5_asm;
mod pipeline;

use std::collections::BTreeMap;

use sha2::Digest as _;

pub use md5_asm::Md5;
pub use pipeline::{digest_file, digest_stream};
use taskyard_api::HashAlgorithm;

enum Hasher {
    Md5(md5_asm::Md5),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(algorithm: HashAlgorithm) -> Self {
        match algorithm {
            HashAlgorithm::Md5 => Hasher::Md5(md5_asm::Md5::new()),
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use futures::Stream;
    use taskyard_api::HashAlgorithm;

    use super::*;
    use crate::error::RunnerError;

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

    /// Inputs of several buffers, in chunks that straddle the buffers' edges, from a stream
    /// and from a file, give the digests of the whole.
    #[tokio::test]
    async fn many_buffers_from_a_stream_and_a_file() {
        use ::md5::Digest as _;
        let data: Vec<u8> = (0..pipeline::BUF_BYTES * 3 + 12_345)
            .map(|i| (i * 7 % 253) as u8)
            .collect();
        let want = hex::encode(::md5::Md5::digest(&data));
        let chunks: Vec<Result<Bytes, RunnerError>> =
            data.chunks(100_003).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let out = digest_stream(futures::stream::iter(chunks), &[HashAlgorithm::Md5], u64::MAX, "x")
            .await
            .unwrap();
        assert_eq!(
            (out.size, out.digests["md5"].as_str()),
            (data.len() as u64, want.as_str())
        );

        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &data).unwrap();
        let open = || std::fs::File::open(file.path()).unwrap();
        let out = digest_file(open(), "k", &[HashAlgorithm::Md5], u64::MAX, "x")
            .await
            .unwrap();
        assert_eq!(
            (out.size, out.digests["md5"].as_str()),
            (data.len() as u64, want.as_str())
        );
        let err = digest_file(open(), "k", &[HashAlgorithm::Md5], 1 << 20, "the file")
            .await
            .unwrap_err();
        assert_eq!(err.reason().as_str(), "LimitExceeded");
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

//! Double buffering: a few page-aligned buffers go round between the reader, which fills
//! one, and the hashing thread, which hashes the one filled before, so reading and hashing
//! overlap on two cores. A file is read straight into the buffers on its own blocking
//! thread; a stream's chunks (HTTP, S3) are copied into them, one hand-off per buffer.

use std::collections::BTreeMap;
use std::io::Read;

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use taskyard_api::{HashAlgorithm, HashOutput};
use taskyard_common::store::StoreError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::MultiDigest;
use super::aligned::AlignedBuf;
use crate::error::RunnerError;

/// Bytes per buffer: large reads, few hand-offs.
pub const BUF_BYTES: usize = 1 << 20;
/// Buffers in circulation: one being hashed, one being filled, one spare against jitter.
const BUFFERS: usize = 3;
const LIMIT_SETTING: &str = "the runner setting TASKYARD_MAX_HASH_BYTES (--max-hash-bytes)";

/// The hashing thread and the buffers it hands back.
struct Hashing {
    filled: mpsc::Sender<(AlignedBuf, usize)>,
    free: mpsc::Receiver<AlignedBuf>,
    worker: JoinHandle<MultiDigest>,
}

impl Hashing {
    fn start(algorithms: &[HashAlgorithm]) -> Self {
        let (filled, mut to_hash) = mpsc::channel::<(AlignedBuf, usize)>(BUFFERS);
        let (give_back, free) = mpsc::channel(BUFFERS);
        for _ in 0..BUFFERS {
            give_back
                .try_send(AlignedBuf::new(BUF_BYTES))
                .expect("room for every buffer");
        }
        let mut digest = MultiDigest::new(algorithms);
        let worker = tokio::task::spawn_blocking(move || {
            while let Some((buf, len)) = to_hash.blocking_recv() {
                digest.update(&buf[..len]);
                // The reader may have stopped (an error, the limit): nothing more to hand back.
                let _ = give_back.try_send(buf);
            }
            digest
        });
        Self { filled, free, worker }
    }

    async fn finish(self) -> BTreeMap<String, String> {
        drop(self.filled);
        self.worker.await.expect("the hashing thread does not panic").finish()
    }
}

fn too_large(what: &str, limit: u64) -> RunnerError {
    RunnerError::TooLarge {
        what: what.to_string(),
        limit,
        setting: LIMIT_SETTING,
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
    let mut hashing = Hashing::start(algorithms);
    let mut size = 0u64;
    let mut chunks = chunks;
    let read = async {
        let mut buf = hashing.free.recv().await.expect("buffers come back");
        let mut len = 0;
        while let Some(chunk) = chunks.try_next().await? {
            size += chunk.len() as u64;
            if size > limit {
                return Err(too_large(what, limit));
            }
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let n = rest.len().min(BUF_BYTES - len);
                buf[len..len + n].copy_from_slice(&rest[..n]);
                (len, rest) = (len + n, &rest[n..]);
                if len == BUF_BYTES {
                    hashing.filled.send((buf, len)).await.expect("the hashing thread runs");
                    buf = hashing.free.recv().await.expect("buffers come back");
                    len = 0;
                }
            }
        }
        if len > 0 {
            hashing.filled.send((buf, len)).await.expect("the hashing thread runs");
        }
        Ok(())
    };
    let outcome = read.await;
    let digests = hashing.finish().await;
    outcome?;
    Ok(HashOutput { digests, size })
}

/// Hashes an open local file (the directory store's object `key`), read into the buffers
/// directly by a blocking thread: no async file layer copying between buffers.
pub async fn digest_file(
    mut file: std::fs::File,
    key: &str,
    algorithms: &[HashAlgorithm],
    limit: u64,
    what: &str,
) -> Result<HashOutput, RunnerError> {
    let Hashing {
        filled,
        mut free,
        worker,
    } = Hashing::start(algorithms);
    let (what, key) = (what.to_string(), key.to_string());
    let reader = tokio::task::spawn_blocking(move || {
        let mut size = 0u64;
        loop {
            let mut buf = free.blocking_recv().expect("buffers come back");
            let mut len = 0;
            while len < BUF_BYTES {
                match file.read(&mut buf[len..]) {
                    Ok(0) => break,
                    Ok(n) => len += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(RunnerError::Store(StoreError::Backend {
                            op: "read",
                            key,
                            message: e.to_string(),
                        }));
                    }
                }
            }
            size += len as u64;
            if size > limit {
                return Err(too_large(&what, limit));
            }
            if len > 0 {
                filled.blocking_send((buf, len)).expect("the hashing thread runs");
            }
            // A short read is the end of the file.
            if len < BUF_BYTES {
                return Ok(size);
            }
        }
    });
    let read = reader.await.expect("the reading thread does not panic");
    let digests = worker.await.expect("the hashing thread does not panic").finish();
    Ok(HashOutput { digests, size: read? })
}

//! The object store: an S3-compatible bucket in a cluster, a directory on one machine
//! (`job-runner run --store DIR`). Both have the same key layout and the same operations.

mod dir;
mod s3;
#[cfg(test)]
mod s3_stall_tests;
mod s3_stream;

use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

pub use dir::DirStore;
pub use s3::{S3Settings, S3Store};

/// A stream of an object's bytes, in chunks.
pub type ByteChunks = Pin<Box<dyn Stream<Item = Result<Bytes, StoreError>> + Send>>;

/// A stream of keys, in key order.
pub type Keys = Pin<Box<dyn Stream<Item = Result<String, StoreError>> + Send>>;

/// What went wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object {key:?} does not exist in the store")]
    NotFound { key: String },
    #[error("object {key:?} is {size} bytes, more than the {limit} bytes allowed here")]
    TooLarge { key: String, size: u64, limit: u64 },
    #[error("invalid store key {key:?}: {why}")]
    InvalidKey { key: String, why: &'static str },
    /// The bytes being written stopped coming (a client that went away, a broken upload).
    #[error("the data for object {key:?} stopped arriving: {message}")]
    Interrupted { key: String, message: String },
    #[error("object store {op} {key:?} failed: {message}")]
    Backend {
        op: &'static str,
        key: String,
        message: String,
    },
}

/// Whether a conditional create wrote the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    AlreadyExists,
}

/// A Taskyard object store.
#[derive(Clone, Debug)]
pub enum Store {
    S3(S3Store),
    Dir(DirStore),
}

impl Store {
    /// A short description for logs and messages.
    pub fn describe(&self) -> String {
        match self {
            Store::S3(s) => format!("s3://{}", s.bucket()),
            Store::Dir(d) => d.root().display().to_string(),
        }
    }

    /// The object's size, or `None` when it does not exist.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match self {
            Store::S3(s) => s.size(key).await,
            Store::Dir(d) => d.size(key).await,
        }
    }

    /// Streams an object's bytes.
    pub async fn open(&self, key: &str) -> Result<ByteChunks, StoreError> {
        match self {
            Store::S3(s) => s.open(key).await,
            Store::Dir(d) => d.open(key).await,
        }
    }

    /// The file behind an object when the store is a directory, for a reader that does its
    /// own (faster) I/O; `None` for S3.
    pub fn local_path(&self, key: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
        match self {
            Store::S3(_) => Ok(None),
            Store::Dir(d) => d.path(key).map(Some),
        }
    }

    /// Streams an object's bytes; `None` when it does not exist.
    async fn open_if_exists(&self, key: &str) -> Result<Option<ByteChunks>, StoreError> {
        match self.open(key).await {
            Ok(chunks) => Ok(Some(chunks)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The first `n` bytes of an object (all of it when shorter), reading no further.
    /// `None` when it does not exist.
    pub async fn head_bytes(&self, key: &str, n: usize) -> Result<Option<Bytes>, StoreError> {
        use futures::TryStreamExt;
        let Some(mut chunks) = self.open_if_exists(key).await? else {
            return Ok(None);
        };
        let mut buf = Vec::new();
        while buf.len() < n
            && let Some(chunk) = chunks.try_next().await?
        {
            buf.extend_from_slice(&chunk);
        }
        buf.truncate(n);
        Ok(Some(Bytes::from(buf)))
    }

    /// Reads a small object whole, refusing one larger than `limit` bytes.
    /// `None` when it does not exist.
    pub async fn get(&self, key: &str, limit: u64) -> Result<Option<Bytes>, StoreError> {
        use futures::TryStreamExt;
        let Some(mut chunks) = self.open_if_exists(key).await? else {
            return Ok(None);
        };
        let mut buf = Vec::new();
        while let Some(chunk) = chunks.try_next().await? {
            buf.extend_from_slice(&chunk);
            if buf.len() as u64 > limit {
                return Err(StoreError::TooLarge {
                    key: key.into(),
                    size: buf.len() as u64,
                    limit,
                });
            }
        }
        Ok(Some(Bytes::from(buf)))
    }

    /// Writes an object, replacing any object at that key.
    pub async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        match self {
            Store::S3(s) => s.put(key, body, content_type).await,
            Store::Dir(d) => d.put(key, body).await,
        }
    }

    /// Writes an object from a stream of chunks, replacing any object at that key, holding
    /// one chunk at a time in memory. Past `limit` bytes it stops with `TooLarge` and writes
    /// nothing; so does a stream that fails (`Interrupted`). Returns the object's size.
    pub async fn put_stream<S, E>(&self, key: &str, chunks: S, limit: u64) -> Result<u64, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        match self {
            Store::S3(s) => s.put_stream(key, chunks, limit).await,
            Store::Dir(d) => d.put_stream(key, chunks, limit).await,
        }
    }

    /// Writes an object only if no object exists at that key, atomically: of two writers
    /// racing for one key, exactly one gets `Created`.
    pub async fn put_if_absent(&self, key: &str, body: Bytes, content_type: &str) -> Result<PutOutcome, StoreError> {
        match self {
            Store::S3(s) => s.put_if_absent(key, body, content_type).await,
            Store::Dir(d) => d.put_if_absent(key, body).await,
        }
    }

    /// The first key (in key order) that starts with `prefix`, if any.
    pub async fn first_with_prefix(&self, prefix: &str) -> Result<Option<String>, StoreError> {
        match self {
            Store::S3(s) => s.first_with_prefix(prefix).await,
            Store::Dir(d) => d.first_with_prefix(prefix).await,
        }
    }

    /// Every key that starts with `prefix`, in key (byte) order, like S3's ListObjectsV2.
    /// A bucket is listed a page at a time, so memory does not grow with the number of keys.
    pub fn list(&self, prefix: &str) -> Keys {
        match self {
            Store::S3(s) => s.list(prefix),
            Store::Dir(d) => d.list(prefix),
        }
    }

    /// Deletes an object; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Store::S3(s) => s.delete(key).await,
            Store::Dir(d) => d.delete(key).await,
        }
    }
}

//! Streamed writes to an S3 bucket: a multipart upload, one part buffered at a time, so an
//! upload of any size holds at most `PART_BYTES` in memory. An object smaller than one part
//! is written with a single PutObject. Nothing is visible at the key until the whole stream
//! has arrived: a failed or oversized stream aborts the multipart upload.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

use super::StoreError;
use super::s3::{S3Store, backend};

/// The size of each part but the last. S3 wants at least 5 MiB; 8 MiB keeps the part count
/// of a 10 GiB upload (1,280) well under S3's 10,000.
pub const PART_BYTES: usize = 8 << 20;

/// Cuts a stream of chunks of any sizes into parts of exactly `part` bytes (the last one
/// shorter), counting the bytes against `limit`.
pub struct Parts {
    part: usize,
    limit: u64,
    size: u64,
    buf: BytesMut,
}

impl Parts {
    pub fn new(part: usize, limit: u64) -> Self {
        Self {
            part,
            limit,
            size: 0,
            buf: BytesMut::new(),
        }
    }

    /// Adds a chunk; returns the parts it completed. `Err(size)` past the limit.
    pub fn push(&mut self, mut chunk: Bytes) -> Result<Vec<Bytes>, u64> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(self.size);
        }
        let mut full = Vec::new();
        while !chunk.is_empty() {
            let take = (self.part - self.buf.len()).min(chunk.len());
            self.buf.extend_from_slice(&chunk.split_to(take));
            if self.buf.len() == self.part {
                full.push(self.buf.split().freeze());
            }
        }
        Ok(full)
    }

    /// The bytes of the last, partial part (possibly empty).
    pub fn rest(&mut self) -> Bytes {
        self.buf.split().freeze()
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

/// Writes `chunks` to `key`; see the module's comment.
pub async fn put_stream<S, E>(store: &S3Store, key: &str, chunks: S, limit: u64) -> Result<u64, StoreError>
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    let mut chunks = std::pin::pin!(chunks);
    let mut parts = Parts::new(PART_BYTES, limit);
    let mut upload: Option<Multipart> = None;
    let written = async {
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| StoreError::Interrupted {
                key: key.into(),
                message: e.to_string(),
            })?;
            let full = parts.push(chunk).map_err(|size| StoreError::TooLarge {
                key: key.into(),
                size,
                limit,
            })?;
            for part in full {
                if upload.is_none() {
                    upload = Some(Multipart::start(store, key).await?);
                }
                upload.as_mut().expect("started above").send(part).await?;
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = written {
        if let Some(upload) = upload {
            upload.abort().await;
        }
        return Err(e);
    }
    let rest = parts.rest();
    match upload {
        // Smaller than one part: a plain write.
        None => {
            let config = store.sending(rest.len() as u64);
            store
                .client()
                .put_object()
                .bucket(store.bucket())
                .key(key)
                .content_type("application/octet-stream")
                .body(ByteStream::from(rest))
                .customize()
                .config_override(config)
                .send()
                .await
                .map(|_| parts.size())
                .map_err(|e| backend("put", key, e))
        }
        Some(mut upload) => {
            if !rest.is_empty()
                && let Err(e) = upload.send(rest).await
            {
                upload.abort().await;
                return Err(e);
            }
            upload.complete(parts.size()).await.map(|()| parts.size())
        }
    }
}

/// One multipart upload in progress.
struct Multipart {
    store: S3Store,
    key: String,
    id: String,
    done: Vec<CompletedPart>,
}

impl Multipart {
    async fn start(store: &S3Store, key: &str) -> Result<Self, StoreError> {
        let out = store
            .client()
            .create_multipart_upload()
            .bucket(store.bucket())
            .key(key)
            .content_type("application/octet-stream")
            .send()
            .await
            .map_err(|e| backend("start multipart upload", key, e))?;
        let id = out.upload_id().ok_or_else(|| StoreError::Backend {
            op: "start multipart upload",
            key: key.into(),
            message: "the server answered without an upload id".into(),
        })?;
        Ok(Self {
            store: store.clone(),
            key: key.into(),
            id: id.into(),
            done: Vec::new(),
        })
    }

    async fn send(&mut self, part: Bytes) -> Result<(), StoreError> {
        let number = self.done.len() as i32 + 1;
        let config = self.store.sending(part.len() as u64);
        let out = self
            .store
            .client()
            .upload_part()
            .bucket(self.store.bucket())
            .key(&self.key)
            .upload_id(&self.id)
            .part_number(number)
            .body(ByteStream::from(part))
            .customize()
            .config_override(config)
            .send()
            .await
            .map_err(|e| backend("upload part", &self.key, e))?;
        self.done.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_string))
                .build(),
        );
        Ok(())
    }

    /// `size`: the whole object's, which the store assembles before it answers.
    async fn complete(self, size: u64) -> Result<(), StoreError> {
        let done = CompletedMultipartUpload::builder()
            .set_parts(Some(self.done.clone()))
            .build();
        let completed = self
            .store
            .client()
            .complete_multipart_upload()
            .bucket(self.store.bucket())
            .key(&self.key)
            .upload_id(&self.id)
            .multipart_upload(done)
            .customize()
            .config_override(self.store.assembling(size))
            .send()
            .await;
        match completed {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = backend("complete multipart upload", &self.key, e);
                self.abort().await;
                Err(err)
            }
        }
    }

    /// Drops the parts sent so far; a failure only leaves parts for the bucket's lifecycle
    /// rules to clean, never a visible object.
    async fn abort(self) {
        let aborted = self
            .store
            .client()
            .abort_multipart_upload()
            .bucket(self.store.bucket())
            .key(&self.key)
            .upload_id(&self.id)
            .send()
            .await;
        if let Err(e) = aborted {
            tracing::warn!(key = %self.key, "cannot abort the multipart upload: {}", aws_sdk_s3::error::DisplayErrorContext(&e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_cut_at_the_part_size_whatever_the_chunks() {
        let mut parts = Parts::new(4, 100);
        assert!(parts.push(Bytes::from_static(b"ab")).unwrap().is_empty());
        let full = parts.push(Bytes::from_static(b"cdefghij")).unwrap();
        assert_eq!(full, vec![Bytes::from_static(b"abcd"), Bytes::from_static(b"efgh")]);
        assert_eq!(parts.rest(), Bytes::from_static(b"ij"));
        assert_eq!(parts.size(), 10);
        assert!(parts.rest().is_empty());
    }

    #[test]
    fn an_exact_multiple_leaves_no_rest() {
        let mut parts = Parts::new(3, 100);
        assert_eq!(parts.push(Bytes::from_static(b"abcdef")).unwrap().len(), 2);
        assert!(parts.rest().is_empty());
    }

    #[test]
    fn past_the_limit_is_refused_with_the_size_seen() {
        let mut parts = Parts::new(4, 5);
        parts.push(Bytes::from_static(b"abc")).unwrap();
        assert_eq!(parts.push(Bytes::from_static(b"def")), Err(6));
    }
}

//! Uploads stream from the request into the namespace's upload area of the store, a chunk at
//! a time: a 1 GiB upload never sits in the gateway's memory.

use axum::extract::multipart::{Field, Multipart, MultipartError};
use bytes::Bytes;
use futures::StreamExt;
use taskyard_common::keys::upload_key;
use taskyard_common::store::{Store, StoreError};

/// Where an upload went: the task's `spec.source.object` and the full store key.
#[derive(Clone, Debug)]
pub struct Stored {
    pub object: String,
    pub key: String,
    pub size: u64,
}

/// Why an upload was not stored.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(
        "the upload is larger than the gateway's {limit}-byte limit; send a smaller file (or raise --max-upload-bytes / --max-image-bytes)"
    )]
    TooLarge { limit: u64 },
    #[error("the upload was cut off before its end: {0}; send it again")]
    Interrupted(String),
    #[error("the multipart body is malformed: {0}; send multipart/form-data")]
    Malformed(String),
    #[error("{0}")]
    Store(StoreError),
}

impl UploadError {
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            UploadError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            UploadError::Interrupted(_) | UploadError::Malformed(_) => StatusCode::BAD_REQUEST,
            UploadError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<MultipartError> for UploadError {
    fn from(e: MultipartError) -> Self {
        UploadError::Malformed(e.body_text())
    }
}

/// Streams a stream of chunks to `object` in `namespace`'s upload area.
pub async fn store_stream<S, E>(
    store: &Store,
    namespace: &str,
    object: &str,
    chunks: S,
    limit: u64,
) -> Result<Stored, UploadError>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    let key = upload_key(namespace, object).map_err(UploadError::Malformed)?;
    match store.put_stream(&key, chunks, limit).await {
        Ok(size) => Ok(Stored {
            object: object.to_string(),
            key,
            size,
        }),
        Err(StoreError::TooLarge { limit, .. }) => Err(UploadError::TooLarge { limit }),
        Err(StoreError::Interrupted { message, .. }) => Err(UploadError::Interrupted(message)),
        Err(e) => Err(UploadError::Store(e)),
    }
}

/// Streams one multipart field to `object` in `namespace`'s upload area.
pub async fn store_field(
    store: &Store,
    namespace: &str,
    object: &str,
    field: Field<'_>,
    limit: u64,
) -> Result<Stored, UploadError> {
    store_stream(store, namespace, object, field, limit).await
}

/// A field whose first bytes were read, so that its type is known before choosing where
/// it goes.
pub struct Peeked<'a> {
    pub head: Bytes,
    rest: Field<'a>,
}

/// Reads at least `n` bytes of a field (fewer if it ends sooner).
pub async fn peek(mut field: Field<'_>, n: usize) -> Result<Peeked<'_>, UploadError> {
    let mut head = Vec::new();
    while head.len() < n
        && let Some(chunk) = field.chunk().await?
    {
        head.extend_from_slice(&chunk);
    }
    Ok(Peeked {
        head: Bytes::from(head),
        rest: field,
    })
}

impl Peeked<'_> {
    /// Streams the whole field, the bytes already read first, to `object`.
    pub async fn store(self, store: &Store, namespace: &str, object: &str, limit: u64) -> Result<Stored, UploadError> {
        let chunks = futures::stream::once(futures::future::ready(Ok(self.head))).chain(self.rest);
        store_stream(store, namespace, object, chunks, limit).await
    }

    /// Reads the rest of the field without keeping it.
    pub async fn drain(self) -> Result<(), UploadError> {
        drain(self.rest).await
    }
}

/// A small form field's text, refusing more than `max` bytes.
pub async fn small_text(mut field: Field<'_>, max: usize) -> Result<String, UploadError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await? {
        buf.extend_from_slice(&chunk);
        if buf.len() > max {
            return Err(UploadError::Malformed(format!(
                "the form field {:?} is longer than {max} bytes",
                field.name().unwrap_or_default()
            )));
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Reads a field to its end without keeping it.
pub async fn drain(field: Field<'_>) -> Result<(), UploadError> {
    let mut field = field;
    while field.next().await.transpose()?.is_some() {}
    Ok(())
}

/// The next field of a multipart body, mapping errors.
pub async fn next_field(multipart: &mut Multipart) -> Result<Option<Field<'_>>, UploadError> {
    Ok(multipart.next_field().await?)
}

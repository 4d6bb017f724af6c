//! Uploads stream from the request into the namespace's upload area of the store, a chunk at
//! a time: a 1 GiB upload never sits in the gateway's memory.

use std::collections::BTreeMap;

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

/// Which parts of a multipart form a handler wants.
pub struct Parts {
    /// Whether a part is the file; the first such part is handed over, later ones drained.
    pub is_file: fn(&Field<'_>) -> bool,
    /// Whether a part is a small text field to keep by name (the first of a name counts).
    pub is_text: fn(&Field<'_>) -> bool,
    /// The longest text field accepted, in bytes.
    pub text_max: usize,
}

impl Parts {
    /// Only the part named `file`; every other part is drained.
    pub const FILE_ONLY: Parts = Parts {
        is_file: is_named_file,
        is_text: |_| false,
        text_max: 0,
    };
}

/// A part named `file`.
pub fn is_named_file(field: &Field<'_>) -> bool {
    field.name() == Some("file")
}

/// The file part as `first_file` shows it to the handler before storing it.
pub struct FilePart<'a> {
    /// The part's file name, if it has one.
    pub file_name: Option<&'a str>,
    /// The first bytes (up to `SNIFF_BYTES`; fewer only if the file is shorter).
    pub head: &'a [u8],
    /// The text fields read before the file part.
    pub texts: &'a BTreeMap<String, String>,
}

/// How many bytes of the file a handler sees before choosing where it goes (enough to tell
/// an image's format).
pub const SNIFF_BYTES: usize = 64;

/// Where to store the file: an object in the namespace's upload area, and the size limit.
pub struct Destination {
    pub object: String,
    pub limit: u64,
}

/// A multipart form read to its end.
pub struct Form {
    /// The file part's file name, when the form had a file part.
    pub file: Option<Option<String>>,
    /// Where the file went, when the handler chose to store it.
    pub stored: Option<Stored>,
    pub texts: BTreeMap<String, String>,
}

/// A form that could not be read; `stored` is the upload already made, for the caller to
/// delete when nothing will read it.
pub struct Failed<E> {
    pub error: E,
    pub stored: Option<Stored>,
}

/// Reads a multipart body to its end: the first file part is shown to `choose` (its name, its
/// first bytes and the text fields before it), then streamed to the destination it names in
/// `namespace`'s upload area, or drained when it names none (or refused with its error); the
/// wanted text fields are kept and every other part is drained unread. A sync `choose` keeps
/// the handlers' futures `Send` and the borrow of the body simple.
pub async fn first_file<E>(
    multipart: &mut Multipart,
    parts: &Parts,
    store: &Store,
    namespace: &str,
    choose: impl FnOnce(&FilePart<'_>) -> Result<Option<Destination>, E>,
) -> Result<Form, Failed<E>>
where
    E: From<UploadError>,
{
    let mut form = Form {
        file: None,
        stored: None,
        texts: BTreeMap::new(),
    };
    let mut choose = Some(choose);
    loop {
        let field = match next_field(multipart).await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(form),
            Err(e) => return Err(form.failed(e.into())),
        };
        let is_file = (parts.is_file)(&field);
        let outcome = match choose.take_if(|_| is_file) {
            Some(choose) => take_file(&mut form, field, store, namespace, choose).await,
            None if (parts.is_text)(&field) && !is_file => {
                let name = field.name().unwrap_or_default().to_string();
                small_text(field, parts.text_max).await.map_err(E::from).map(|text| {
                    form.texts.entry(name).or_insert(text);
                })
            }
            None => drain(field).await.map_err(E::from),
        };
        if let Err(e) = outcome {
            return Err(form.failed(e));
        }
    }
}

/// Peeks at the file part, lets `choose` decide, and stores or drains it.
async fn take_file<E: From<UploadError>>(
    form: &mut Form,
    field: Field<'_>,
    store: &Store,
    namespace: &str,
    choose: impl FnOnce(&FilePart<'_>) -> Result<Option<Destination>, E>,
) -> Result<(), E> {
    let file_name = field.file_name().map(str::to_string);
    let peeked = peek(field, SNIFF_BYTES).await?;
    let part = FilePart {
        file_name: file_name.as_deref(),
        head: &peeked.head,
        texts: &form.texts,
    };
    let destination = choose(&part)?;
    form.file = Some(file_name);
    match destination {
        Some(to) => form.stored = Some(peeked.store(store, namespace, &to.object, to.limit).await?),
        None => peeked.drain().await?,
    }
    Ok(())
}

impl Form {
    fn failed<E>(self, error: E) -> Failed<E> {
        Failed {
            error,
            stored: self.stored,
        }
    }
}

//! An S3-compatible bucket as the object store (aws-sdk-s3).

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation, timeout::TimeoutConfig,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use super::{ByteChunks, Keys, PutOutcome, StoreError};

/// How to reach the bucket. Credentials come from the default chain (environment,
/// web identity, instance role) unless given here.
#[derive(Clone, Debug)]
pub struct S3Settings {
    /// Endpoint URL; `None` means AWS itself.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    /// Path-style addressing (`endpoint/bucket/key`), which most self-hosted servers need.
    pub force_path_style: bool,
    /// Access key id and secret, when not taken from the default chain.
    pub credentials: Option<(String, String)>,
    /// How long a request may wait for the store's answer, counted from the attempt's start
    /// (plus time to send its body at `SLOWEST_UPLOAD_BYTES_PER_SECOND`); the SDK then
    /// tries again, three tries in all. A store that takes requests and never answers would
    /// otherwise hold a runner until its Job's deadline and the results log's writes for ever.
    pub stall_timeout: Duration,
}

impl S3Settings {
    pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: String::new(),
            bucket: String::new(),
            force_path_style: false,
            credentials: None,
            stall_timeout: Self::DEFAULT_STALL_TIMEOUT,
        }
    }
}

/// The slowest upload not taken for a stalled one: an attempt that sends n bytes may take
/// the stall timeout plus n at this rate before its answer is given up on. (The SDK's
/// stalled-stream protection does not watch a body sent from memory in one piece.)
const SLOWEST_UPLOAD_BYTES_PER_SECOND: u64 = 256 * 1024;
/// The slowest a store is expected to join the parts of a multipart upload.
const SLOWEST_ASSEMBLY_BYTES_PER_SECOND: u64 = 64 << 20;

#[derive(Clone, Debug)]
pub struct S3Store {
    client: Client,
    bucket: String,
    stall_timeout: Duration,
}

pub(super) fn backend<E, R>(op: &'static str, key: &str, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::Backend {
        op,
        key: key.into(),
        message: DisplayErrorContext(&e).to_string(),
    }
}

fn status_of<E, R>(e: &SdkError<E, R>) -> Option<u16>
where
    R: HttpStatus,
{
    e.raw_response().map(HttpStatus::status_code)
}

/// The HTTP status of a raw response, whatever its type.
trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

impl S3Store {
    pub async fn connect(settings: &S3Settings) -> Self {
        let mut loader =
            aws_config::defaults(aws_config::BehaviorVersion::latest()).region(Region::new(settings.region.clone()));
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some((id, secret)) = &settings.credentials {
            loader = loader.credentials_provider(Credentials::new(id, secret, None, None, "taskyard-settings"));
        }
        let sdk = loader.load().await;
        // Streaming bodies to servers other than AWS work only without the SDK's default
        // trailing checksums.
        let config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(settings.force_path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            // Until the answer's head: a request without a body gets the stall timeout (a GET
            // until its body starts; a body that then stops is the SDK's stalled-stream
            // protection's, 5 s). A timed-out attempt is retried, also when the store did the
            // work but answered late: a conditional PUT then finds its own object (412), and
            // a multipart completion no upload left to complete.
            .timeout_config(attempt_timeout(settings.stall_timeout, Duration::ZERO))
            .build();
        Self {
            client: Client::from_conf(config),
            bucket: settings.bucket.clone(),
            stall_timeout: settings.stall_timeout,
        }
    }

    /// The config of a request that sends `bytes`: its attempt may last as long as sending
    /// them slowly takes, plus the stall timeout.
    pub(super) fn sending(&self, bytes: u64) -> aws_sdk_s3::config::Builder {
        self.waiting_longer(bytes / SLOWEST_UPLOAD_BYTES_PER_SECOND)
    }

    /// The config of a multipart completion: the store joins `bytes` of parts it holds.
    pub(super) fn assembling(&self, bytes: u64) -> aws_sdk_s3::config::Builder {
        self.waiting_longer(bytes / SLOWEST_ASSEMBLY_BYTES_PER_SECOND)
    }

    fn waiting_longer(&self, seconds: u64) -> aws_sdk_s3::config::Builder {
        let timeouts = attempt_timeout(self.stall_timeout, Duration::from_secs(seconds));
        aws_sdk_s3::config::Builder::default().timeout_config(timeouts)
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(out.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(backend("head", key, e)),
        }
    }

    pub async fn open(&self, key: &str) -> Result<ByteChunks, StoreError> {
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if status_of(&e) == Some(404) => {
                return Err(StoreError::NotFound { key: key.into() });
            }
            Err(e) => return Err(backend("get", key, e)),
        };
        let key = key.to_string();
        let chunks = futures::stream::unfold(Some(out.body), move |body| {
            let key = key.clone();
            async move {
                let mut body: ByteStream = body?;
                match body.next().await {
                    None => None,
                    Some(Ok(chunk)) => Some((Ok(chunk), Some(body))),
                    Some(Err(e)) => Some((
                        Err(StoreError::Backend {
                            op: "read",
                            key,
                            message: DisplayErrorContext(&e).to_string(),
                        }),
                        None,
                    )),
                }
            }
        });
        Ok(Box::pin(chunks))
    }

    pub async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        let config = self.sending(body.len() as u64);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .customize()
            .config_override(config)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| backend("put", key, e))
    }

    /// Writes a stream of chunks as one object (see `s3_stream`).
    pub async fn put_stream<S, E>(&self, key: &str, chunks: S, limit: u64) -> Result<u64, StoreError>
    where
        S: futures::Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        super::s3_stream::put_stream(self, key, chunks, limit).await
    }

    pub async fn put_if_absent(&self, key: &str, body: Bytes, content_type: &str) -> Result<PutOutcome, StoreError> {
        // 409 means another conditional write to this key is in flight: try again, and the
        // outcome is decided by whichever write lands first.
        for attempt in 1..=5 {
            let sent = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                .if_none_match("*")
                .body(ByteStream::from(body.clone()))
                .customize()
                .config_override(self.sending(body.len() as u64))
                .send()
                .await;
            match sent {
                Ok(_) => return Ok(PutOutcome::Created),
                Err(e) if status_of(&e) == Some(412) => return Ok(PutOutcome::AlreadyExists),
                Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("PreconditionFailed") => {
                    return Ok(PutOutcome::AlreadyExists);
                }
                Err(e) if status_of(&e) == Some(409) && attempt < 5 => {
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => return Err(backend("conditional put", key, e)),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Asks first for the keys at the prefix's own level (delimiter `/`): a file-backed
    /// server then reads one folder, where a listing without a delimiter walks the whole
    /// bucket (s3s-fs: seconds with tens of thousands of objects). Only when the first match
    /// lies deeper does it list again without one.
    pub async fn first_with_prefix(&self, prefix: &str) -> Result<Option<String>, StoreError> {
        let list = |delimiter: Option<&str>| {
            self.client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_delimiter(delimiter.map(str::to_string))
                .max_keys(1)
                .send()
        };
        let level = list(Some("/")).await.map_err(|e| backend("list", prefix, e))?;
        if let Some(key) = level.contents().first().and_then(|o| o.key()) {
            return Ok(Some(key.to_string()));
        }
        if level.common_prefixes().is_empty() {
            return Ok(None);
        }
        let deeper = list(None).await.map_err(|e| backend("list", prefix, e))?;
        Ok(deeper.contents().first().and_then(|o| o.key().map(str::to_string)))
    }

    /// Lists page by page (ListObjectsV2, up to 1000 keys a page), fetching the next page
    /// only when the previous one has been consumed.
    pub fn list(&self, prefix: &str) -> Keys {
        use futures::{StreamExt, TryStreamExt};
        struct Page {
            token: Option<String>,
            done: bool,
        }
        let (client, bucket, prefix) = (self.client.clone(), self.bucket.clone(), prefix.to_string());
        let start = Page {
            token: None,
            done: false,
        };
        let pages = futures::stream::try_unfold(start, move |page| {
            let (client, bucket, prefix) = (client.clone(), bucket.clone(), prefix.clone());
            async move {
                if page.done {
                    return Ok(None);
                }
                let out = client
                    .list_objects_v2()
                    .bucket(&bucket)
                    .prefix(&prefix)
                    .set_continuation_token(page.token)
                    .send()
                    .await
                    .map_err(|e| backend("list", &prefix, e))?;
                let keys: Vec<String> = out
                    .contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string))
                    .collect();
                let token = out.next_continuation_token().map(str::to_string);
                // A truncated page without a token would list the first page forever.
                let done = !out.is_truncated().unwrap_or(false) || token.is_none();
                Ok(Some((keys, Page { token, done })))
            }
        });
        pages
            .map_ok(|keys| futures::stream::iter(keys.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.client.delete_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(backend("delete", key, e)),
        }
    }
}

fn attempt_timeout(stall: Duration, longer: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_attempt_timeout(stall + longer)
        .build()
}

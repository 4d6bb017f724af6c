//! HashTask: digests of a file at a URL or in the store, streamed (a directory store's file
//! read directly).

use futures::TryStreamExt;
use taskyard_api::{HashTaskSpec, SourceRef, TaskOutput, TaskSpecCommon};
use taskyard_common::store::StoreError;

use super::{Context, Done};
use crate::digest::{digest_file, digest_stream};
use crate::error::RunnerError;

const LIMIT_SETTING: &str = "the runner setting TASKYARD_MAX_HASH_BYTES (--max-hash-bytes)";

pub async fn run(ctx: &Context, spec: &HashTaskSpec) -> Result<Done, RunnerError> {
    let limit = ctx.args.max_hash_bytes;
    let too_large = |what: String| RunnerError::TooLarge {
        what,
        limit,
        setting: LIMIT_SETTING,
    };
    let output = match spec.source().map_err(RunnerError::InvalidSpec)? {
        SourceRef::Url(url) | SourceRef::Page(url) => {
            let what = format!("the file at {url}");
            let fetched = ctx.fetcher.get(url).await?;
            if fetched.content_length.is_some_and(|n| n > limit) {
                return Err(too_large(what));
            }
            digest_stream(fetched.chunks_unhurried(), &spec.algorithms, limit, &what).await?
        }
        SourceRef::Object(key) => {
            let what = format!("store object {key:?}");
            if ctx.store.size(key).await?.is_some_and(|n| n > limit) {
                return Err(too_large(what));
            }
            match ctx.store.local_path(key)? {
                Some(path) => {
                    let file = std::fs::File::open(&path).map_err(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => RunnerError::ObjectNotFound { key: key.to_string() },
                        _ => RunnerError::Store(StoreError::Backend {
                            op: "open",
                            key: key.to_string(),
                            message: e.to_string(),
                        }),
                    })?;
                    digest_file(file, key, &spec.algorithms, limit, &what).await?
                }
                None => {
                    let chunks = ctx.store.open(key).await?.map_err(RunnerError::from);
                    digest_stream(chunks, &spec.algorithms, limit, &what).await?
                }
            }
        }
    };
    let first = spec.algorithms.first().map(|a| a.as_str()).unwrap_or("md5");
    let message = format!(
        "{first} {}, {} bytes",
        output.digests.get(first).map(String::as_str).unwrap_or("-"),
        output.size
    );
    Ok((message, TaskOutput::Hash(output)))
}

//! Reading a whole (bounded) body into memory, for inputs that must be parsed whole.

use bytes::Bytes;
use futures::{Stream, TryStreamExt};

use crate::error::RunnerError;

/// Collects a stream, failing with `TooLarge` as soon as it passes `limit` bytes.
pub async fn collect_limited<S>(
    chunks: S,
    limit: u64,
    what: &str,
    setting: &'static str,
) -> Result<Vec<u8>, RunnerError>
where
    S: Stream<Item = Result<Bytes, RunnerError>> + Unpin,
{
    let mut chunks = chunks;
    let mut out = Vec::new();
    while let Some(chunk) = chunks.try_next().await? {
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(RunnerError::TooLarge {
                what: what.to_string(),
                limit,
                setting,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stops_past_the_limit() {
        let chunks = || futures::stream::iter(vec![Ok(Bytes::from_static(b"abc")), Ok(Bytes::from_static(b"de"))]);
        assert_eq!(collect_limited(chunks(), 5, "x", "S").await.unwrap(), b"abcde");
        let err = collect_limited(chunks(), 4, "the page", "S").await.unwrap_err();
        assert_eq!(err.reason().as_str(), "LimitExceeded");
    }
}

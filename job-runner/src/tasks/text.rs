//! TextTask: a page's (or stored document's) readable text, stored as UTF-8.

use bytes::Bytes;
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use taskyard_api::{
    SourceRef, TaskIdentity, TaskKind, TaskOutput, TaskSpecCommon, TextOutput, TextSummary, TextTaskSpec,
};
use taskyard_common::keys::{manifest_key, text_key};

use super::{Context, Done};
use crate::body::collect_limited;
use crate::error::RunnerError;
use crate::html::parse_bounded;
use crate::text::decode::{DocumentKind, decode, document_kind};
use crate::text::extract::{extract_document, plain_text};

const PAGE_LIMIT_SETTING: &str = "the runner setting TASKYARD_MAX_PAGE_BYTES (--max-page-bytes)";
const PREVIEW_CHARS: usize = 200;

pub async fn run(ctx: &Context, identity: &TaskIdentity, spec: &TextTaskSpec) -> Result<Done, RunnerError> {
    let limit = ctx.args.max_page_bytes;
    let what;
    let (bytes, content_type) = match spec.source().map_err(RunnerError::InvalidSpec)? {
        SourceRef::Page(url) | SourceRef::Url(url) => {
            what = format!("the page at {url}");
            let fetched = ctx.fetcher.get(url).await?;
            let content_type = fetched.content_type.clone();
            (
                collect_limited(fetched.chunks(), limit, &what, PAGE_LIMIT_SETTING).await?,
                content_type,
            )
        }
        SourceRef::Object(key) => {
            what = format!("store object {key:?}");
            let chunks = ctx.store.open(key).await?.map_err(RunnerError::from);
            (collect_limited(chunks, limit, &what, PAGE_LIMIT_SETTING).await?, None)
        }
    };
    let kind = document_kind(content_type.as_deref(), &bytes);
    let (decoded, _encoding) = decode(&bytes, content_type.as_deref(), kind);
    let extracted = match kind {
        DocumentKind::Html => {
            let doc = parse_bounded(&decoded, ctx.args.max_html_elements)
                .map_err(|e| super::image::too_many_elements(&what, e))?;
            extract_document(&doc)
        }
        DocumentKind::PlainText => plain_text(&decoded),
    };
    let text = extracted.text;
    let key = text_key(identity);
    ctx.store
        .put(
            &key,
            Bytes::from(text.clone().into_bytes()),
            "text/plain; charset=utf-8",
        )
        .await?;
    let summary = TextSummary {
        key,
        characters: text.chars().count() as u64,
        words: text.split_whitespace().count() as u64,
        lines: text.lines().count() as u64,
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
    };
    let message = format!("{} words, {} lines", summary.words, summary.lines);
    let preview = text.chars().take(PREVIEW_CHARS).collect();
    // Status carries a cut title (bounds.rs); the whole one is kept beside the result.
    let manifest = manifest_key(TaskKind::TextTask, identity);
    let body = serde_json::to_vec_pretty(&serde_json::json!({ "title": extracted.title, "text": summary.key }))
        .expect("a manifest serialises");
    ctx.store.put(&manifest, Bytes::from(body), "application/json").await?;
    Ok((
        message,
        TaskOutput::Text(TextOutput {
            text: summary,
            title: extracted.title,
            preview,
        }),
    ))
}

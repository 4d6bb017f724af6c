//! ImageTask: the images of a page (or one image), stored once per source URL and shared by
//! every task, optionally resized into shared variants.

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use taskyard_api::{
    ImageCounts, ImageItem, ImageOutput, ImageTaskSpec, ItemState, Resize, SourceRef, TaskIdentity, TaskKind,
    TaskOutput, TaskSpecCommon,
};
use taskyard_common::keys::{image_key, manifest_key, variant_key};
use taskyard_common::store::PutOutcome;
use tokio::sync::Semaphore;

use super::{Context, Done};
use crate::body::collect_limited;
use crate::error::RunnerError;
use crate::images::collect::collect_images;
use crate::images::format::{check_complete, content_type, extension, from_extension, sniff};
use crate::images::resize::{dimensions, output_format, process as process_image, upright_dimensions};
use crate::text::decode::{DocumentKind, decode};

const PAGE_LIMIT_SETTING: &str = "the runner setting TASKYARD_MAX_PAGE_BYTES (--max-page-bytes)";
const IMAGE_LIMIT_SETTING: &str = "the runner setting TASKYARD_MAX_IMAGE_BYTES (--max-image-bytes)";
/// Items kept in status; the manifest has them all.
const STATUS_ITEMS: usize = 50;
/// How much of a stored image is read for its geometry: headers, EXIF and colour profiles
/// come first and are rarely larger.
const HEADER_BYTES: usize = 256 << 10;

/// Where one image comes from.
enum Input {
    Remote(String),
    Stored(String),
}

impl Input {
    fn source(&self) -> &str {
        match self {
            Input::Remote(s) | Input::Stored(s) => s,
        }
    }
}

pub async fn run(ctx: &Context, identity: &TaskIdentity, spec: &ImageTaskSpec) -> Result<Done, RunnerError> {
    let (inputs, skipped, truncated) = match spec.source().map_err(RunnerError::InvalidSpec)? {
        SourceRef::Page(url) => {
            let what = format!("the page at {url}");
            let fetched = ctx.fetcher.get(url).await?;
            let page_url = fetched.url.clone();
            let content_type = fetched.content_type.clone();
            let bytes = collect_limited(fetched.chunks(), ctx.args.max_page_bytes, &what, PAGE_LIMIT_SETTING).await?;
            let (html, _) = decode(&bytes, content_type.as_deref(), DocumentKind::Html);
            let found = collect_images(&html, &page_url, spec.max_images as usize);
            (
                found.urls.into_iter().map(Input::Remote).collect(),
                found.skipped,
                found.truncated,
            )
        }
        SourceRef::Url(url) => (vec![Input::Remote(url.to_string())], Vec::new(), 0),
        SourceRef::Object(key) => (vec![Input::Stored(key.to_string())], Vec::new(), 0),
    };

    // Decoding is memory- and CPU-heavy: at most one per core at a time.
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let decoding = Arc::new(Semaphore::new(cores));
    let mut items: Vec<(usize, ImageItem)> = futures::stream::iter(inputs.into_iter().enumerate())
        .map(|(i, input)| {
            let decoding = decoding.clone();
            async move {
                let item = match process(ctx, &input, spec.resize.as_ref(), &decoding).await {
                    Ok(item) => item,
                    Err(error) => failed_item(input.source(), error),
                };
                (i, item)
            }
        })
        .buffer_unordered(ctx.args.image_concurrency as usize)
        .collect()
        .await;
    items.sort_by_key(|(i, _)| *i);
    let mut items: Vec<ImageItem> = items.into_iter().map(|(_, item)| item).collect();
    let count = |state| items.iter().filter(|i| i.state == state).count() as u32;
    let counts = ImageCounts {
        found: items.len() as u32,
        stored: count(ItemState::Stored),
        reused: count(ItemState::Reused),
        failed: count(ItemState::Failed),
        skipped: skipped.len() as u32,
        truncated,
    };
    items.extend(skipped.into_iter().map(|s| ImageItem {
        error: Some("data: URIs are not fetched".into()),
        ..bare_item(s, ItemState::Skipped)
    }));

    let manifest = manifest_key(TaskKind::ImageTask, identity);
    let body =
        serde_json::to_vec_pretty(&serde_json::json!({ "counts": counts, "items": items })).expect("items serialise");
    ctx.store.put(&manifest, Bytes::from(body), "application/json").await?;

    if counts.found > 0 && counts.stored + counts.reused == 0 {
        let first = items.iter().find_map(|i| i.error.clone()).unwrap_or_default();
        return Err(RunnerError::AllImagesFailed {
            count: counts.found,
            first,
        });
    }
    let mut message = format!(
        "{} images: {} stored, {} reused",
        counts.found, counts.stored, counts.reused
    );
    if counts.failed > 0 {
        message.push_str(&format!(", {} failed", counts.failed));
    }
    if counts.skipped > 0 {
        message.push_str(&format!(", {} skipped", counts.skipped));
    }
    if truncated > 0 {
        message.push_str(&format!(
            "; {truncated} more not collected (maxImages {})",
            spec.max_images
        ));
    }
    items.truncate(STATUS_ITEMS);
    Ok((
        message,
        TaskOutput::Image(ImageOutput {
            counts,
            items,
            manifest,
        }),
    ))
}

fn bare_item(source: String, state: ItemState) -> ImageItem {
    ImageItem {
        source,
        state,
        key: None,
        original_key: None,
        width: None,
        height: None,
        bytes: None,
        content_type: None,
        error: None,
    }
}

fn failed_item(source: &str, error: String) -> ImageItem {
    ImageItem {
        error: Some(error),
        ..bare_item(source.to_string(), ItemState::Failed)
    }
}

/// One image: reuse what the store has, otherwise fetch, check, store (and resize).
async fn process(
    ctx: &Context,
    input: &Input,
    resize_to: Option<&Resize>,
    decoding: &Semaphore,
) -> Result<ImageItem, String> {
    let source = input.source();
    let store_err = |e: taskyard_common::store::StoreError| e.to_string();
    // An original already in the store (any extension): its key.
    let existing_original = match input {
        Input::Remote(url) => ctx
            .store
            .first_with_prefix(&image_key(url, ""))
            .await
            .map_err(store_err)?,
        Input::Stored(key) => Some(key.clone()),
    };
    if let (Some(original), None) = (&existing_original, resize_to)
        && matches!(input, Input::Remote(_))
    {
        return reused(ctx, source, original, None).await;
    }
    if let (Some(original), Some(r)) = (&existing_original, resize_to) {
        let format = from_extension(original).ok_or("the stored original has an unknown extension")?;
        let variant = variant_key(
            source,
            r.width,
            r.height,
            fit_name(r),
            extension(output_format(r, format)),
        );
        if ctx.store.size(&variant).await.map_err(store_err)?.is_some() {
            return reused(ctx, source, &variant, Some(original.clone())).await;
        }
    }

    let bytes = match (input, &existing_original) {
        (_, Some(key)) => {
            let chunks = ctx.store.open(key).await.map_err(store_err)?.map_err(RunnerError::from);
            collect_limited(
                chunks,
                ctx.args.max_image_bytes,
                &format!("store object {key:?}"),
                IMAGE_LIMIT_SETTING,
            )
            .await
            .map_err(|e| e.to_string())?
        }
        (Input::Remote(url), None) => {
            let fetched = ctx.fetcher.get(url).await.map_err(|e| e.to_string())?;
            let what = format!("the image at {url}");
            if fetched.content_length.is_some_and(|n| n > ctx.args.max_image_bytes) {
                return Err(RunnerError::TooLarge {
                    what,
                    limit: ctx.args.max_image_bytes,
                    setting: IMAGE_LIMIT_SETTING,
                }
                .to_string());
            }
            collect_limited(fetched.chunks(), ctx.args.max_image_bytes, &what, IMAGE_LIMIT_SETTING)
                .await
                .map_err(|e| e.to_string())?
        }
        (Input::Stored(_), None) => unreachable!("a stored input is its own original"),
    };
    let format = sniff(&bytes).ok_or("not an image: the content is not JPEG, PNG, GIF or WebP")?;
    check_complete(&bytes, format)?;
    let (w, h) = dimensions(&bytes, format)?;
    if w as u64 * h as u64 > ctx.args.max_image_pixels {
        return Err(format!(
            "the image is {w}x{h} = {} pixels, more than the {}-pixel limit; raise it with the runner setting TASKYARD_MAX_IMAGE_PIXELS (--max-image-pixels) if this input is expected",
            w as u64 * h as u64,
            ctx.args.max_image_pixels
        ));
    }
    let bytes = Bytes::from(bytes);
    // Decoding checks the whole image (a truncated file fails here) and applies orientation.
    let permit = decoding.acquire().await.expect("the semaphore is never closed");
    let work_bytes = bytes.clone();
    let resize_spec = resize_to.cloned();
    let processed = tokio::task::spawn_blocking(move || process_image(&work_bytes, format, resize_spec.as_ref()))
        .await
        .map_err(|e| format!("image processing failed: {e}"))??;
    drop(permit);

    let (original_key, original_state) = match input {
        Input::Stored(key) => (key.clone(), ItemState::Reused),
        Input::Remote(url) => {
            let key = image_key(url, extension(format));
            match ctx
                .store
                .put_if_absent(&key, bytes.clone(), content_type(format))
                .await
                .map_err(store_err)?
            {
                PutOutcome::Created => (key, ItemState::Stored),
                PutOutcome::AlreadyExists => (key, ItemState::Reused),
            }
        }
    };
    let Some(variant) = processed.variant else {
        return Ok(ImageItem {
            key: Some(original_key),
            width: Some(processed.width),
            height: Some(processed.height),
            bytes: Some(bytes.len() as u64),
            content_type: Some(content_type(format).into()),
            ..bare_item(source.to_string(), original_state)
        });
    };
    let r = resize_to.expect("a variant means a resize");
    let key = variant_key(source, r.width, r.height, fit_name(r), extension(variant.format));
    let len = variant.bytes.len() as u64;
    let state = match ctx
        .store
        .put_if_absent(&key, Bytes::from(variant.bytes), content_type(variant.format))
        .await
        .map_err(store_err)?
    {
        PutOutcome::Created => ItemState::Stored,
        PutOutcome::AlreadyExists => original_state,
    };
    Ok(ImageItem {
        key: Some(key),
        original_key: Some(original_key),
        width: Some(variant.width),
        height: Some(variant.height),
        bytes: Some(len),
        content_type: Some(content_type(variant.format).into()),
        ..bare_item(source.to_string(), state)
    })
}

/// An item for an object another task already stored: nothing is downloaded from the web,
/// and only the object's first bytes are read from the store, for its geometry.
async fn reused(ctx: &Context, source: &str, key: &str, original_key: Option<String>) -> Result<ImageItem, String> {
    let store_err = |e: taskyard_common::store::StoreError| e.to_string();
    let bytes = ctx.store.size(key).await.map_err(store_err)?;
    let format = from_extension(key);
    let head = ctx.store.head_bytes(key, HEADER_BYTES).await.map_err(store_err)?;
    // An image whose header and metadata do not fit in HEADER_BYTES keeps its size unstated.
    let geometry = head.zip(format).and_then(|(head, f)| upright_dimensions(&head, f).ok());
    Ok(ImageItem {
        key: Some(key.to_string()),
        original_key,
        width: geometry.map(|(w, _)| w),
        height: geometry.map(|(_, h)| h),
        bytes,
        content_type: format.map(|f| content_type(f).to_string()),
        ..bare_item(source.to_string(), ItemState::Reused)
    })
}

fn fit_name(r: &Resize) -> &'static str {
    match r.fit {
        taskyard_api::Fit::Contain => "contain",
        taskyard_api::Fit::Fill => "fill",
        taskyard_api::Fit::Cover => "cover",
    }
}

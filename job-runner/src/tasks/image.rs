//! ImageTask: the images of a page (or one image), stored once per source URL and shared by
//! every task, optionally resized into shared variants.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use taskyard_api::{
    ImageCounts, ImageItem, ImageOutput, ImageTaskSpec, ItemState, Resize, SourceRef, TaskIdentity, TaskKind,
    TaskOutput, TaskSpecCommon,
};
use taskyard_common::keys::{ImageScope, VariantSpec, image_key, manifest_key, variant_key};
use taskyard_common::store::PutOutcome;

use super::{Context, Done};
use crate::body::collect_limited;
use crate::bounds::STATUS_ITEMS;
use crate::budget::Reservation;
use crate::error::RunnerError;
use crate::html::{ElementBudgetExceeded, parse_bounded};
use crate::images::collect::collect_from;
use crate::images::cpu::CpuSlots;
use crate::images::decode::{orientation, work_bytes};
use crate::images::format::{check_complete, content_type, extension, from_extension, sniff};
use crate::images::frames::{Geometry, geometry};
use crate::images::resize::{output_format, process as process_image, swaps_axes, target_size, upright_dimensions};
use crate::text::decode::{DocumentKind, decode};

const PAGE_LIMIT_SETTING: &str = "the runner setting TASKYARD_MAX_PAGE_BYTES (--max-page-bytes)";
const IMAGE_LIMIT_SETTING: &str = "the runner setting TASKYARD_MAX_IMAGE_BYTES (--max-image-bytes)";
const PIXELS_SETTING: &str = "the runner setting TASKYARD_MAX_IMAGE_PIXELS (--max-image-pixels)";
const OUTPUT_PIXELS_SETTING: &str = "the runner setting TASKYARD_MAX_OUTPUT_PIXELS (--max-output-pixels)";
const WORK_SETTING: &str =
    "the runner setting TASKYARD_IMAGE_WORK_BYTES (--image-work-bytes), with the runner Pod's memory limit";
pub(crate) const ELEMENTS_SETTING: &str = "the runner setting TASKYARD_MAX_HTML_ELEMENTS (--max-html-elements)";
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

/// The failure of a page whose parse passed the element budget or the nesting cap.
pub(crate) fn too_many_elements(what: &str, e: ElementBudgetExceeded) -> RunnerError {
    match e {
        ElementBudgetExceeded::Elements { limit } => RunnerError::Limit {
            what: format!(
                "{what} builds more than {limit} HTML elements when parsed (unclosed tags are re-opened in every block)"
            ),
            limit: format!("{limit}-element"),
            setting: ELEMENTS_SETTING,
        },
        ElementBudgetExceeded::Depth { limit } => RunnerError::TooDeep {
            what: what.to_string(),
            limit,
        },
    }
}

/// A `fill` or `cover` resize writes exactly width x height, whatever the image: past the
/// output limit every image would fail, so the task does, before fetching anything.
fn check_output_box(ctx: &Context, r: &Resize) -> Result<(), RunnerError> {
    let pixels = r.width as u64 * r.height as u64;
    if r.fit != taskyard_api::Fit::Contain && pixels > ctx.args.max_output_pixels {
        return Err(output_limit(ctx, r.width, r.height));
    }
    Ok(())
}

fn output_limit(ctx: &Context, w: u32, h: u32) -> RunnerError {
    RunnerError::Limit {
        what: format!("the resized image would be {w}x{h} = {} pixels", w as u64 * h as u64),
        limit: format!("{}-pixel output", ctx.args.max_output_pixels),
        setting: OUTPUT_PIXELS_SETTING,
    }
}

pub async fn run(ctx: &Context, identity: &TaskIdentity, spec: &ImageTaskSpec) -> Result<Done, RunnerError> {
    if let Some(r) = &spec.resize {
        check_output_box(ctx, r)?;
    }
    let (inputs, skipped, truncated) = match spec.source().map_err(RunnerError::InvalidSpec)? {
        SourceRef::Page(url) => {
            let what = format!("the page at {url}");
            let fetched = ctx.fetcher.get(url).await?;
            let page_url = fetched.url.clone();
            let content_type = fetched.content_type.clone();
            let bytes = collect_limited(fetched.chunks(), ctx.args.max_page_bytes, &what, PAGE_LIMIT_SETTING).await?;
            let (html, _) = decode(&bytes, content_type.as_deref(), DocumentKind::Html);
            drop(bytes);
            let doc = parse_bounded(&html, ctx.args.max_html_elements).map_err(|e| too_many_elements(&what, e))?;
            drop(html);
            let found = collect_from(&doc, &page_url, spec.max_images as usize);
            (
                found.urls.into_iter().map(Input::Remote).collect(),
                found.skipped,
                found.truncated,
            )
        }
        SourceRef::Url(url) => (vec![Input::Remote(url.to_string())], Vec::new(), 0),
        SourceRef::Object(key) => (vec![Input::Stored(key.to_string())], Vec::new(), 0),
    };

    let scope = ctx.args.image_scope(&identity.namespace);
    // Decoding is memory- and CPU-heavy: at most one per core at a time.
    let decoding = CpuSlots::per_core();
    let mut items: Vec<(usize, ImageItem, bool)> = futures::stream::iter(inputs.into_iter().enumerate())
        .map(|(i, input)| {
            let decoding = &decoding;
            async move {
                match process(ctx, scope, &input, spec.resize.as_ref(), decoding).await {
                    Ok(item) => (i, item, false),
                    Err(e) => (i, failed_item(input.source(), &e), e.is_permanent()),
                }
            }
        })
        .buffer_unordered(ctx.args.image_concurrency as usize)
        .collect()
        .await;
    items.sort_by_key(|(i, ..)| *i);
    let all_permanent = items
        .iter()
        .all(|(_, item, permanent)| item.state != ItemState::Failed || *permanent);
    let mut items: Vec<ImageItem> = items.into_iter().map(|(_, item, _)| item).collect();
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
            permanent: all_permanent,
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

/// A failed item; its error starts with the failure's reason (`NotAnImage: ...`).
fn failed_item(source: &str, error: &RunnerError) -> ImageItem {
    ImageItem {
        error: Some(format!("{}: {error}", error.reason())),
        ..bare_item(source.to_string(), ItemState::Failed)
    }
}

/// One image: reuse what the store has, otherwise fetch, check, store (and resize).
async fn process(
    ctx: &Context,
    scope: ImageScope<'_>,
    input: &Input,
    resize_to: Option<&Resize>,
    decoding: &CpuSlots,
) -> Result<ImageItem, RunnerError> {
    let source = input.source();
    // An original already in the store (any extension): its key.
    let existing_original = match input {
        Input::Remote(url) => ctx.store.first_with_prefix(&image_key(scope, url, "")).await?,
        Input::Stored(key) => Some(key.clone()),
    };
    if let (Some(original), None) = (&existing_original, resize_to)
        && matches!(input, Input::Remote(_))
    {
        return reused(ctx, source, original, None).await;
    }
    // Held until the item is done: the bytes stay in memory while they are processed. A stored
    // original is read from the store, never fetched again.
    let (bytes, _held) = fetch_bytes(ctx, input, existing_original.as_deref()).await?;
    // A variant is keyed by the content it came from: a changed original is processed again.
    let content = hex::encode(Sha256::digest(&bytes));
    if let (Some(original), Some(r)) = (&existing_original, resize_to) {
        // An uploaded object may be named without an extension: its bytes tell its type.
        let format = from_extension(original).or_else(|| sniff(&bytes)).ok_or_else(|| {
            RunnerError::NotAnImage(format!(
                "{original} is not JPEG, PNG, GIF or WebP (judged from its name and its bytes); point the task at an image"
            ))
        })?;
        let variant = variant_key(scope, source, &content, variant_spec(r, output_format(r, format)));
        if ctx.store.size(&variant).await?.is_some() {
            return reused(ctx, source, &variant, Some(original.clone())).await;
        }
    }
    let format = sniff(&bytes).ok_or_else(|| {
        RunnerError::NotAnImage(format!(
            "{source} is not JPEG, PNG, GIF or WebP (judged from its bytes, not its name or Content-Type); point the task at an image"
        ))
    })?;
    check_complete(&bytes, format).map_err(RunnerError::InvalidImage)?;
    let g = geometry(&bytes, format).map_err(RunnerError::InvalidImage)?;
    check_pixels(ctx, &g, resize_to, &bytes, format)?;
    let bytes = Bytes::from(bytes);

    // Decoding checks the whole image (a truncated file fails here) and applies orientation.
    let cpu = decoding.acquire().await;
    let o = orientation(&bytes, format);
    let rotates = !matches!(
        o,
        image::metadata::Orientation::NoTransforms
            | image::metadata::Orientation::FlipHorizontal
            | image::metadata::Orientation::FlipVertical
    );
    let need = work_bytes(&g, format, resize_to, rotates);
    if need > ctx.args.image_work_bytes {
        return Err(RunnerError::Limit {
            what: format!(
                "processing the {}x{} {format:?} image {source} needs about {} MiB",
                g.largest.0,
                g.largest.1,
                need >> 20
            ),
            limit: format!("{} MiB image working memory", ctx.args.image_work_bytes >> 20),
            setting: WORK_SETTING,
        });
    }
    let memory = ctx.work.reserve(need).await;
    let work_bytes = bytes.clone();
    let resize_spec = resize_to.cloned();
    let processed = cpu
        .run(move || process_image(&work_bytes, format, resize_spec.as_ref()))
        .await
        .map_err(RunnerError::InvalidImage)?
        .map_err(RunnerError::InvalidImage)?;
    drop(memory);

    let (original_key, original_state) = match input {
        Input::Stored(key) => (key.clone(), ItemState::Reused),
        Input::Remote(url) => {
            let key = image_key(scope, url, extension(format));
            match ctx
                .store
                .put_if_absent(&key, bytes.clone(), content_type(format))
                .await?
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
    let key = variant_key(scope, source, &content, variant_spec(r, variant.format));
    let len = variant.bytes.len() as u64;
    let state = match ctx
        .store
        .put_if_absent(&key, Bytes::from(variant.bytes), content_type(variant.format))
        .await?
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

/// The decoded-pixel limit over the largest frame, and the output limit over the size a
/// `contain` resize gives this image.
fn check_pixels(
    ctx: &Context,
    g: &Geometry,
    resize_to: Option<&Resize>,
    bytes: &[u8],
    format: image::ImageFormat,
) -> Result<(), RunnerError> {
    if g.largest_pixels > ctx.args.max_image_pixels {
        let frame = if g.largest == (g.width, g.height) {
            "image"
        } else {
            "image has a frame that"
        };
        return Err(RunnerError::Limit {
            what: format!(
                "the {frame} is {}x{} = {} pixels decoded",
                g.largest.0, g.largest.1, g.largest_pixels
            ),
            limit: format!("{}-pixel", ctx.args.max_image_pixels),
            setting: PIXELS_SETTING,
        });
    }
    if let Some(r) = resize_to {
        let upright = if swaps_axes(orientation(bytes, format)) {
            (g.height, g.width)
        } else {
            (g.width, g.height)
        };
        let (w, h) = target_size(upright, r.fit, r.width, r.height);
        if w as u64 * h as u64 > ctx.args.max_output_pixels {
            return Err(output_limit(ctx, w, h));
        }
    }
    Ok(())
}

/// An image's bytes, from the store or the web, with room reserved for them in the download
/// budget: by Content-Length (or the stored size) when known, else the image size limit.
async fn fetch_bytes(
    ctx: &Context,
    input: &Input,
    stored: Option<&str>,
) -> Result<(Vec<u8>, Reservation), RunnerError> {
    let limit = ctx.args.max_image_bytes;
    let too_large = |what: String| RunnerError::TooLarge {
        what,
        limit,
        setting: IMAGE_LIMIT_SETTING,
    };
    match (input, stored) {
        (_, Some(key)) => {
            let what = format!("store object {key:?}");
            let size = ctx.store.size(key).await?;
            if size.is_some_and(|n| n > limit) {
                return Err(too_large(what));
            }
            let mut held = ctx.downloads.reserve(size.unwrap_or(limit)).await;
            let chunks = ctx.store.open(key).await?.map_err(RunnerError::from);
            let bytes = collect_limited(chunks, limit, &what, IMAGE_LIMIT_SETTING).await?;
            held.shrink_to(bytes.len() as u64);
            Ok((bytes, held))
        }
        (Input::Remote(url), None) => {
            let fetched = ctx.fetcher.get(url).await?;
            let what = format!("the image at {url}");
            if fetched.content_length.is_some_and(|n| n > limit) {
                return Err(too_large(what));
            }
            let mut held = ctx.downloads.reserve(fetched.content_length.unwrap_or(limit)).await;
            let bytes = collect_limited(fetched.chunks(), limit, &what, IMAGE_LIMIT_SETTING).await?;
            held.shrink_to(bytes.len() as u64);
            Ok((bytes, held))
        }
        (Input::Stored(_), None) => unreachable!("a stored input is its own original"),
    }
}

/// An item for an object another task already stored: nothing is downloaded from the web,
/// and only the object's first bytes are read from the store, for its geometry.
async fn reused(
    ctx: &Context,
    source: &str,
    key: &str,
    original_key: Option<String>,
) -> Result<ImageItem, RunnerError> {
    let bytes = ctx.store.size(key).await?;
    let format = from_extension(key);
    let head = ctx.store.head_bytes(key, HEADER_BYTES).await?;
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

/// Every output parameter of a resize, for the variant's key.
fn variant_spec(r: &Resize, format: image::ImageFormat) -> VariantSpec<'static> {
    VariantSpec {
        width: r.width,
        height: r.height,
        fit: fit_name(r),
        ext: extension(format),
        quality: r.quality,
    }
}

fn fit_name(r: &Resize) -> &'static str {
    match r.fit {
        taskyard_api::Fit::Contain => "contain",
        taskyard_api::Fit::Fill => "fill",
        taskyard_api::Fit::Cover => "cover",
    }
}

#[cfg(test)]
mod tests {
    use taskyard_api::{Outcome, RunnerTask, TaskIdentity, TaskSpec};
    use taskyard_common::store::{DirStore, Store};

    use crate::settings::RunnerArgs;
    use crate::tasks::{Context, run_task};

    #[tokio::test]
    async fn resizes_an_uploaded_object_named_without_an_extension() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Dir(DirStore::new(dir.path()));
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(30, 20, image::Rgb([9, 99, 199])));
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        store
            .put(
                "uploads/default/photo",
                png.into_inner().into(),
                "application/octet-stream",
            )
            .await
            .unwrap();
        let spec = serde_json::from_value(serde_json::json!({
            "kind": "ImageTask",
            "spec": {"source": {"object": "photo"}, "resize": {"width": 10, "height": 10, "fit": "fill", "format": "jpeg"}},
        }))
        .unwrap();
        let TaskSpec::ImageTask(_) = &spec else {
            panic!("an ImageTask")
        };
        let task = RunnerTask {
            identity: TaskIdentity {
                namespace: "default".into(),
                name: "t".into(),
                uid: "u".into(),
                generation: 1,
            },
            spec,
        };
        let ctx = Context::new(store, RunnerArgs::default()).unwrap();
        let result = run_task(&ctx, &task).await.result;
        assert_eq!(result.outcome, Outcome::Succeeded, "{}", result.message);
    }
}

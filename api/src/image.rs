//! `ImageTask`: the images of a web page (or one image), optionally resized, stored.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{default_retries, default_timeout_seconds, exactly_one};
use crate::{CommonStatus, SourceRef, TaskKind, TaskSpecCommon};

/// Collects every image of a web page (img src, the largest srcset candidate, picture
/// sources), or one image, optionally resizes them, and stores them. Originals are shared by
/// all tasks, keyed by source URL, so an image already stored is not downloaded again.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "taskyard.dev",
    version = "v1alpha1",
    kind = "ImageTask",
    doc = "An ImageTask collects the images of a web page, or one image, optionally resizes them, and stores them in the object store.",
    plural = "imagetasks",
    shortname = "imgtask",
    category = "taskyard",
    namespaced,
    status = "ImageTaskStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Found","type":"integer","jsonPath":".status.images.found"}"#,
    printcolumn = r#"{"name":"Stored","type":"integer","jsonPath":".status.images.stored"}"#,
    printcolumn = r#"{"name":"Failed","type":"integer","jsonPath":".status.images.failed"}"#,
    printcolumn = r#"{"name":"Queue","type":"integer","jsonPath":".status.queuePosition","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ImageTaskSpec {
    /// The images to collect: set exactly one of `page`, `url` or `object`.
    pub source: ImageSource,
    /// Resize every image to these bounds. Without it, images are stored as fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<Resize>,
    /// At most this many images are collected from a page; the status says when a page had more.
    #[serde(default = "default_max_images")]
    #[schemars(range(min = 1, max = 5000))]
    pub max_images: u32,
    /// How many times a failed runner Pod is retried (the runner Job's backoffLimit).
    #[serde(default = "default_retries")]
    #[schemars(range(min = 0, max = 10))]
    pub retries: i32,
    /// How long the task may run before it fails with reason TimedOut (the runner Job's
    /// activeDeadlineSeconds).
    #[serde(default = "default_timeout_seconds")]
    #[schemars(range(min = 1, max = 86400))]
    pub timeout_seconds: i64,
}

fn default_max_images() -> u32 {
    500
}

/// Where the images come from: exactly one member.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("oneOf" = [{"required": ["page"]}, {"required": ["url"]}, {"required": ["object"]}]))]
pub struct ImageSource {
    /// An http or https URL of a web page: every image on it is collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 8, max = 2048), extend("pattern" = "^[hH][tT][tT][pP][sS]?://"))]
    pub page: Option<String>,
    /// An http or https URL of exactly one image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 8, max = 2048), extend("pattern" = "^[hH][tT][tT][pP][sS]?://"))]
    pub url: Option<String>,
    /// A path inside the namespace's upload area of the bucket, holding one image: cat.png reads
    /// the object uploads/<namespace>/cat.png. Nothing outside the area can be named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), extend("pattern" = "^[^/]"))]
    pub object: Option<String>,
}

/// How images are resized.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resize {
    /// Target width in pixels.
    #[schemars(range(min = 1, max = 10000))]
    pub width: u32,
    /// Target height in pixels.
    #[schemars(range(min = 1, max = 10000))]
    pub height: u32,
    /// contain: fits inside width x height, aspect kept (default). fill: exactly width x
    /// height, aspect ignored. cover: fills width x height, centre crop.
    #[serde(default)]
    pub fit: Fit,
    /// Output format: jpeg, png, webp, or original (the input's format; default).
    #[serde(default)]
    pub format: OutputFormat,
    /// Encoder quality for jpeg and webp, 1 to 100.
    #[serde(default = "default_quality")]
    #[schemars(range(min = 1, max = 100))]
    pub quality: u8,
}

fn default_quality() -> u8 {
    85
}

/// How an image is fitted to the target size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    #[default]
    Contain,
    Fill,
    Cover,
}

/// The format resized images are written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Original,
    Jpeg,
    Png,
    Webp,
}

/// Image counts of a task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageCounts {
    /// Distinct image references found (after the maxImages cap).
    pub found: u32,
    /// Images this task wrote to the store.
    pub stored: u32,
    /// Images already in the store, written by an earlier task.
    pub reused: u32,
    /// Images that could not be fetched or processed.
    pub failed: u32,
    /// References skipped, such as data: URIs.
    pub skipped: u32,
    /// References past maxImages that were not collected.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub truncated: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What happened to one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ItemState {
    Stored,
    Reused,
    Failed,
    Skipped,
}

/// One collected image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageItem {
    /// The image's absolute URL (or store key).
    pub source: String,
    pub state: ItemState,
    /// The store key of the output (the resized variant when resizing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The store key of the shared original, when resizing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Why the image failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What an ImageTask collected.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageTaskStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Image counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<ImageCounts>,
    /// The first 50 items; the full list is in the manifest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ImageItem>,
    /// The store key of the full item list (manifest.json).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

impl TaskSpecCommon for ImageTaskSpec {
    const KIND: TaskKind = TaskKind::ImageTask;

    fn source(&self) -> Result<SourceRef<'_>, String> {
        exactly_one(&[
            ("page", self.source.page.as_deref().map(SourceRef::Page)),
            ("url", self.source.url.as_deref().map(SourceRef::Url)),
            ("object", self.source.object.as_deref().map(SourceRef::Object)),
        ])
    }

    fn retries(&self) -> i32 {
        self.retries
    }

    fn timeout_seconds(&self) -> i64 {
        self.timeout_seconds
    }
}

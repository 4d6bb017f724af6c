//! `TextTask`: the readable text of a web page or an HTML/text object.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{default_retries, default_timeout_seconds, exactly_one};
use crate::{CommonStatus, SourceRef, TaskKind, TaskSpecCommon};

/// Extracts a page's readable text (scripts, styles, noscript and templates dropped, block
/// elements on their own lines, whitespace collapsed, decoded to UTF-8) and stores it.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "taskyard.dev",
    version = "v1alpha1",
    kind = "TextTask",
    doc = "A TextTask extracts the readable text of a web page or an HTML/text object and stores it in the object store.",
    plural = "texttasks",
    shortname = "txttask",
    category = "taskyard",
    namespaced,
    status = "TextTaskStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Words","type":"integer","jsonPath":".status.text.words"}"#,
    printcolumn = r#"{"name":"Queue","type":"integer","jsonPath":".status.queuePosition","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TextTaskSpec {
    /// The document to read: set exactly one of `page` or `object`.
    pub source: TextSource,
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

/// Where the document comes from: exactly one member.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("oneOf" = [{"required": ["page"]}, {"required": ["object"]}]))]
pub struct TextSource {
    /// An http or https URL of an HTML page or a text/plain file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 8, max = 2048), extend("pattern" = "^[hH][tT][tT][pP][sS]?://"))]
    pub page: Option<String>,
    /// A path inside the namespace's upload area of the bucket, holding HTML or text: page.html
    /// reads the object uploads/<namespace>/page.html. Nothing outside the area can be named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), extend("pattern" = "^[^/]"))]
    pub object: Option<String>,
}

/// The stored text and its measures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TextSummary {
    /// The store key of the extracted text (texts/<namespace>/<name>/<uid>/<generation>.txt).
    pub key: String,
    /// Unicode characters in the text.
    pub characters: u64,
    /// Whitespace-separated words in the text.
    pub words: u64,
    /// Lines in the text.
    pub lines: u64,
    /// Lower-case hex SHA-256 of the stored UTF-8 text.
    pub sha256: String,
}

/// What a TextTask extracted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TextTaskStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The stored text and its measures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextSummary>,
    /// The document's title, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The first 200 characters of the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

impl TaskSpecCommon for TextTaskSpec {
    const KIND: TaskKind = TaskKind::TextTask;

    fn source(&self) -> Result<SourceRef<'_>, String> {
        exactly_one(&[
            ("page", self.source.page.as_deref().map(SourceRef::Page)),
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

//! `HashTask`: digests of a file at a URL or in the object store.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{default_retries, default_timeout_seconds, exactly_one};
use crate::{CommonStatus, SourceRef, TaskKind, TaskSpecCommon};

/// Computes digests (MD5 by default) of one file, streamed, and records one line per
/// finished generation in the shared results log, the segments under `logs/hashtasks/<date>/`.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "taskyard.dev",
    version = "v1alpha1",
    kind = "HashTask",
    doc = "A HashTask computes digests (MD5 by default) of one file at a URL or in the object store, and records one line per finished generation in the shared results log.",
    plural = "hashtasks",
    shortname = "hashtask",
    category = "taskyard",
    namespaced,
    status = "HashTaskStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"MD5","type":"string","jsonPath":".status.digests.md5"}"#,
    printcolumn = r#"{"name":"Size","type":"integer","jsonPath":".status.size"}"#,
    printcolumn = r#"{"name":"Queue","type":"integer","jsonPath":".status.queuePosition","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct HashTaskSpec {
    /// The file to hash: set exactly one of `url` or `object`.
    pub source: HashSource,
    /// Digests to compute, in one pass over the file. Any of md5, sha1, sha256, sha512.
    #[serde(default = "default_algorithms")]
    #[schemars(length(min = 1, max = 4))]
    pub algorithms: Vec<HashAlgorithm>,
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

fn default_algorithms() -> Vec<HashAlgorithm> {
    vec![HashAlgorithm::Md5]
}

/// Where the file to hash comes from: exactly one member.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("oneOf" = [{"required": ["url"]}, {"required": ["object"]}]))]
pub struct HashSource {
    /// An http or https URL of the file, e.g. https://example.com/report.pdf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 8, max = 2048), extend("pattern" = "^[hH][tT][tT][pP][sS]?://"))]
    pub url: Option<String>,
    /// A path inside the namespace's upload area of the bucket: report.pdf reads the object
    /// uploads/<namespace>/report.pdf. Nothing outside the area can be named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), extend("pattern" = "^[^/]"))]
    pub object: Option<String>,
}

/// A digest algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl HashAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "md5",
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha512 => "sha512",
        }
    }
}

/// What a HashTask found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HashTaskStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Lower-case hex digests by algorithm name, e.g. {md5: 3f3c...}.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digests: BTreeMap<String, String>,
    /// The file's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl TaskSpecCommon for HashTaskSpec {
    const KIND: TaskKind = TaskKind::HashTask;

    fn source(&self) -> Result<SourceRef<'_>, String> {
        exactly_one(&[
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

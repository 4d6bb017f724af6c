//! Types every task kind shares: run settings, phase and the common part of status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub(crate) fn default_retries() -> i32 {
    2
}

pub(crate) fn default_timeout_seconds() -> i64 {
    600
}

/// Where a task's phase stands. `Pending` until its runner Job starts, `Running` while it
/// runs, then `Succeeded` or `Failed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    pub fn is_finished(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }
}

/// The status fields every task kind has.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonStatus {
    /// Where the task stands: Pending, Running, Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Phase")]
    pub phase: Option<Phase>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions merged by type. `Succeeded` is Unknown while the task waits or runs, then
    /// True or False; its reason says why (Queued, Running, Completed, Failed, InvalidSpec,
    /// TimedOut, StoreError).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The runner Job of the observed generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// When the runner Job of the observed generation was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the observed generation finished, successfully or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// While the task waits for a runner slot (reason Queued): its place in the queue, 1 first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// How many runner Pods were started for the observed generation (1 + retries used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
}

/// The kinds of task Taskyard runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TaskKind {
    ImageTask,
    TextTask,
    HashTask,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::ImageTask => "ImageTask",
            TaskKind::TextTask => "TextTask",
            TaskKind::HashTask => "HashTask",
        }
    }

    /// The lower-case form used in labels and store keys (`imagetask`).
    pub fn lower(self) -> &'static str {
        match self {
            TaskKind::ImageTask => "imagetask",
            TaskKind::TextTask => "texttask",
            TaskKind::HashTask => "hashtask",
        }
    }
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TaskKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ImageTask" => Ok(TaskKind::ImageTask),
            "TextTask" => Ok(TaskKind::TextTask),
            "HashTask" => Ok(TaskKind::HashTask),
            other => Err(format!(
                "unknown task kind {other:?}: expected ImageTask, TextTask or HashTask"
            )),
        }
    }
}

/// Which input a task reads: the one member of `spec.source` that is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceRef<'a> {
    /// A web page whose images or text are collected.
    Page(&'a str),
    /// One file at a URL.
    Url(&'a str),
    /// A key in the object store bucket.
    Object(&'a str),
}

impl SourceRef<'_> {
    /// The URL to fetch, for the sources that have one.
    pub fn url(&self) -> Option<&str> {
        match self {
            SourceRef::Page(u) | SourceRef::Url(u) => Some(u),
            SourceRef::Object(_) => None,
        }
    }
}

/// What the operator and runner need of any task spec.
pub trait TaskSpecCommon {
    const KIND: TaskKind;
    /// The one source member that is set, or an error naming what is wrong.
    fn source(&self) -> Result<SourceRef<'_>, String>;
    fn retries(&self) -> i32;
    fn timeout_seconds(&self) -> i64;
}

/// Picks the one member that is set among a source's members, or says what is wrong.
pub(crate) fn exactly_one<'a>(members: &[(&str, Option<SourceRef<'a>>)]) -> Result<SourceRef<'a>, String> {
    let set: Vec<_> = members.iter().filter(|(_, v)| v.is_some()).collect();
    let names = members
        .iter()
        .map(|(n, _)| format!("source.{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    match set.as_slice() {
        [(_, Some(one))] => Ok(*one),
        [] => Err(format!("spec.source is empty: set exactly one of {names}")),
        many => Err(format!(
            "spec.source sets {}: set exactly one of {names}",
            many.iter()
                .map(|(n, _)| format!("source.{n}"))
                .collect::<Vec<_>>()
                .join(" and ")
        )),
    }
}

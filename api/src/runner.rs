//! The contract between the operator and the runner: the tasks a runner Job is given, and
//! the `result.json` the runner writes for each of them.
//!
//! A Job carries a list of tasks: one, or under a burst a batch of several (`maxTasksPerJob`),
//! which share one Pod because a Pod start costs about a second and a small task milliseconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{HashTaskSpec, ImageCounts, ImageItem, ImageTaskSpec, TaskKind, TextSummary, TextTaskSpec};

/// Which task resource, and which generation of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskIdentity {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub generation: i64,
}

/// A task's spec, tagged by kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "spec")]
pub enum TaskSpec {
    ImageTask(ImageTaskSpec),
    TextTask(TextTaskSpec),
    HashTask(HashTaskSpec),
}

impl TaskSpec {
    pub fn kind(&self) -> TaskKind {
        match self {
            TaskSpec::ImageTask(_) => TaskKind::ImageTask,
            TaskSpec::TextTask(_) => TaskKind::TextTask,
            TaskSpec::HashTask(_) => TaskKind::HashTask,
        }
    }
}

/// One task as a runner receives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunnerTask {
    pub identity: TaskIdentity,
    #[serde(flatten)]
    pub spec: TaskSpec,
}

/// Everything a runner Job is given (the `TASKYARD_TASKS` environment variable, as JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunnerInput {
    pub tasks: Vec<RunnerTask>,
    /// Set when the Job carries a batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Batch>,
}

/// How a runner runs a batch, so that every task keeps the promises of a Job of its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Batch {
    /// Where the runner reports which tasks are done: one object, a `DoneReport`, rewritten
    /// right after each task's `result.json`. The operator reads this one object while the
    /// Job runs (a GET: a LIST of a prefix walked the whole bucket on file-backed servers),
    /// and writes each task's status as soon as its result is there.
    pub report_key: String,
}

/// The tasks of a batch whose result is written, as `<uid>-<generation>`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DoneReport {
    pub done: Vec<String>,
}

impl DoneReport {
    /// Adds a task whose result is written.
    pub fn add(&mut self, identity: &TaskIdentity) {
        self.done.push(format!("{}-{}", identity.uid, identity.generation));
    }

    /// The reported tasks, as uid and generation.
    pub fn generations(&self) -> Vec<(String, i64)> {
        self.done
            .iter()
            .filter_map(|entry| {
                let (uid, generation) = entry.rsplit_once('-')?;
                Some((uid.to_string(), generation.parse().ok()?))
            })
            .collect()
    }
}

/// How a task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded,
    Failed,
}

/// What a runner writes to `tasks/<ns>/<kind>/<name>/<uid>/<generation>/result.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    pub kind: TaskKind,
    pub identity: TaskIdentity,
    pub outcome: Outcome,
    /// Why it ended: `Completed`, or why it failed.
    pub reason: crate::Reason,
    /// What happened, for people: on failure it says what is wrong and how to fix it.
    pub message: String,
    pub started_at: jiff::Timestamp,
    pub finished_at: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<TaskOutput>,
    /// Runs of the task in its Pod, when the runner retried it itself (in a batch, where a
    /// Pod retry would rerun the other tasks too); absent when the Job's Pods are the runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

/// The kind-specific part of a result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum TaskOutput {
    Hash(HashOutput),
    Image(ImageOutput),
    Text(TextOutput),
}

/// A HashTask's output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HashOutput {
    /// Lower-case hex digests by algorithm name.
    pub digests: BTreeMap<String, String>,
    pub size: u64,
}

/// An ImageTask's output; the full item list is in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageOutput {
    pub counts: ImageCounts,
    /// The first items (at most 50).
    pub items: Vec<ImageItem>,
    pub manifest: String,
}

/// A TextTask's output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextOutput {
    pub text: TextSummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub preview: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_done_report_names_task_generations_and_skips_what_is_not_one() {
        let mut report = DoneReport::default();
        let id = |uid: &str, generation| TaskIdentity {
            namespace: "ns".into(),
            name: "t".into(),
            uid: uid.into(),
            generation,
        };
        report.add(&id("0b7e-4c1a", 1));
        report.add(&id("ffff", 12));
        report.done.push("no-generation-x".into());
        let json = serde_json::to_string(&report).unwrap();
        let read: DoneReport = serde_json::from_str(&json).unwrap();
        assert_eq!(
            read.generations(),
            vec![("0b7e-4c1a".to_string(), 1), ("ffff".to_string(), 12)]
        );
    }
}

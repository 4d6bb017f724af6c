//! Where tasks live. The HTTP layer only creates tasks and reads them through `Backend`; the
//! cluster backend keeps them as task resources, the local one in this process.

pub mod cluster;
pub mod local;
mod persist;

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use taskyard_api::{CommonStatus, HashTaskStatus, ImageTaskStatus, Phase, TaskKind, TaskSpec, TextTaskStatus};
use taskyard_common::store::Store;

/// The label that says which legacy API created a task (`md5`, `resize-b64`, ...).
pub const API_LABEL: &str = "taskyard.dev/gateway-api";

/// A Kubernetes object name (a DNS subdomain), which every task resource's name is.
pub fn is_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'))
}

/// A task to create, in the backend's namespace.
#[derive(Clone, Debug)]
pub struct NewTask {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub spec: TaskSpec,
}

impl NewTask {
    /// A task labelled with the legacy API that created it.
    pub fn for_api(api: &str, name: String, spec: TaskSpec) -> Self {
        Self {
            name,
            labels: BTreeMap::from([(API_LABEL.to_string(), api.to_string())]),
            spec,
        }
    }
}

/// A task's status, typed by kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Hash(HashTaskStatus),
    Image(ImageTaskStatus),
    Text(TextTaskStatus),
}

impl Status {
    /// The empty status of a new task of `kind`.
    pub fn empty(kind: TaskKind) -> Self {
        match kind {
            TaskKind::HashTask => Status::Hash(Default::default()),
            TaskKind::ImageTask => Status::Image(Default::default()),
            TaskKind::TextTask => Status::Text(Default::default()),
        }
    }

    pub fn common(&self) -> &CommonStatus {
        match self {
            Status::Hash(s) => &s.common,
            Status::Image(s) => &s.common,
            Status::Text(s) => &s.common,
        }
    }
}

/// A task as the HTTP layer sees it.
#[derive(Clone, Debug)]
pub struct TaskView {
    pub kind: TaskKind,
    pub name: String,
    pub uid: String,
    pub created: jiff::Timestamp,
    pub labels: BTreeMap<String, String>,
    pub spec: TaskSpec,
    pub status: Status,
}

impl TaskView {
    /// Pending until a runner takes the task.
    pub fn phase(&self) -> Phase {
        self.status.common().phase.unwrap_or(Phase::Pending)
    }

    /// The `Succeeded` condition's message: on failure, what went wrong.
    pub fn message(&self) -> String {
        self.status
            .common()
            .conditions
            .first()
            .map(|c| c.message.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("a task named {0:?} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    Unavailable(String),
}

/// Creates and reads tasks in one namespace.
pub trait Backend: Send + Sync + 'static {
    /// The object store inputs are uploaded to and outputs read from.
    fn store(&self) -> &Store;
    /// The namespace tasks are created in.
    fn namespace(&self) -> &str;
    /// Creates a task; `AlreadyExists` if the name is taken (ids are allocated this way, so
    /// several gateways never hand out one id twice).
    fn create(&self, task: NewTask) -> BoxFuture<'_, Result<TaskView, BackendError>>;
    /// A task by kind and name.
    fn get<'a>(&'a self, kind: TaskKind, name: &'a str) -> BoxFuture<'a, Result<Option<TaskView>, BackendError>>;
    /// The names of the tasks of `kind` that a legacy API created (cheaper than `list`).
    fn names<'a>(&'a self, kind: TaskKind, api: &'a str) -> BoxFuture<'a, Result<Vec<String>, BackendError>>;
    /// The tasks of `kind` that a legacy API created, oldest first.
    fn list<'a>(&'a self, kind: TaskKind, api: &'a str) -> BoxFuture<'a, Result<Vec<TaskView>, BackendError>>;
}

//! The reconcile's reads and writes: status, results, termination messages, events.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, ResourceExt};
use taskyard_api::{Outcome, Reason, TaskIdentity, TaskKind, TaskResult};
use taskyard_common::keys::result_key;
use taskyard_common::status::TaskStatus;
use taskyard_common::store::{Store, StoreError};

use super::Context;
use crate::error::Error;
use crate::task::TaskResource;

/// A result.json larger than this is not a runner's.
const MAX_RESULT_BYTES: u64 = 4 << 20;

/// The status to build on: the old one for the same generation, a clean one for a new one.
pub(super) fn fresh_status<S: TaskStatus>(old: &S, generation: i64) -> S {
    let mut status = old.clone();
    if old.common().observed_generation != Some(generation) {
        status.clear_output();
        let common = status.common_mut();
        common.job_name = None;
        common.start_time = None;
        common.completion_time = None;
        common.attempts = None;
    }
    status
}

pub(super) fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// Writes status, only when it changed, as a replace with the resourceVersion read: a
/// reconcile working from a stale copy gets a conflict and runs again, instead of
/// overwriting newer status. (Server-side apply on Kubernetes 1.20 turns a dropped map field
/// into null, which the schema rejects.)
pub(super) async fn write_status<K: TaskResource>(
    api: &Api<K>,
    task: &K,
    old: &K::Status,
    new: &K::Status,
) -> Result<(), Error> {
    if old == new {
        return Ok(());
    }
    let mut value = serde_json::to_value(task).map_err(kube::Error::SerdeError)?;
    value["status"] = serde_json::to_value(new).map_err(kube::Error::SerdeError)?;
    let updated: K = serde_json::from_value(value).map_err(kube::Error::SerdeError)?;
    api.replace_status(&task.name_any(), &PostParams::default(), &updated)
        .await?;
    Ok(())
}

/// The runner's result for this generation: `None` if it wrote none; a `Failed` result that
/// says why if what it wrote cannot be a runner's (too large, or not a result), so the task
/// ends instead of being retried forever.
pub(super) async fn read_result(
    store: &Store,
    kind: TaskKind,
    identity: &TaskIdentity,
) -> Result<Option<TaskResult>, Error> {
    let key = result_key(kind, identity);
    let invalid = |why: String| {
        let now = now();
        Some(TaskResult {
            kind,
            identity: identity.clone(),
            outcome: Outcome::Failed,
            reason: Reason::InvalidResult,
            message: format!("the runner's result {key} {why}; the task cannot be recorded"),
            started_at: now,
            finished_at: now,
            output: None,
            attempts: None,
        })
    };
    let body = match store.get(&key, MAX_RESULT_BYTES).await {
        Ok(Some(body)) => body,
        Ok(None) => return Ok(None),
        Err(StoreError::TooLarge { .. }) => return Ok(invalid(format!("is larger than {MAX_RESULT_BYTES} bytes"))),
        Err(e) => return Err(Error::Store(e.to_string())),
    };
    match serde_json::from_slice::<TaskResult>(&body) {
        Ok(result) if result.identity == *identity && result.kind == kind => Ok(Some(result)),
        Ok(_) => Ok(invalid("belongs to another task".into())),
        Err(e) => Ok(invalid(format!("is not a result ({e})"))),
    }
}

/// The termination message of the Job's most recent runner Pod.
pub(super) async fn termination_message(
    client: &kube::Client,
    namespace: &str,
    job: &str,
) -> Result<Option<String>, Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut list = pods
        .list(&ListParams::default().labels(&format!("job-name={job}")))
        .await?
        .items;
    list.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    Ok(list.iter().rev().find_map(|pod| {
        let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
        statuses.iter().find_map(|c| {
            let terminated = c.state.as_ref()?.terminated.as_ref()?;
            // The kernel killed it: the log tail the runner left says nothing of why.
            if terminated.reason.as_deref() == Some("OOMKilled") {
                return Some(OOM_KILLED.to_string());
            }
            terminated.message.clone()
        })
    }))
}

/// What a task whose runner ran out of memory is told.
const OOM_KILLED: &str = "the runner ran out of memory and was killed (OOMKilled): raise runner.resources.limits.memory, \
     or lower the runner's memory budgets (TASKYARD_IMAGE_WORK_BYTES, TASKYARD_IMAGE_DOWNLOAD_BYTES) to fit within it";

/// Events are for people; failing to publish one does not fail the reconcile.
pub(super) async fn publish<K: TaskResource>(
    ctx: &Context,
    task: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let mut note = note.to_string();
    if note.len() > 1000 {
        let mut end = 1000;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
    }
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    ctx.events.publish(event, task.object_ref(&())).await;
}

//! One reconcile for every task kind, as named steps under a short driver:
//! dereference -> tidy -> (validate -> admit -> ensure Job) -> report | record.

mod io;
mod steps;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use taskyard_common::netpolicy::NetworkPolicy;
use taskyard_common::status::TaskStatus;
use taskyard_common::store::Store;

use crate::error::Error;
use crate::jobstate::{JobState, job_state};
use crate::logwriter::LogWriter;
use crate::settings::Settings;
use crate::task::TaskResource;
use k8s_openapi::api::batch::v1::Job;
use steps::{CurrentJob, Turn};

/// What every reconcile shares.
pub struct Context {
    pub client: kube::Client,
    pub admission: crate::queue::Admission,
    pub job_index: Arc<crate::jobindex::JobIndex>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub settings: Settings,
    pub store: Store,
    pub policy: NetworkPolicy,
    pub log: LogWriter,
    pub events: crate::events::Events,
}

/// Reconciles one task, counting it in the metrics.
#[tracing::instrument(skip_all, fields(kind = %K::kind(&()), namespace = task.namespace().unwrap_or_default(), name = %task.name_any()))]
pub async fn reconcile<K: TaskResource>(task: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let uid = task.uid().unwrap_or_default();
    let deleted = task.meta().deletion_timestamp.is_some();
    let outcome = reconcile_task(&*task, &ctx).await;
    let kind = K::kind(&());
    ctx.metrics.reconciled(&kind, started.elapsed());
    // The trail of a task that seems stuck (`operator.logLevel`); failures are logged by
    // `error_policy`.
    if let Ok(action) = &outcome {
        tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, ?action, "reconciled");
    }
    // The phase the task was reconciled in; a status this reconcile writes triggers the next
    // reconcile, which records the new phase.
    match (deleted, task.task_status().and_then(|s| s.common().phase)) {
        (true, _) => ctx.metrics.task_gone(&uid),
        (false, phase) => ctx.metrics.task_phase(&uid, &kind, phase.unwrap_or_default().as_str()),
    }
    outcome
}

/// Unwraps a step that went on, or ends the reconcile with the action it chose.
macro_rules! proceed {
    ($step:expr) => {
        match $step? {
            ControlFlow::Continue(value) => value,
            ControlFlow::Break(action) => return Ok(action),
        }
    };
}

async fn reconcile_task<K: TaskResource>(task: &K, ctx: &Context) -> Result<Action, Error> {
    let turn = proceed!(Turn::dereference(task, ctx).await);
    // Until the Job index is complete, a task it does not list may still have a Job.
    if !ctx.job_index.is_synced() {
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    proceed!(turn.tidy().await);
    let alone = match turn.existing_job().await? {
        Some(CurrentJob::Own(job)) => return own_job(&turn, &job).await,
        Some(CurrentJob::Batch(job)) => {
            proceed!(turn.batch_member(&job).await);
            true
        }
        None => false,
    };
    proceed!(turn.validate().await);
    let ticket = proceed!(turn.admit(alone).await);
    let job = proceed!(turn.ensure_job(ticket).await);
    own_job(&turn, &job).await
}

/// A Job created for this task (alone or carrying others): running, or finished.
async fn own_job<K: TaskResource>(turn: &Turn<'_, K>, job: &Job) -> Result<Action, Error> {
    let name = job.metadata.name.clone().unwrap_or_default();
    match (job_state(job), crate::job::is_batch(job)) {
        (JobState::Running, _) => turn.report(job, &name).await,
        (_, false) => turn.record(job, None, false).await,
        // Its own batch, just created: the member's path reads it from now on.
        (_, true) => Ok(Action::requeue(Duration::from_millis(300))),
    }
}

/// A conflict means another write landed first: look again at once. Other errors are
/// retried after a short delay.
pub fn error_policy<K: TaskResource>(task: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(&K::kind(&()), error.reason());
    if let Error::Kube(kube::Error::Api(e)) = error
        && e.code == 409
    {
        return Action::requeue(Duration::from_millis(200));
    }
    tracing::warn!(task = %task.name_any(), reason = error.reason(), "reconcile failed: {error}");
    Action::requeue(Duration::from_secs(5))
}

#[cfg(test)]
mod tests;

//! One reconcile for every task kind:
//! load -> validate -> build the Job -> create it once -> on completion read the result ->
//! (HashTask: append the results log line) -> write status -> events.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, ResourceExt};
use taskyard_api::{Outcome, Phase, RunnerTask, TaskIdentity, TaskKind, TaskResult, TaskSpecCommon};
use taskyard_common::hashlog::LogLine;
use taskyard_common::keys::result_key;
use taskyard_common::netpolicy::NetworkPolicy;
use taskyard_common::status::{TaskStatus, apply_result, set_phase};
use taskyard_common::store::Store;

use crate::error::Error;
use crate::finish::{Finished, final_result, finished_at};
use crate::job::{LABEL_GENERATION, LABEL_MANAGED_BY, LABEL_UID, MANAGED_BY, build_job, job_name};
use crate::jobstate::{JobState, attempts, job_state};
use crate::logwriter::LogWriter;
use crate::queue::{Admit, Waiting, admit};
use crate::settings::Settings;
use crate::task::{TaskResource, is_recorded};
use crate::validate::{Invalid, check_source};
use crate::{cleanup, housekeeping};

/// A result.json larger than this is not a runner's.
const MAX_RESULT_BYTES: u64 = 4 << 20;
/// Safety net for missed watch events while a Job runs.
const RUNNING_RESYNC: Duration = Duration::from_secs(300);
/// Safety net for a waiting task whose wake-up was missed.
const QUEUED_RESYNC: Duration = Duration::from_secs(30);

/// What every reconcile shares.
pub struct Context {
    pub client: kube::Client,
    pub admission: crate::queue::Admission,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub settings: Settings,
    pub store: Store,
    pub policy: NetworkPolicy,
    pub log: LogWriter,
    pub recorder: Recorder,
}

/// Reconciles one task, counting it in the metrics.
#[tracing::instrument(skip_all, fields(kind = %K::kind(&()), namespace = task.namespace().unwrap_or_default(), name = %task.name_any()))]
pub async fn reconcile<K: TaskResource>(task: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let uid = task.uid().unwrap_or_default();
    let deleted = task.meta().deletion_timestamp.is_some();
    let outcome = reconcile_task(task.clone(), ctx.clone()).await;
    let kind = K::kind(&());
    ctx.metrics.reconciled(&kind, started.elapsed());
    // The phase the task was reconciled in; a status this reconcile writes triggers the next
    // reconcile, which records the new phase.
    match (deleted, task.task_status().and_then(|s| s.common().phase)) {
        (true, _) => ctx.metrics.task_gone(&uid),
        (false, phase) => ctx.metrics.task_phase(&uid, &kind, phase.unwrap_or_default().as_str()),
    }
    ctx.metrics.set_queue_length(ctx.admission.caches.queued());
    outcome
}

async fn reconcile_task<K: TaskResource>(task: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let kind = <K::Spec as TaskSpecCommon>::KIND;
    let identity = TaskIdentity {
        namespace: task.namespace().unwrap_or_default(),
        name: task.name_any(),
        uid: task.uid().unwrap_or_default(),
        generation: task.meta().generation.unwrap_or(1),
    };
    let tasks: Api<K> = Api::namespaced(ctx.client.clone(), &identity.namespace);
    if cleanup::has_finalizer(&*task) {
        // Versions before 0.2 held deletions with a finalizer, which hangs once the operator
        // is gone. The reaper cleans up after a deleted task instead; let go of it.
        let rest = task
            .finalizers()
            .iter()
            .filter(|f| *f != cleanup::FINALIZER)
            .cloned()
            .collect();
        cleanup::set_finalizers(&tasks, &*task, rest).await?;
        return Ok(Action::await_change());
    }
    if task.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let old = task.task_status().cloned().unwrap_or_default();
    let recorded = is_recorded(&*task);
    // Runner Jobs live in the operator's namespace, never in the task's.
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.settings.namespace);

    // Superseded and expired runner Jobs go first.
    let ttl = Duration::from_secs(ctx.settings.job_ttl_seconds);
    let owned = housekeeping::task_jobs(&jobs, &identity.uid).await?;
    let plan = housekeeping::plan(&owned, identity.generation, recorded, ttl, now());
    housekeeping::delete_jobs(&jobs, &plan.delete).await?;
    if !plan.delete.is_empty() {
        ctx.admission.wake_all();
    }
    if recorded {
        return Ok(plan.next_check.map_or_else(Action::await_change, Action::requeue));
    }
    let name = job_name(&identity);

    let job = match jobs.get_opt(&name).await? {
        Some(job) => job,
        None => {
            let spec = task.task_spec();
            let source = spec.source();
            let checked = match source {
                Ok(source) => check_source(source, &identity.namespace, &ctx.policy, &ctx.store).await,
                Err(message) => Err(Invalid::Spec(message)),
            };
            match checked {
                Ok(()) => {}
                Err(Invalid::Transient(message)) => return Err(Error::Store(message)),
                Err(Invalid::Spec(message)) => {
                    let mut status = fresh_status(&old, identity.generation);
                    set_phase(
                        status.common_mut(),
                        identity.generation,
                        Phase::Failed,
                        "InvalidSpec",
                        &message,
                        now(),
                    );
                    status.common_mut().completion_time = Some(Time(now()));
                    write_status(&tasks, &*task, &old, &status).await?;
                    publish(&ctx, &*task, EventType::Warning, "InvalidSpec", "Validate", &message).await;
                    ctx.metrics.task_finished(kind.as_str(), "Failed", "InvalidSpec", None);
                    return Ok(Action::await_change());
                }
            }
            // One admission decision at a time; the lock is held until the Job exists.
            let mut arrivals = ctx.admission.arrivals.lock().await;
            let runner_jobs = runner_jobs(&jobs).await?;
            let line = ctx
                .admission
                .line(&mut arrivals, Waiting::of(&*task), &runner_jobs.tasks)
                .await;
            let max = ctx.settings.max_running_jobs as usize;
            if let Admit::Wait { position } = admit(&line, &identity.uid, runner_jobs.running, max) {
                drop(arrivals);
                let mut status = fresh_status(&old, identity.generation);
                let common = status.common_mut();
                common.queue_position = Some(position as u32);
                let message = format!(
                    "waiting for a runner slot, position {position}: at most {max} runner Jobs run at once (maxRunningJobs)"
                );
                set_phase(common, identity.generation, Phase::Pending, "Queued", &message, now());
                write_status(&tasks, &*task, &old, &status).await?;
                return Ok(Action::requeue(QUEUED_RESYNC));
            }
            let runner_task = RunnerTask {
                identity: identity.clone(),
                spec: task.runner_spec(),
            };
            let job = build_job(
                kind,
                &runner_task,
                spec.retries(),
                spec.timeout_seconds(),
                &ctx.settings,
            );
            match jobs.create(&PostParams::default(), &job).await {
                Ok(job) => {
                    publish(
                        &ctx,
                        &*task,
                        EventType::Normal,
                        "JobCreated",
                        "CreateJob",
                        &format!("created runner Job {name}"),
                    )
                    .await;
                    job
                }
                // Created by an earlier reconcile whose status write did not land.
                Err(kube::Error::Api(e)) if e.code == 409 => jobs.get(&name).await?,
                Err(e) => return Err(e.into()),
            }
        }
    };

    let state = job_state(&job);
    let started_at = job
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or_else(now);
    let mut status = fresh_status(&old, identity.generation);
    {
        let common = status.common_mut();
        common.job_name = Some(name.clone());
        common.start_time = Some(Time(started_at));
        common.attempts = Some(attempts(&job).max(1));
        common.queue_position = None;
    }
    if state == JobState::Running {
        let message = format!("runner Job {name} is running");
        set_phase(
            status.common_mut(),
            identity.generation,
            Phase::Running,
            "Running",
            &message,
            now(),
        );
        write_status(&tasks, &*task, &old, &status).await?;
        return Ok(Action::requeue(RUNNING_RESYNC));
    }

    let result = read_result(&ctx.store, kind, &identity).await?;
    let needs_pod_message = !matches!((&state, &result), (JobState::Complete, Some(_)));
    let termination_message = if needs_pod_message {
        termination_message(&ctx.client, &ctx.settings.namespace, &name).await?
    } else {
        None
    };
    let finished = final_result(Finished {
        kind,
        identity: &identity,
        state: &state,
        result,
        termination_message,
        timeout_seconds: task.task_spec().timeout_seconds(),
        started_at,
        finished_at: finished_at(&job).unwrap_or_else(now),
    })
    .expect("a finished Job has a result");

    if kind == TaskKind::HashTask {
        // Before the status: a crash in between repeats the append, which skips the line.
        ctx.log
            .append(LogLine::from_result(&finished))
            .await
            .map_err(Error::ResultsLog)?;
    }
    apply_result(&mut status, &finished);
    write_status(&tasks, &*task, &old, &status).await?;
    let job_seconds = finished.finished_at.duration_since(started_at).as_secs_f64().max(0.0);
    let phase = if finished.outcome == Outcome::Succeeded {
        "Succeeded"
    } else {
        "Failed"
    };
    ctx.metrics
        .task_finished(kind.as_str(), phase, &finished.reason, Some(job_seconds));
    let (event_type, reason) = match finished.outcome {
        Outcome::Succeeded => (EventType::Normal, "Succeeded"),
        Outcome::Failed => (EventType::Warning, "Failed"),
    };
    publish(
        &ctx,
        &*task,
        event_type,
        reason,
        "Finish",
        &format!("{}: {}", finished.reason, finished.message),
    )
    .await;
    // A runner slot is free: the waiting tasks look again.
    ctx.admission.wake_all();
    // Look again when the Job's time to live is up.
    Ok(Action::requeue(ttl.max(Duration::from_secs(1))))
}

/// The status to build on: the old one for the same generation, a clean one for a new one.
fn fresh_status<S: TaskStatus>(old: &S, generation: i64) -> S {
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

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// Writes status, only when it changed, as a replace with the resourceVersion read: a
/// reconcile working from a stale copy gets a conflict and runs again, instead of
/// overwriting newer status. (Server-side apply on Kubernetes 1.20 turns a dropped map field
/// into null, which the schema rejects.)
async fn write_status<K: TaskResource>(api: &Api<K>, task: &K, old: &K::Status, new: &K::Status) -> Result<(), Error> {
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

/// The runner's result for this generation, if it wrote one.
async fn read_result(store: &Store, kind: TaskKind, identity: &TaskIdentity) -> Result<Option<TaskResult>, Error> {
    let key = result_key(kind, identity);
    let Some(body) = store
        .get(&key, MAX_RESULT_BYTES)
        .await
        .map_err(|e| Error::Store(e.to_string()))?
    else {
        return Ok(None);
    };
    match serde_json::from_slice(&body) {
        Ok(result) => Ok(Some(result)),
        Err(e) => {
            tracing::warn!(%key, "ignoring an unreadable result: {e}");
            Ok(None)
        }
    }
}

/// The termination message of the Job's most recent runner Pod.
async fn termination_message(client: &kube::Client, namespace: &str, job: &str) -> Result<Option<String>, Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut list = pods
        .list(&ListParams::default().labels(&format!("job-name={job}")))
        .await?
        .items;
    list.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    Ok(list.iter().rev().find_map(|pod| {
        let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
        statuses
            .iter()
            .find_map(|c| c.state.as_ref()?.terminated.as_ref()?.message.clone())
    }))
}

/// Events are for people; failing to publish one does not fail the reconcile.
async fn publish<K: TaskResource>(ctx: &Context, task: &K, type_: EventType, reason: &str, action: &str, note: &str) {
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
    if let Err(e) = ctx.recorder.publish(&event, &task.object_ref(&())).await {
        tracing::warn!("cannot publish event {reason}: {e}");
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

/// The operator's runner Jobs (Jobs elsewhere, whatever their labels, do not count).
struct RunnerJobs {
    /// How many have not finished.
    running: usize,
    /// The task uid and generation of each.
    tasks: HashSet<(String, i64)>,
}

async fn runner_jobs(jobs: &Api<Job>) -> Result<RunnerJobs, Error> {
    let jobs = jobs
        .list(&ListParams::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}")))
        .await?
        .items;
    let tasks = jobs
        .iter()
        .filter_map(|job| {
            let labels = job.metadata.labels.as_ref()?;
            Some((
                labels.get(LABEL_UID)?.clone(),
                labels.get(LABEL_GENERATION)?.parse().ok()?,
            ))
        })
        .collect();
    Ok(RunnerJobs {
        running: jobs.iter().filter(|j| job_state(j) == JobState::Running).count(),
        tasks,
    })
}

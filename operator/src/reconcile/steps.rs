//! The steps of one reconcile. Each returns `Continue` with what the next step needs, or
//! `Break` with the action that ends this reconcile.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use taskyard_api::{Outcome, Phase, Reason, RunnerTask, TaskIdentity, TaskKind, TaskResult, TaskSpecCommon};
use taskyard_common::hashlog::LogLine;
use taskyard_common::status::{TaskStatus, apply_result, set_phase};

use super::Context;
use super::io::{fresh_status, now, publish, read_result, termination_message, write_status};
use crate::error::Error;
use crate::finish::{Finished, final_result, finished_at};
use crate::job::{Carried, build_batch_job, build_job, is_batch, job_name};
use crate::jobstate::{JobState, attempts, job_state};
use crate::queue::{Decision, MAX_JOB_CREATE_TRIES, Ticket, Waiting};
use crate::task::{TaskResource, is_recorded};
use crate::validate::{Invalid, check_source};
use crate::{cleanup, housekeeping};

/// Safety net for missed watch events while a Job runs.
const RUNNING_RESYNC: Duration = Duration::from_secs(300);
/// How soon a task carried by a batch it has not seen yet looks again.
const BATCH_INDEX_LAG: Duration = Duration::from_millis(300);
/// How long after its batch Job was created a task first says `Running`.
const BATCH_RUNNING_GRACE: Duration = Duration::from_secs(3);

/// A task generation's Job.
pub(super) enum CurrentJob {
    /// A Job of its own.
    Own(Arc<Job>),
    /// A batch that carries it (or carried it).
    Batch(Arc<Job>),
}

pub(super) type Step<T> = Result<ControlFlow<Action, T>, Error>;

/// One reconcile of one task.
pub(super) struct Turn<'a, K: TaskResource> {
    task: &'a K,
    ctx: &'a Context,
    kind: TaskKind,
    identity: TaskIdentity,
    tasks: Api<K>,
    /// Runner Jobs live in the operator's namespace, never in the task's.
    jobs: Api<Job>,
    old: K::Status,
    job_name: String,
}

impl<'a, K: TaskResource> Turn<'a, K> {
    /// Who the task is; ends here for a task being deleted (after letting go of the
    /// finalizer that versions before 0.2 added: the reaper cleans up instead).
    pub(super) async fn dereference(task: &'a K, ctx: &'a Context) -> Step<Self> {
        let identity = TaskIdentity {
            namespace: task.namespace().unwrap_or_default(),
            name: task.name_any(),
            uid: task.uid().unwrap_or_default(),
            generation: task.meta().generation.unwrap_or(1),
        };
        let tasks: Api<K> = Api::namespaced(ctx.client.clone(), &identity.namespace);
        if cleanup::has_finalizer(task) {
            let rest = task
                .finalizers()
                .iter()
                .filter(|f| *f != cleanup::FINALIZER)
                .cloned()
                .collect();
            cleanup::set_finalizers(&tasks, task, rest).await?;
            return Ok(ControlFlow::Break(Action::await_change()));
        }
        if task.meta().deletion_timestamp.is_some() {
            return Ok(ControlFlow::Break(Action::await_change()));
        }
        Ok(ControlFlow::Continue(Turn {
            task,
            ctx,
            kind: <K::Spec as TaskSpecCommon>::KIND,
            job_name: job_name(&identity),
            identity,
            tasks,
            jobs: Api::namespaced(ctx.client.clone(), &ctx.settings.namespace),
            old: task.task_status().cloned().unwrap_or_default(),
        }))
    }

    /// Deletes superseded and expired runner Jobs; ends here if this generation is recorded.
    pub(super) async fn tidy(&self) -> Step<()> {
        let recorded = is_recorded(self.task);
        let ttl = Duration::from_secs(self.ctx.settings.job_ttl_seconds);
        // A batch belongs to no one task: the reaper's sweep deletes it.
        let owned: Vec<Job> = self
            .ctx
            .job_index
            .jobs_of(&self.identity.uid)
            .iter()
            .filter(|job| !is_batch(job))
            .map(|job| (**job).clone())
            .collect();
        let plan = housekeeping::plan(&owned, self.identity.generation, recorded, ttl, now());
        housekeeping::delete_jobs(&self.jobs, &plan.delete).await?;
        if !plan.delete.is_empty() {
            self.ctx.admission.wake_heads().await;
        }
        if recorded {
            let action = plan.next_check.map_or_else(Action::await_change, Action::requeue);
            return Ok(ControlFlow::Break(action));
        }
        Ok(ControlFlow::Continue(()))
    }

    /// This generation's Job, if it has one: its own (named after it), or else a batch that
    /// carries it.
    pub(super) async fn existing_job(&self) -> Result<Option<CurrentJob>, Error> {
        // The index holds every runner Job (a Job this operator creates, from the moment it
        // exists), so no reconcile asks the API server.
        if let Some(job) = self.ctx.job_index.get(&self.job_name) {
            return Ok(Some(CurrentJob::Own(job)));
        }
        let batch = self
            .ctx
            .job_index
            .batch_of(&self.identity.uid, self.identity.generation);
        Ok(batch.map(CurrentJob::Batch))
    }

    /// A task carried by a batch: its status is written as soon as its runner reported it
    /// done. A batch that ended without this task's result (its Pod crashed, or the Job's
    /// deadline passed) lets it go on, to run alone.
    pub(super) async fn batch_member(&self, job: &Job) -> Step<()> {
        let name = job.metadata.name.as_deref().unwrap_or_default();
        let running = job_state(job) == JobState::Running;
        let reported = self
            .ctx
            .job_index
            .is_done(name, &self.identity.uid, self.identity.generation);
        if running && !reported {
            return Ok(ControlFlow::Break(self.report(job, name).await?));
        }
        match read_result(&self.ctx.store, self.kind, &self.identity).await? {
            Some(result) => Ok(ControlFlow::Break(self.record(job, Some(result), true).await?)),
            None if running => Ok(ControlFlow::Break(self.report(job, name).await?)),
            None => {
                tracing::info!(
                    job = name,
                    "the batch ended without this task's result; it runs again, alone"
                );
                Ok(ControlFlow::Continue(()))
            }
        }
    }

    /// What the API server's schema cannot check; a spec the user must fix ends the task
    /// `InvalidSpec`, with no Job.
    pub(super) async fn validate(&self) -> Step<()> {
        let ctx = self.ctx;
        let checked = match self.task.task_spec().source() {
            Ok(source) => check_source(source, &self.identity.namespace, &ctx.policy, &ctx.store).await,
            Err(message) => Err(Invalid::Spec(message)),
        };
        match checked {
            Ok(()) => Ok(ControlFlow::Continue(())),
            Err(Invalid::Transient(message)) => {
                // Out of the line while the store cannot be asked, so it holds no one up.
                ctx.admission.failed_to_start(&self.identity.uid, false);
                Err(Error::Store(message))
            }
            Err(Invalid::Spec(message)) => {
                self.fail(Reason::InvalidSpec, &message, "Validate").await?;
                Ok(ControlFlow::Break(Action::await_change()))
            }
        }
    }

    /// Asks the queue for a runner slot; a task that must wait shows its place.
    pub(super) async fn admit(&self, alone: bool) -> Step<Ticket> {
        let ctx = self.ctx;
        if let Some(wait) = ctx.admission.backing_off(&self.identity.uid) {
            return Ok(ControlFlow::Break(Action::requeue(wait)));
        }
        let decision = ctx.admission.decide(Waiting::of(self.task), alone).await;
        tracing::debug!(
            decision = decision.describe(),
            running_jobs = ctx.job_index.running(),
            "admission"
        );
        let position = match decision {
            Decision::Now(ticket) => return Ok(ControlFlow::Continue(ticket)),
            // Another task's batch carries it; the batch index sees it shortly.
            Decision::Exists => return Ok(ControlFlow::Break(Action::requeue(BATCH_INDEX_LAG))),
            Decision::Linger(wait) => return Ok(ControlFlow::Break(Action::requeue(wait))),
            // New to the line: most such tasks ride in a batch before their place is shown.
            Decision::Wait {
                quiet_for: Some(wait), ..
            } => return Ok(ControlFlow::Break(Action::requeue(wait))),
            // Its place was written moments ago: woken when it is a head, or by the refresher.
            Decision::Hold => return Ok(ControlFlow::Break(Action::await_change())),
            Decision::Wait { position, .. } => position,
        };
        let mut status = fresh_status(&self.old, self.identity.generation);
        let common = status.common_mut();
        common.queue_position = Some(position as u32);
        let max = ctx.settings.max_running_jobs;
        let message = format!(
            "waiting for a runner slot, position {position} in namespace {}'s line: at most {max} runner \
             Jobs run at once (maxRunningJobs), and namespaces take turns",
            self.identity.namespace
        );
        set_phase(
            common,
            self.identity.generation,
            Phase::Pending,
            Reason::Queued,
            &message,
            now(),
        );
        write_status(&self.tasks, self.task, &self.old, &status).await?;
        ctx.admission
            .position_shown(&self.identity.uid, self.identity.generation);
        // Woken when it reaches the head of the line (and by the queue's refresher).
        Ok(ControlFlow::Break(Action::await_change()))
    }

    /// Creates this generation's Job once. A Job that cannot be created is retried with a
    /// backoff, out of the line, and ends the task after `MAX_JOB_CREATE_TRIES`.
    pub(super) async fn ensure_job(&self, ticket: Ticket) -> Step<Job> {
        let ctx = self.ctx;
        let spec = self.task.task_spec();
        let me = Carried {
            task: RunnerTask {
                identity: self.identity.clone(),
                spec: self.task.runner_spec(),
            },
            retries: spec.retries(),
            timeout_seconds: spec.timeout_seconds(),
        };
        let companions = carried_companions::<K>(ctx, &ticket.companions);
        let job = if companions.is_empty() {
            build_job(self.kind, &me.task, me.retries, me.timeout_seconds, &ctx.settings)
        } else {
            let tasks: Vec<Carried> = std::iter::once(me)
                .chain(companions.iter().map(|(c, _)| c.clone()))
                .collect();
            build_batch_job(self.kind, &tasks, &ctx.settings)
        };
        let name = job.metadata.name.clone().unwrap_or_default();
        let created = self.jobs.create(&PostParams::default(), &job).await;
        match &created {
            Ok(job) => ticket.admitted(job.clone()),
            Err(_) => drop(ticket),
        }
        match created {
            Ok(job) => {
                ctx.admission.forget(&self.identity.uid);
                let note = match companions.len() {
                    0 => format!("created runner Job {name}"),
                    n => format!("created runner Job {name}, which carries this task and {n} others"),
                };
                publish(ctx, self.task, EventType::Normal, "JobCreated", "CreateJob", &note).await;
                self.tell_companions(&name, &companions).await;
                Ok(ControlFlow::Continue(job))
            }
            // Created by an earlier reconcile whose status write did not land.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(ControlFlow::Continue(self.jobs.get(&name).await?)),
            Err(e) => {
                // A refusal (quota, admission policy, invalid Job) counts; an API server that
                // is unreachable, overloaded or erring is waited out.
                let refused = matches!(&e, kube::Error::Api(s) if (400..500).contains(&s.code) && s.code != 429);
                let failures = ctx.admission.failed_to_start(&self.identity.uid, refused);
                if failures < MAX_JOB_CREATE_TRIES {
                    return Err(e.into());
                }
                ctx.admission.forget(&self.identity.uid);
                let message = format!(
                    "the runner Job could not be created ({failures} tries): {e}; check the operator's \
                     namespace (quotas, admission policies) and its log"
                );
                self.fail(Reason::JobCreationFailed, &message, "CreateJob").await?;
                Ok(ControlFlow::Break(Action::await_change()))
            }
        }
    }

    /// The Job runs: status says so.
    pub(super) async fn report(&self, job: &Job, job_name: &str) -> Result<Action, Error> {
        // A batch's tasks mostly end within seconds of its Pod starting: their status goes
        // straight to the end, one write instead of two.
        if is_batch(job)
            && !self.shows_running()
            && let Some(wait) = grace_left(job, BATCH_RUNNING_GRACE)
        {
            return Ok(Action::requeue(wait));
        }
        let mut status = self.with_job(job, None);
        let message = format!("runner Job {job_name} is running");
        set_phase(
            status.common_mut(),
            self.identity.generation,
            Phase::Running,
            Reason::Running,
            &message,
            now(),
        );
        write_status(&self.tasks, self.task, &self.old, &status).await?;
        Ok(Action::requeue(RUNNING_RESYNC))
    }

    /// The Job finished: the result (HashTask: first its results log line), status, events.
    /// A batch member's `result` is read already; a Job of its own is read here.
    pub(super) async fn record(&self, job: &Job, result: Option<TaskResult>, batch: bool) -> Result<Action, Error> {
        let ctx = self.ctx;
        // A batch member is done when its result is, though the batch may run on.
        let state = if batch { JobState::Complete } else { job_state(job) };
        let mut status = self.with_job(job, result.as_ref());
        let started_at = status.common().start_time.as_ref().map_or_else(now, |t| t.0);
        let result = match result {
            Some(result) => Some(result),
            None => read_result(&ctx.store, self.kind, &self.identity).await?,
        };
        let needs_pod_message = !matches!((&state, &result), (JobState::Complete, Some(_)));
        let termination_message = if needs_pod_message {
            termination_message(&ctx.client, &ctx.settings.namespace, &self.job_name).await?
        } else {
            None
        };
        let batch_finished_at = result.as_ref().filter(|_| batch).map(|r| r.finished_at);
        let finished = final_result(Finished {
            kind: self.kind,
            identity: &self.identity,
            state: &state,
            result,
            termination_message,
            timeout_seconds: self.task.task_spec().timeout_seconds(),
            started_at,
            finished_at: batch_finished_at.or_else(|| finished_at(job)).unwrap_or_else(now),
        })
        .expect("a finished Job has a result");
        if self.kind == TaskKind::HashTask {
            // Before the status: a crash in between appends again, which readers drop.
            ctx.log
                .append(LogLine::from_result(&finished))
                .await
                .map_err(Error::ResultsLog)?;
        }
        apply_result(&mut status, &finished);
        match write_status(&self.tasks, self.task, &self.old, &status).await {
            // The API server refused this status (too large, say): fail the task with a
            // status it takes, rather than retrying the same write forever.
            Err(Error::Kube(kube::Error::Api(e))) if e.code == 422 || e.code == 413 => {
                let message = format!("the task's status was refused by the API server: {}", e.message);
                self.fail(Reason::StatusRejected, &message, "Finish").await?;
                return Ok(Action::await_change());
            }
            written => written?,
        }
        let job_seconds = finished.finished_at.duration_since(started_at).as_secs_f64().max(0.0);
        let phase = match finished.outcome {
            Outcome::Succeeded => "Succeeded",
            Outcome::Failed => "Failed",
        };
        ctx.metrics
            .task_finished(self.kind.as_str(), phase, finished.reason.as_str(), Some(job_seconds));
        let (event_type, reason) = match finished.outcome {
            Outcome::Succeeded => (EventType::Normal, "Succeeded"),
            Outcome::Failed => (EventType::Warning, "Failed"),
        };
        let note = format!("{}: {}", finished.reason, finished.message);
        publish(ctx, self.task, event_type, reason, "Finish", &note).await;
        // A runner slot is free (a batch's when it ends): the heads of the line look again.
        if !batch || job_state(job) != JobState::Running {
            ctx.admission.wake_heads().await;
        }
        // Look again when the Job's time to live is up.
        let ttl = Duration::from_secs(ctx.settings.job_ttl_seconds);
        Ok(Action::requeue(ttl.max(Duration::from_secs(1))))
    }

    /// Whether the status says this generation's Job runs.
    fn shows_running(&self) -> bool {
        let common = self.old.common();
        common.observed_generation == Some(self.identity.generation) && common.phase == Some(Phase::Running)
    }

    /// The status of this generation with its Job.
    /// A batch member's runs are counted by its runner, in its `result`.
    fn with_job(&self, job: &Job, result: Option<&TaskResult>) -> K::Status {
        let started_at = job.metadata.creation_timestamp.as_ref().map_or_else(now, |t| t.0);
        let mut status = fresh_status(&self.old, self.identity.generation);
        let common = status.common_mut();
        common.job_name = job.metadata.name.clone();
        common.start_time = Some(Time(started_at));
        let runs = result.and_then(|r| r.attempts).map(|a| a as i32);
        common.attempts = Some(runs.unwrap_or_else(|| attempts(job)).max(1));
        common.queue_position = None;
        status
    }

    /// The companions a batch carries along hear of their Job (an event each) and look at it.
    async fn tell_companions(&self, job_name: &str, companions: &[(Carried, Arc<K>)]) {
        let note = format!("created runner Job {job_name}, which carries this task in a batch");
        let events = companions
            .iter()
            .map(|(_, task)| publish(self.ctx, &**task, EventType::Normal, "JobCreated", "CreateJob", &note));
        futures::future::join_all(events).await;
        for (carried, _) in companions {
            let id = &carried.task.identity;
            self.ctx.admission.wake_task(self.kind, &id.namespace, &id.name);
        }
    }

    /// Ends this generation `Failed` with `reason`, before or without a runner result. A
    /// HashTask's generation gets its results log line here too (a refused status keeps the
    /// line already written from the runner's result).
    async fn fail(&self, reason: Reason, message: &str, action: &str) -> Result<(), Error> {
        if self.kind == TaskKind::HashTask && reason != Reason::StatusRejected {
            let line = LogLine {
                time: now(),
                identity: self.identity.clone(),
                outcome: Outcome::Failed,
                md5: None,
                size: None,
                message: format!("{reason}: {message}"),
            };
            self.ctx.log.append(line).await.map_err(Error::ResultsLog)?;
        }
        let mut status = fresh_status(&self.old, self.identity.generation);
        let common = status.common_mut();
        set_phase(common, self.identity.generation, Phase::Failed, reason, message, now());
        common.completion_time = Some(Time(now()));
        common.queue_position = None;
        write_status(&self.tasks, self.task, &self.old, &status).await?;
        let event_reason = if reason == Reason::InvalidSpec {
            "InvalidSpec"
        } else {
            "Failed"
        };
        publish(self.ctx, self.task, EventType::Warning, event_reason, action, message).await;
        self.ctx
            .metrics
            .task_finished(self.kind.as_str(), "Failed", reason.as_str(), None);
        Ok(())
    }
}

/// The companions admission chose, as the cache holds them now: each still the same task
/// generation, not deleted and not finished.
fn carried_companions<K: TaskResource>(ctx: &Context, chosen: &[Waiting]) -> Vec<(Carried, Arc<K>)> {
    let cache = K::cache(&ctx.admission.caches);
    chosen
        .iter()
        .filter_map(|w| {
            let task = cache.get(&ObjectRef::new(&w.name).within(&w.namespace))?;
            let generation = task.meta().generation.unwrap_or(1);
            let same = task.uid().as_deref() == Some(w.uid.as_str()) && generation == w.generation;
            if !same || task.meta().deletion_timestamp.is_some() || is_recorded(&*task) {
                return None;
            }
            let spec = task.task_spec();
            let carried = Carried {
                task: RunnerTask {
                    identity: TaskIdentity {
                        namespace: w.namespace.clone(),
                        name: w.name.clone(),
                        uid: w.uid.clone(),
                        generation,
                    },
                    spec: task.runner_spec(),
                },
                retries: spec.retries(),
                timeout_seconds: spec.timeout_seconds(),
            };
            Some((carried, task))
        })
        .collect()
}

/// What is left of `grace` since `job` was created, if anything.
fn grace_left(job: &Job, grace: Duration) -> Option<Duration> {
    let created = job.metadata.creation_timestamp.as_ref()?.0;
    let age = now().duration_since(created).unsigned_abs();
    grace.checked_sub(age).filter(|left| !left.is_zero())
}

//! Batch Jobs: which task generations each carries (a task finds its Job here, since a batch
//! Job's name is not derived from any one task), and which of them the runner has reported
//! done while the Job still runs, so that each task's status is written as soon as it is
//! done rather than when the whole batch ends.
//!
//! The index is filled by its own watch of the operator's batch Jobs; `poll` lists each
//! running batch's done reports (one store listing per running batch Job, twice a second).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use taskyard_api::{Batch, TaskIdentity, TaskKind};
use taskyard_common::keys::batch_done_prefix;

use crate::job::{LABEL_BATCH, LABEL_MANAGED_BY, MANAGED_BY, members};
use crate::jobstate::{JobState, job_state};
use crate::reconcile::Context;

/// How often the done reports of running batches are listed.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// A task generation: uid and generation.
type Generation = (String, i64);

/// One batch Job as the index keeps it: without its Pod template (the task list in its
/// environment is in the annotation too).
pub struct BatchJob {
    pub job: Arc<Job>,
    pub members: Vec<(TaskKind, TaskIdentity)>,
    /// The members the runner reported done.
    done: HashSet<Generation>,
    /// Still listed after a relisting of the watch began.
    stale: bool,
}

#[derive(Default)]
struct State {
    jobs: HashMap<String, BatchJob>,
    member_of: HashMap<Generation, String>,
}

/// The index of the operator's batch Jobs.
#[derive(Default)]
pub struct Batches {
    state: RwLock<State>,
}

impl Batches {
    /// The batch Job that carries this task generation, if any.
    pub fn job_of(&self, uid: &str, generation: i64) -> Option<Arc<Job>> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let name = state.member_of.get(&(uid.to_string(), generation))?;
        Some(state.jobs.get(name)?.job.clone())
    }

    /// Whether the runner of batch `job` reported this task generation done.
    pub fn is_done(&self, job: &str, uid: &str, generation: i64) -> bool {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state
            .jobs
            .get(job)
            .is_some_and(|b| b.done.contains(&(uid.to_string(), generation)))
    }

    /// Adds or updates a batch Job (keeping what is known of its done members).
    pub fn apply(&self, mut job: Job) {
        let Some(name) = job.metadata.name.clone() else {
            return;
        };
        let carried = members(&job);
        if let Some(spec) = job.spec.as_mut() {
            spec.template = Default::default();
        }
        job.metadata.managed_fields = None;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        for (_, id) in &carried {
            state.member_of.insert((id.uid.clone(), id.generation), name.clone());
        }
        let done = state.jobs.remove(&name).map(|b| b.done).unwrap_or_default();
        state.jobs.insert(
            name,
            BatchJob {
                job: Arc::new(job),
                members: carried,
                done,
                stale: false,
            },
        );
    }

    /// Forgets a deleted batch Job.
    pub fn remove(&self, name: &str) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if let Some(batch) = state.jobs.remove(name) {
            for (_, id) in batch.members {
                let key = (id.uid, id.generation);
                if state.member_of.get(&key).is_some_and(|n| n == name) {
                    state.member_of.remove(&key);
                }
            }
        }
    }

    /// A relisting begins: what it does not list again is gone.
    fn relisting(&self) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.jobs.values_mut().for_each(|b| b.stale = true);
    }

    fn relisted(&self) {
        let stale: Vec<String> = {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            state
                .jobs
                .iter()
                .filter(|(_, b)| b.stale)
                .map(|(n, _)| n.clone())
                .collect()
        };
        stale.iter().for_each(|name| self.remove(name));
    }

    /// The running batch Jobs: name and where their runner reports.
    fn running(&self) -> Vec<(String, Batch)> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state
            .jobs
            .iter()
            .filter(|(_, b)| job_state(&b.job) == JobState::Running)
            .map(|(name, _)| {
                let batch = Batch {
                    done_prefix: batch_done_prefix(name),
                };
                (name.clone(), batch)
            })
            .collect()
    }

    /// Records reports of batch `job`; returns the members newly reported done.
    pub fn mark_done(&self, job: &str, reported: &[Generation]) -> Vec<(TaskKind, TaskIdentity)> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let Some(batch) = state.jobs.get_mut(job) else {
            return Vec::new();
        };
        let mut newly = Vec::new();
        for generation in reported {
            if batch.done.insert(generation.clone())
                && let Some(member) = batch
                    .members
                    .iter()
                    .find(|(_, id)| id.uid == generation.0 && id.generation == generation.1)
            {
                newly.push(member.clone());
            }
        }
        newly
    }
}

/// Keeps the index in step with the operator's batch Jobs, until the operator stops.
pub async fn watch(client: kube::Client, namespace: String, batches: Arc<Batches>) {
    let jobs = Api::<Job>::namespaced(client, &namespace);
    let selector = format!("{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_BATCH}=true");
    let mut events = watcher(jobs, watcher::Config::default().labels(&selector))
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => batches.relisting(),
            Ok(watcher::Event::InitApply(job) | watcher::Event::Apply(job)) => batches.apply(job),
            Ok(watcher::Event::InitDone) => batches.relisted(),
            Ok(watcher::Event::Delete(job)) => {
                if let Some(name) = &job.metadata.name {
                    batches.remove(name);
                }
            }
            Err(e) => tracing::warn!("cannot watch batch Jobs: {e}"),
        }
    }
}

/// Lists the done reports of every running batch, and wakes each newly done task, whose
/// reconcile then reads its result and writes its status.
pub async fn poll(ctx: Arc<Context>) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for (name, batch) in ctx.batches.running() {
            let keys: Result<Vec<String>, _> = ctx.store.list(&batch.done_prefix).try_collect().await;
            let keys = match keys {
                Ok(keys) => keys,
                Err(e) => {
                    tracing::warn!(job = %name, "cannot list the batch's done reports: {e}");
                    continue;
                }
            };
            let reported: Vec<Generation> = keys.iter().filter_map(|k| batch.parse_done_key(k)).collect();
            for (kind, id) in ctx.batches.mark_done(&name, &reported) {
                ctx.admission.wake_task(kind, &id.namespace, &id.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_job(name: &str, members: &[(&str, i64)], running: bool) -> Job {
        let ids: Vec<TaskIdentity> = members
            .iter()
            .map(|(uid, generation)| TaskIdentity {
                namespace: "ns".into(),
                name: format!("task-{uid}"),
                uid: uid.to_string(),
                generation: *generation,
            })
            .collect();
        let status = if running {
            "{active: 1}"
        } else {
            "{succeeded: 1, conditions: [{type: Complete, status: 'True'}]}"
        };
        let yaml = format!(
            "metadata:\n  name: {name}\n  labels: {{taskyard.dev/kind: hashtask, taskyard.dev/batch: 'true'}}\n  \
             annotations: {{taskyard.dev/tasks: '{}'}}\nstatus: {status}\n",
            serde_json::to_string(&ids).unwrap()
        );
        serde_yaml::from_str(&yaml).unwrap()
    }

    #[test]
    fn a_member_finds_its_batch_and_its_done_report() {
        let batches = Batches::default();
        batches.apply(batch_job("b1", &[("a", 1), ("b", 2)], true));
        assert_eq!(batches.job_of("a", 1).unwrap().metadata.name.as_deref(), Some("b1"));
        assert!(batches.job_of("a", 2).is_none(), "another generation is not carried");
        assert_eq!(batches.running().len(), 1);
        let newly = batches.mark_done("b1", &[("b".into(), 2), ("x".into(), 1)]);
        assert_eq!(newly.len(), 1, "only members count: {newly:?}");
        assert_eq!(newly[0].1.name, "task-b");
        assert!(batches.mark_done("b1", &[("b".into(), 2)]).is_empty(), "reported once");
        assert!(batches.is_done("b1", "b", 2));
        assert!(!batches.is_done("b1", "a", 1));
        // An update of the Job keeps what was reported.
        batches.apply(batch_job("b1", &[("a", 1), ("b", 2)], false));
        assert!(batches.is_done("b1", "b", 2));
        assert!(batches.running().is_empty());
    }

    #[test]
    fn a_relisting_forgets_jobs_it_does_not_list() {
        let batches = Batches::default();
        batches.apply(batch_job("b1", &[("a", 1)], true));
        batches.apply(batch_job("b2", &[("c", 1)], true));
        batches.relisting();
        batches.apply(batch_job("b2", &[("c", 1)], true));
        batches.relisted();
        assert!(batches.job_of("a", 1).is_none());
        assert!(batches.job_of("c", 1).is_some());
        batches.remove("b2");
        assert!(batches.job_of("c", 1).is_none());
    }
}

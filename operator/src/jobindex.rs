//! The operator's runner Jobs, indexed in memory from their own watch, so that admission
//! decides without asking the API server (and without holding a lock across a call to it):
//! how many Jobs run, which task generations have a Job, and which batch carries a task (a
//! batch Job's name is not derived from any one task). Jobs this operator has decided to
//! create but not yet created hold a reservation, so no two decisions count one slot twice.
//!
//! For batches it also keeps which tasks the runner reported done while the Job still runs
//! (`poll` lists each running batch's reports), so that each task's status is written as soon
//! as it is done rather than when the whole batch ends.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use taskyard_api::{Batch, DoneReport, TaskIdentity, TaskKind};
use taskyard_common::keys::batch_report_key;

use crate::job::{LABEL_MANAGED_BY, MANAGED_BY, is_batch, members};
use crate::jobstate::{JobState, job_state};
use crate::reconcile::Context;

/// How often the done reports of running batches are read.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// A report lists at most a batch's tasks, some 40 bytes each.
const MAX_REPORT_BYTES: u64 = 1 << 20;

/// A task generation: uid and generation.
pub type Generation = (String, i64);

/// One runner Job as the index keeps it: without its Pod template (the tasks in its
/// environment are in its labels or annotation too).
struct Entry {
    job: Arc<Job>,
    members: Vec<(TaskKind, TaskIdentity)>,
    batch: bool,
    running: bool,
    /// The members the runner reported done (batches).
    done: HashSet<Generation>,
    /// Still listed after a relisting of the watch began.
    stale: bool,
}

impl Entry {
    /// Whether the Job holds one of the `maxRunningJobs` slots. A batch whose tasks have all
    /// reported done gives its slot back at once: its Pod's exit and the Job controller's
    /// noticing took 3-8 s under a burst, while the next batch waited.
    fn holds_slot(&self) -> bool {
        self.running && !(self.batch && self.all_done())
    }

    /// `done` holds members only (see `mark_done`), so counting is enough.
    fn all_done(&self) -> bool {
        self.done.len() == self.members.len()
    }
}

#[derive(Default)]
struct State {
    jobs: HashMap<String, Entry>,
    /// The Jobs that carry each task generation.
    member_of: HashMap<Generation, Vec<String>>,
    /// The Jobs that carry any generation of each task (by uid).
    by_uid: HashMap<String, Vec<String>>,
    /// How many Jobs hold a slot.
    running: usize,
}

/// Slots and task generations promised to Jobs being created.
#[derive(Default)]
struct Reserved {
    slots: usize,
    tasks: HashSet<Generation>,
}

/// The index of the operator's runner Jobs.
#[derive(Default)]
pub struct JobIndex {
    state: RwLock<State>,
    reserved: Mutex<Reserved>,
    /// The first listing is in: a task missing from the index has no Job.
    synced: AtomicBool,
    /// Told when a runner Job finishes or goes: a slot is free.
    pub freed: tokio::sync::Notify,
}

/// A decision's promise of one runner slot to these task generations, kept until the Job
/// is created (then the index lists it) or its creation failed.
pub struct Reservation {
    index: Arc<JobIndex>,
    tasks: Vec<Generation>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut reserved = self.index.reserved.lock().unwrap_or_else(|e| e.into_inner());
        reserved.slots -= 1;
        for task in &self.tasks {
            reserved.tasks.remove(task);
        }
    }
}

impl Reservation {
    /// The Job exists: the index lists it from now on, and the reservation ends. The watch
    /// may have brought a newer state of it already, which stays.
    pub fn created(self, job: Job) {
        let known = job
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| self.index.get(n).is_some());
        if !known {
            self.index.apply(job);
        }
    }
}

impl JobIndex {
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Says the index is complete (the first listing is in).
    pub fn mark_synced(&self) {
        self.synced.store(true, Ordering::Release);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Unfinished runner Jobs, and those being created.
    pub fn running(&self) -> usize {
        self.read().running + self.reserved.lock().unwrap_or_else(|e| e.into_inner()).slots
    }

    /// Whether the task generation has its Job: one of its own (finished or not), a running
    /// batch, or one being created. A task that a finished batch left without a result has
    /// none: it needs one.
    pub fn has_job(&self, task: &Generation) -> bool {
        if self
            .reserved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tasks
            .contains(task)
        {
            return true;
        }
        let state = self.read();
        state.member_of.get(task).is_some_and(|names| {
            names
                .iter()
                .filter_map(|n| state.jobs.get(n))
                .any(|e| !e.batch || e.running)
        })
    }

    /// Whether any Job carries or carried the task generation (then it joins no batch).
    pub fn ever_carried(&self, task: &Generation) -> bool {
        self.reserved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tasks
            .contains(task)
            || self.read().member_of.contains_key(task)
    }

    /// Promises one slot to these task generations until the Job is created.
    pub fn reserve(self: &Arc<Self>, tasks: Vec<Generation>) -> Reservation {
        let mut reserved = self.reserved.lock().unwrap_or_else(|e| e.into_inner());
        reserved.slots += 1;
        reserved.tasks.extend(tasks.iter().cloned());
        Reservation {
            index: self.clone(),
            tasks,
        }
    }

    /// A runner Job by name.
    pub fn get(&self, name: &str) -> Option<Arc<Job>> {
        self.read().jobs.get(name).map(|e| e.job.clone())
    }

    /// Every runner Job of a task, across its generations (batches included).
    pub fn jobs_of(&self, uid: &str) -> Vec<Arc<Job>> {
        let state = self.read();
        let names = state.by_uid.get(uid).map(Vec::as_slice).unwrap_or_default();
        names
            .iter()
            .filter_map(|n| state.jobs.get(n))
            .map(|e| e.job.clone())
            .collect()
    }

    /// The batch Job that carries this task generation, if any.
    pub fn batch_of(&self, uid: &str, generation: i64) -> Option<Arc<Job>> {
        let state = self.read();
        let names = state.member_of.get(&(uid.to_string(), generation))?;
        names
            .iter()
            .filter_map(|n| state.jobs.get(n))
            .find(|e| e.batch)
            .map(|e| e.job.clone())
    }

    /// Whether the runner of batch `job` reported this task generation done.
    pub fn is_done(&self, job: &str, uid: &str, generation: i64) -> bool {
        self.read()
            .jobs
            .get(job)
            .is_some_and(|e| e.done.contains(&(uid.to_string(), generation)))
    }

    /// Adds or updates a runner Job (keeping what is known of its done members). Returns
    /// whether its tasks have something to look at: a Job of one task (its status counts the
    /// Job's runs), or a batch that is new or ended. A batch's other changes would wake every
    /// task it carries for nothing.
    pub fn apply(&self, mut job: Job) -> bool {
        let Some(name) = job.metadata.name.clone() else {
            return false;
        };
        let carried = members(&job);
        if let Some(spec) = job.spec.as_mut() {
            spec.template = Default::default();
        }
        job.metadata.managed_fields = None;
        let running = job_state(&job) == JobState::Running;
        let batch = is_batch(&job);
        let mut state = self.write();
        let mut news = !batch;
        let (done, held) = match state.jobs.remove(&name) {
            Some(old) => {
                news |= old.running != running;
                let held = old.holds_slot();
                state.running -= usize::from(held);
                (old.done, held)
            }
            None => {
                news = true;
                for (_, id) in &carried {
                    let names = state.member_of.entry((id.uid.clone(), id.generation)).or_default();
                    names.push(name.clone());
                    state.by_uid.entry(id.uid.clone()).or_default().push(name.clone());
                }
                (HashSet::new(), false)
            }
        };
        let entry = Entry {
            job: Arc::new(job),
            members: carried,
            batch,
            running,
            done,
            stale: false,
        };
        state.running += usize::from(entry.holds_slot());
        if held && !entry.holds_slot() {
            self.freed.notify_one();
        }
        state.jobs.insert(name, entry);
        news
    }

    /// Forgets a deleted runner Job.
    pub fn remove(&self, name: &str) {
        let mut state = self.write();
        let Some(entry) = state.jobs.remove(name) else {
            return;
        };
        state.running -= usize::from(entry.holds_slot());
        if entry.holds_slot() {
            self.freed.notify_one();
        }
        for (_, id) in entry.members {
            if let Some(names) = state.by_uid.get_mut(&id.uid) {
                names.retain(|n| n != name);
                if names.is_empty() {
                    state.by_uid.remove(&id.uid);
                }
            }
            let key = (id.uid, id.generation);
            if let Some(names) = state.member_of.get_mut(&key) {
                names.retain(|n| n != name);
                if names.is_empty() {
                    state.member_of.remove(&key);
                }
            }
        }
    }

    /// A relisting begins: what it does not list again is gone.
    fn relisting(&self) {
        self.write().jobs.values_mut().for_each(|e| e.stale = true);
    }

    fn relisted(&self) {
        let stale: Vec<String> = {
            let state = self.read();
            state
                .jobs
                .iter()
                .filter(|(_, e)| e.stale)
                .map(|(n, _)| n.clone())
                .collect()
        };
        stale.iter().for_each(|name| self.remove(name));
    }

    /// The running batch Jobs: name and where their runner reports.
    fn running_batches(&self) -> Vec<(String, Batch)> {
        self.read()
            .jobs
            .iter()
            .filter(|(_, e)| e.batch && e.holds_slot())
            .map(|(name, _)| {
                let batch = Batch {
                    report_key: batch_report_key(name),
                };
                (name.clone(), batch)
            })
            .collect()
    }

    /// Records reports of batch `job`; returns the members newly reported done.
    pub fn mark_done(&self, job: &str, reported: &[Generation]) -> Vec<(TaskKind, TaskIdentity)> {
        let mut state = self.write();
        let Some(entry) = state.jobs.get_mut(job) else {
            return Vec::new();
        };
        let held = entry.holds_slot();
        let mut newly = Vec::new();
        for generation in reported {
            let member = entry
                .members
                .iter()
                .find(|(_, id)| id.uid == generation.0 && id.generation == generation.1);
            // A generation the batch does not carry is ignored: it would make `all_done` lie.
            if let Some(member) = member
                && entry.done.insert(generation.clone())
            {
                newly.push(member.clone());
            }
        }
        if held && !entry.holds_slot() {
            state.running -= 1;
            self.freed.notify_one();
        }
        newly
    }
}

/// Keeps the index in step with the operator's runner Jobs, until the operator stops, and
/// sends the tasks of every changed Job to their reconcile, which so always finds the index
/// at least as new as the change it is told of.
pub async fn watch(ctx: Arc<Context>) {
    let index = &ctx.job_index;
    let jobs = Api::<Job>::namespaced(ctx.client.clone(), &ctx.settings.namespace);
    let selector = format!("{LABEL_MANAGED_BY}={MANAGED_BY}");
    let mut events = watcher(jobs, watcher::Config::default().labels(&selector))
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => index.relisting(),
            Ok(watcher::Event::InitApply(job)) => {
                index.apply(job);
            }
            Ok(watcher::Event::Apply(job)) => {
                let carried = members(&job);
                if index.apply(job) {
                    wake(&ctx, carried);
                }
            }
            Ok(watcher::Event::InitDone) => {
                index.relisted();
                index.mark_synced();
            }
            Ok(watcher::Event::Delete(job)) => {
                if let Some(name) = &job.metadata.name {
                    index.remove(name);
                }
                wake(&ctx, members(&job));
            }
            Err(e) => tracing::warn!("cannot watch runner Jobs: {e}"),
        }
    }
}

fn wake(ctx: &Context, tasks: Vec<(TaskKind, TaskIdentity)>) {
    for (kind, id) in tasks {
        ctx.admission.wake_task(kind, &id.namespace, &id.name);
    }
}

/// Wakes the heads of the line whenever a runner Job finishes or goes (a batch's last task
/// may have been recorded while its Pod was still exiting).
pub async fn wake_on_free_slots(ctx: Arc<Context>) {
    loop {
        ctx.job_index.freed.notified().await;
        ctx.admission.wake_heads().await;
    }
}

/// Reads the done report of every running batch, and wakes each newly done task, whose
/// reconcile then reads its result and writes its status.
pub async fn poll(ctx: Arc<Context>) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for (name, batch) in ctx.job_index.running_batches() {
            let report = match ctx.store.get(&batch.report_key, MAX_REPORT_BYTES).await {
                Ok(Some(body)) => serde_json::from_slice::<DoneReport>(&body),
                // Nothing done yet.
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(job = %name, "cannot read the batch's done report: {e}");
                    continue;
                }
            };
            let reported = match report {
                Ok(report) => report.generations(),
                Err(e) => {
                    // Its tasks' results are read when the Job ends.
                    tracing::warn!(job = %name, "the batch's done report is not one: {e}");
                    continue;
                }
            };
            for (kind, id) in ctx.job_index.mark_done(&name, &reported) {
                ctx.admission.wake_task(kind, &id.namespace, &id.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNNING: &str = "{active: 1}";
    const FAILED: &str = "{failed: 1, conditions: [{type: Failed, status: 'True', reason: BackoffLimitExceeded}]}";

    fn batch_job(name: &str, members: &[(&str, i64)], status: &str) -> Job {
        let ids: Vec<TaskIdentity> = members
            .iter()
            .map(|(uid, generation)| TaskIdentity {
                namespace: "ns".into(),
                name: format!("task-{uid}"),
                uid: uid.to_string(),
                generation: *generation,
            })
            .collect();
        let yaml = format!(
            "metadata:\n  name: {name}\n  labels: {{taskyard.dev/kind: hashtask, taskyard.dev/batch: 'true'}}\n  \
             annotations: {{taskyard.dev/tasks: '{}'}}\nstatus: {status}\n",
            serde_json::to_string(&ids).unwrap()
        );
        serde_yaml::from_str(&yaml).unwrap()
    }

    fn own_job(uid: &str, status: &str) -> Job {
        serde_yaml::from_str(&format!(
            "metadata:\n  name: j-{uid}\n  labels: {{taskyard.dev/kind: hashtask, taskyard.dev/namespace: ns, \
             taskyard.dev/uid: {uid}, taskyard.dev/generation: '1'}}\n  annotations: {{taskyard.dev/task: {uid}}}\n\
             status: {status}\n"
        ))
        .unwrap()
    }

    fn g(uid: &str) -> Generation {
        (uid.to_string(), 1)
    }

    #[test]
    fn a_member_finds_its_batch_and_its_done_report() {
        let index = JobIndex::default();
        assert!(
            index.apply(batch_job("b1", &[("a", 1), ("b", 2)], RUNNING)),
            "a new batch wakes its tasks"
        );
        assert!(
            !index.apply(batch_job("b1", &[("a", 1), ("b", 2)], RUNNING)),
            "a batch that runs on does not"
        );
        assert_eq!(index.batch_of("a", 1).unwrap().metadata.name.as_deref(), Some("b1"));
        assert!(index.batch_of("a", 2).is_none(), "another generation is not carried");
        assert_eq!(index.running_batches().len(), 1);
        let newly = index.mark_done("b1", &[("b".into(), 2), ("x".into(), 1)]);
        assert_eq!(newly.len(), 1, "only members count: {newly:?}");
        assert_eq!(newly[0].1.name, "task-b");
        assert!(index.mark_done("b1", &[("b".into(), 2)]).is_empty(), "reported once");
        assert!(index.is_done("b1", "b", 2));
        assert!(!index.is_done("b1", "a", 1));
        // An update of the Job keeps what was reported.
        assert!(
            index.apply(batch_job("b1", &[("a", 1), ("b", 2)], FAILED)),
            "an ended one does"
        );
        assert!(index.is_done("b1", "b", 2));
        assert!(index.running_batches().is_empty());
    }

    #[test]
    fn it_counts_running_jobs_and_knows_which_tasks_still_need_one() {
        let index = Arc::new(JobIndex::default());
        index.apply(batch_job("running", &[("a", 1), ("b", 1)], RUNNING));
        index.apply(batch_job("crashed", &[("c", 1)], FAILED));
        index.apply(own_job("d", FAILED));
        assert!(index.apply(own_job("e", RUNNING)));
        assert!(
            index.apply(own_job("e", RUNNING)),
            "a task's own Job wakes it at every change"
        );
        assert_eq!(index.running(), 2);
        assert!(
            index.has_job(&g("a")) && index.has_job(&g("b")),
            "a running batch's tasks have their Job"
        );
        assert!(!index.has_job(&g("c")), "a task a crashed batch left needs one");
        assert!(index.ever_carried(&g("c")), "but it joins no batch");
        assert!(index.has_job(&g("d")), "a task's own Job is its Job, finished or not");
        // The crashed batch's task runs alone now.
        index.apply(own_job("c", RUNNING));
        assert!(index.has_job(&g("c")));
        assert_eq!(index.running(), 3);
        // The running batch finishes; then goes.
        index.apply(batch_job("running", &[("a", 1), ("b", 1)], FAILED));
        assert_eq!(index.running(), 2);
        assert_eq!(index.jobs_of("c").len(), 2, "its batch and its own Job");
        assert!(index.get("j-c").is_some());
        index.remove("running");
        assert!(!index.ever_carried(&g("a")));
        assert!(index.jobs_of("a").is_empty());
        assert_eq!(index.running(), 2);
    }

    #[tokio::test]
    async fn a_batch_whose_tasks_all_reported_gives_its_slot_back_before_its_pod_exits() {
        const COMPLETE: &str = "{succeeded: 1, conditions: [{type: Complete, status: 'True'}]}";
        let index = JobIndex::default();
        index.apply(batch_job("b1", &[("a", 1), ("b", 1)], RUNNING));
        index.apply(own_job("c", RUNNING));
        index.mark_done("b1", &[("a".into(), 1), ("a".into(), 2), ("x".into(), 1)]);
        assert_eq!(index.running(), 2, "one task still runs, whatever else is reported");
        index.mark_done("b1", &[("b".into(), 1)]);
        assert_eq!(index.running(), 1, "every task reported: the slot is free");
        tokio::time::timeout(Duration::from_secs(1), index.freed.notified())
            .await
            .expect("the heads of the line are told");
        assert!(index.running_batches().is_empty(), "nothing left to poll");
        assert!(index.has_job(&g("a")), "its tasks still have their Job");
        // The Job's own end, and its deletion, do not give the slot back twice.
        index.apply(batch_job("b1", &[("a", 1), ("b", 1)], COMPLETE));
        assert_eq!(index.running(), 1);
        index.remove("b1");
        assert_eq!(index.running(), 1);
    }

    #[test]
    fn a_reservation_holds_a_slot_and_its_tasks_until_the_job_exists_or_fails() {
        let index = Arc::new(JobIndex::default());
        let reservation = index.reserve(vec![g("a"), g("b")]);
        assert_eq!(index.running(), 1);
        assert!(index.has_job(&g("b")) && index.ever_carried(&g("b")));
        drop(reservation);
        assert_eq!(index.running(), 0, "a failed creation gives the slot back");
        assert!(!index.has_job(&g("a")));
        let reservation = index.reserve(vec![g("a")]);
        reservation.created(own_job("a", RUNNING));
        assert_eq!(index.running(), 1, "the Job itself counts now, once");
        assert!(index.has_job(&g("a")));
    }

    #[test]
    fn a_relisting_forgets_jobs_it_does_not_list() {
        let index = JobIndex::default();
        index.apply(batch_job("b1", &[("a", 1)], RUNNING));
        index.apply(batch_job("b2", &[("c", 1)], RUNNING));
        index.relisting();
        index.apply(batch_job("b2", &[("c", 1)], RUNNING));
        index.relisted();
        assert!(index.batch_of("a", 1).is_none());
        assert!(index.batch_of("c", 1).is_some());
        assert_eq!(index.running(), 1);
        index.remove("b2");
        assert!(index.batch_of("c", 1).is_none());
        assert_eq!(index.running(), 0);
    }
}

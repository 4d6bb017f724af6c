//! Admission of runner Jobs: at most `maxRunningJobs` unfinished runner Jobs across the
//! cluster; the other tasks wait. The queue is fair across namespaces: they take turns (the
//! namespace served least recently goes first), and within a namespace it is first come
//! first served by creation time. A task's `queuePosition` is its place in its namespace's
//! line, which only goes down: fairness lets a newcomer from a quiet namespace go ahead of a
//! busy one, so a position counted across namespaces could go up.
//!
//! A freed slot wakes only the heads of the line; the positions of the rest are refreshed by
//! `refresh`, at a bounded rate. A task whose Job cannot be created backs off out of the line
//! and fails after `MAX_JOB_CREATE_TRIES`.
//!
//! The line is derived from the operator's caches of all three kinds, not from the tasks
//! that reconciles happened to look at so far: a task's position counts every older task that
//! has no Job yet, seen by a reconcile or not, so a position never goes up because an older
//! task was reconciled late. Creation times have one-second resolution; within a second the
//! order in which the operator first saw the tasks decides, so a task created later never
//! lands ahead of one that already has a position.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::runtime::reflector;
use taskyard_api::{HashTask, ImageTask, TaskKind, TaskSpecCommon, TextTask};
use taskyard_common::status::TaskStatus;
use tokio::sync::mpsc::UnboundedSender;

use crate::cache::TaskCache;
use crate::jobindex::{Generation, JobIndex, Reservation};
use crate::pacing::{Looks, Pacing};
use crate::task::{TaskResource, is_recorded};

/// How long an admission waits for the caches' first listing (only right after start).
const CACHE_SYNC_WAIT: Duration = Duration::from_secs(10);
/// Tries to create a task's runner Job before the task fails.
pub const MAX_JOB_CREATE_TRIES: u32 = 5;
/// The first wait after a failed Job creation; it doubles with every failure.
const JOB_CREATE_BACKOFF: Duration = Duration::from_secs(5);
/// How often `refresh` looks at the line, and how many stale positions it refreshes each time.
const REFRESH_EVERY: Duration = Duration::from_secs(5);
const REFRESH_AT_MOST: usize = 50;
/// How long a built line is reused by later decisions.
const LINE_REUSE: Duration = Duration::from_millis(250);

/// A task that has no runner Job for its generation yet and has not finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub created: jiff::Timestamp,
    pub uid: String,
    pub kind: TaskKind,
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    /// The queue position its status shows for this generation, if any.
    pub shown: Option<u32>,
    /// Its status says a Job of this generation runs.
    pub running: bool,
}

impl Waiting {
    pub fn of<K: TaskResource>(task: &K) -> Waiting {
        let created = task.meta().creation_timestamp.as_ref();
        let current = task
            .task_status()
            .map(|s| s.common())
            .filter(|c| c.observed_generation == task.meta().generation);
        Waiting {
            created: created.map_or(jiff::Timestamp::MIN, |t| t.0),
            uid: task.uid().unwrap_or_default(),
            kind: <K::Spec as TaskSpecCommon>::KIND,
            namespace: task.namespace().unwrap_or_default(),
            name: task.name_any(),
            generation: task.meta().generation.unwrap_or(1),
            shown: current.and_then(|c| c.queue_position),
            running: current.is_some_and(|c| c.phase == Some(taskyard_api::Phase::Running)),
        }
    }
}

/// What admission decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Create the Job now.
    Now,
    /// Wait; 1-based position in the task's namespace's line.
    Wait { position: usize },
}

/// The order in which the operator first saw each waiting task: the tie-break within a
/// creation second.
/// Also when each namespace was last served: the turn order.
#[derive(Debug, Default)]
pub struct Arrivals {
    next: u64,
    seen: HashMap<String, u64>,
    admissions: u64,
    served: HashMap<String, u64>,
    /// The waiting task generations admission has looked at.
    pub looks: Looks,
}

impl Arrivals {
    /// Puts the waiting tasks in line: namespaces take turns, least recently served first
    /// (then the one with the oldest head), and each namespace's own line is oldest first,
    /// then first seen. Tasks seen for the first time together are ordered by uid; tasks no
    /// longer waiting are forgotten.
    pub fn line_up(&mut self, mut waiting: Vec<Waiting>) -> Vec<Waiting> {
        oldest_first(&mut waiting);
        let present: HashSet<&str> = waiting.iter().map(|w| w.uid.as_str()).collect();
        self.seen.retain(|uid, _| present.contains(uid.as_str()));
        self.looks.retain(|uid| present.contains(uid));
        for w in &waiting {
            if !self.seen.contains_key(&w.uid) {
                self.seen.insert(w.uid.clone(), self.next);
                self.next += 1;
            }
        }
        waiting.sort_by_key(|w| (w.created, self.seen[&w.uid]));
        // Each namespace's line, in the order of its head.
        let mut lines: Vec<(String, std::collections::VecDeque<Waiting>)> = Vec::new();
        for w in waiting {
            match lines.iter_mut().find(|(ns, _)| *ns == w.namespace) {
                Some((_, line)) => line.push_back(w),
                None => lines.push((w.namespace.clone(), [w].into())),
            }
        }
        // Stable: among namespaces served equally long ago, the oldest head goes first.
        lines.sort_by_key(|(ns, _)| self.served.get(ns).copied().unwrap_or(0));
        let mut fair = Vec::with_capacity(self.seen.len());
        while !lines.is_empty() {
            for (_, line) in &mut lines {
                fair.extend(line.pop_front());
            }
            lines.retain(|(_, line)| !line.is_empty());
        }
        fair
    }

    /// A task of `namespace` got its Job: the namespace goes to the back of the turns.
    pub fn served(&mut self, namespace: &str) {
        self.admissions += 1;
        self.served.insert(namespace.to_string(), self.admissions);
    }
}

/// A task's place in its own namespace's line, 1-based.
pub fn namespace_position(line: &[Waiting], uid: &str) -> usize {
    let Some(me) = line.iter().find(|w| w.uid == uid) else {
        return line.len() + 1;
    };
    line.iter()
        .take_while(|w| w.uid != uid)
        .filter(|w| w.namespace == me.namespace)
        .count()
        + 1
}

/// Sorts by creation time, the uid breaking ties.
fn oldest_first(waiting: &mut [Waiting]) {
    waiting.sort_by(|a, b| (a.created, &a.uid).cmp(&(b.created, &b.uid)));
}

/// Decides for the task `uid` in the fair `line`, given how many runner Jobs are unfinished
/// now. A task is admitted only if the free slots cover it and every task ahead of it.
pub fn admit(line: &[Waiting], uid: &str, running: usize, max: usize) -> Admit {
    let ahead = line.iter().position(|w| w.uid == uid).unwrap_or(line.len());
    if running + ahead < max {
        Admit::Now
    } else {
        Admit::Wait {
            position: namespace_position(line, uid),
        }
    }
}

/// The waiting tasks of one kind in a cache: not deleted, not finished, and without a runner
/// Job for their generation (`with_job` holds uid and generation of every runner Job).
fn waiting_in<K: TaskResource>(
    cache: &reflector::Store<K>,
    has_job: impl Fn(&Generation) -> bool,
) -> impl Iterator<Item = Waiting> {
    cache.state().into_iter().filter_map(move |task| {
        let generation = task.meta().generation.unwrap_or(1);
        let waiting =
            task.meta().deletion_timestamp.is_none() && !is_recorded(&*task) && !has_job(&(task.uid()?, generation));
        waiting.then(|| Waiting::of(&*task))
    })
}

/// How many tasks of one kind in a cache show a queue position for their generation.
fn queued_in<K: TaskResource>(cache: &reflector::Store<K>) -> usize {
    cache
        .state()
        .iter()
        .filter(|task| {
            task.task_status().is_some_and(|s| {
                s.common().queue_position.is_some() && s.common().observed_generation == task.meta().generation
            })
        })
        .count()
}

/// The operator's caches of the three task kinds.
#[derive(Clone)]
pub struct Caches {
    pub hash: TaskCache<HashTask>,
    pub image: TaskCache<ImageTask>,
    pub text: TaskCache<TextTask>,
}

impl Caches {
    /// Ends when every kind's first listing is in its cache: true; false if a watch ended
    /// first.
    pub async fn synced(&self) -> bool {
        let (hash, image, text) = tokio::join!(self.hash.synced(), self.image.synced(), self.text.synced());
        hash && image && text
    }

    fn waiting(&self, has_job: impl Fn(&Generation) -> bool + Copy) -> Vec<Waiting> {
        waiting_in(&self.hash.store, has_job)
            .chain(waiting_in(&self.image.store, has_job))
            .chain(waiting_in(&self.text.store, has_job))
            .collect()
    }

    /// Caches holding these HashTasks and no other tasks, already synced.
    #[cfg(test)]
    pub(crate) fn of_hash_tasks(tasks: impl IntoIterator<Item = HashTask>) -> Self {
        let (hash, mut writer) = reflector::store::<HashTask>();
        for task in tasks {
            writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(task));
        }
        Caches {
            hash: TaskCache::synced_from(hash),
            image: TaskCache::synced_from(reflector::store().0),
            text: TaskCache::synced_from(reflector::store().0),
        }
    }

    /// The uid of every cached task, of every kind.
    pub fn uids(&self) -> HashSet<String> {
        fn of<K: TaskResource>(cache: &reflector::Store<K>) -> impl Iterator<Item = String> {
            cache.state().into_iter().filter_map(|t| t.uid())
        }
        of(&self.hash.store)
            .chain(of(&self.image.store))
            .chain(of(&self.text.store))
            .collect()
    }

    /// Whether a task generation needs nothing more of a Job: its status records its end, or
    /// the task is gone or runs a newer generation.
    pub fn settled(&self, kind: TaskKind, id: &taskyard_api::TaskIdentity) -> bool {
        fn of<K: TaskResource>(cache: &reflector::Store<K>, id: &taskyard_api::TaskIdentity) -> bool {
            let Some(task) = cache.get(&reflector::ObjectRef::new(&id.name).within(&id.namespace)) else {
                return true;
            };
            task.uid().as_deref() != Some(id.uid.as_str())
                || task.meta().generation.unwrap_or(1) != id.generation
                || is_recorded(&*task)
        }
        match kind {
            TaskKind::HashTask => of(&self.hash.store, id),
            TaskKind::ImageTask => of(&self.image.store, id),
            TaskKind::TextTask => of(&self.text.store, id),
        }
    }

    /// Tasks whose status says they wait for a runner slot: the queue-length metric.
    pub fn queued(&self) -> usize {
        queued_in(&self.hash.store) + queued_in(&self.image.store) + queued_in(&self.text.store)
    }
}

/// Sends a waiting task to its kind's controller for a new look.
pub type Wake = UnboundedSender<(String, String)>;

/// A task whose runner Job could not be created: it stays out of the line until `until`.
#[derive(Debug)]
struct Backoff {
    /// Every failure, for the length of the wait.
    failures: u32,
    /// The failures that count towards `MAX_JOB_CREATE_TRIES`.
    counted: u32,
    until: Instant,
}

/// The admission state shared by every reconcile.
pub struct Admission {
    /// One decision at a time; held for the decision only, never across a call to the API
    /// server (a decision's slot is reserved in the Job index until its Job exists).
    arrivals: std::sync::Mutex<Arrivals>,
    /// The last line built, reused by decisions shortly after (see `line_for`).
    line: std::sync::Mutex<Option<(Instant, Vec<Waiting>)>>,
    jobs: Arc<JobIndex>,
    backoff: std::sync::Mutex<HashMap<String, Backoff>>,
    pub caches: Caches,
    wake: BTreeMap<TaskKind, Wake>,
    max_running: usize,
    max_per_job: usize,
    pacing: Pacing,
}

/// What `Admission::decide` decided.
pub enum Decision {
    /// Create the Job now, then call `Ticket::admitted`; the slot is reserved until then, or
    /// until the ticket is dropped.
    Now(Ticket),
    /// The task generation already has a Job (created by another task's decision, as part of
    /// its batch, and not yet seen by this reconcile).
    Exists,
    /// Wait at this place in the namespace's line; show it once `quiet_for` has passed (a
    /// task new to the line is usually carried by a batch before).
    Wait {
        position: usize,
        quiet_for: Option<Duration>,
    },
    /// Wait; the place shown was written moments ago and stays as it is for now (the
    /// refresher brings it up to date later).
    Hold,
    /// It could start now, but tasks of its kind are arriving right behind it: look again
    /// after this long, and take them along.
    Linger(Duration),
}

impl Decision {
    /// For the debug log.
    pub fn describe(&self) -> String {
        match self {
            Decision::Now(ticket) => format!("start now, with {} companions", ticket.companions.len()),
            Decision::Exists => "its Job exists".into(),
            Decision::Wait { position, quiet_for } => format!("wait at {position}, quiet for {quiet_for:?}"),
            Decision::Hold => "wait, place shown lately".into(),
            Decision::Linger(wait) => format!("linger {wait:?}"),
        }
    }
}

/// The right to create one Job, for the task and the companions it carries along.
pub struct Ticket {
    reservation: Reservation,
    /// Waiting tasks of the same kind, next in the fair line, that the Job carries too (a
    /// batch): each has shown its queue position for its generation, so its reconcile
    /// validated it.
    pub companions: Vec<Waiting>,
}

impl Ticket {
    /// The Job exists: the index counts it from now on.
    pub fn admitted(self, job: Job) {
        self.reservation.created(job);
    }
}

impl Admission {
    pub fn new(
        caches: Caches,
        jobs: Arc<JobIndex>,
        wake: BTreeMap<TaskKind, Wake>,
        max_running: usize,
        max_per_job: usize,
        pacing: Pacing,
    ) -> Self {
        Admission {
            arrivals: Default::default(),
            line: Default::default(),
            jobs,
            backoff: Default::default(),
            caches,
            wake,
            max_running,
            max_per_job: max_per_job.max(1),
            pacing,
        }
    }

    /// The queue's one entry point: may `me` have a runner Job now? Runner Jobs are counted
    /// from the Job index, where earlier decisions reserved their slots, so a decision always
    /// sees the Jobs that earlier decisions are creating. A task that must run `alone` (its
    /// batch ended without its result) carries no companions.
    pub async fn decide(&self, me: Waiting, alone: bool) -> Decision {
        // Right after start, the older tasks of the other kinds may not be listed yet.
        if tokio::time::timeout(CACHE_SYNC_WAIT, self.caches.synced())
            .await
            .is_err()
        {
            tracing::warn!("task caches not synced after {CACHE_SYNC_WAIT:?}; admitting from what is listed");
        }
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|e| e.into_inner());
        if self.jobs.has_job(&(me.uid.clone(), me.generation)) {
            return Decision::Exists;
        }
        let now = Instant::now();
        let (_, burst) = arrivals.looks.look(me.kind, &me.uid, me.generation, &self.pacing, now);
        let line = self.line_for(&mut arrivals, &me);
        match admit(&line, &me.uid, self.jobs.running(), self.max_running) {
            Admit::Now => {
                let room = if alone { 0 } else { self.max_per_job - 1 };
                let looks = &arrivals.looks;
                let validated = |w: &Waiting| w.shown.is_some() || looks.validated(&w.uid, w.generation);
                let companions = companions(&line, &me, validated, |g| self.jobs.ever_carried(g), room);
                if burst && companions.len() < room && arrivals.looks.linger(&me.uid, me.generation) {
                    return Decision::Linger(self.pacing.linger);
                }
                let tasks = std::iter::once(&me)
                    .chain(&companions)
                    .map(|w| (w.uid.clone(), w.generation))
                    .collect();
                // The namespaces of its tasks had their turn.
                for w in std::iter::once(&me).chain(&companions) {
                    arrivals.served(&w.namespace);
                }
                Decision::Now(Ticket {
                    reservation: self.jobs.reserve(tasks),
                    companions,
                })
            }
            Admit::Wait { position } => {
                let moved = me.shown.is_some_and(|shown| shown as usize != position);
                if moved
                    && arrivals
                        .looks
                        .shown_lately(&me.uid, me.generation, self.pacing.position_hold, now)
                {
                    return Decision::Hold;
                }
                let waited = arrivals.looks.since_first(&me.uid, me.generation, now);
                let quiet_for = self
                    .pacing
                    .queued_grace
                    .checked_sub(waited)
                    .filter(|left| me.shown.is_none() && !left.is_zero());
                Decision::Wait { position, quiet_for }
            }
        }
    }

    /// The fair line with `me` in it. Building it costs O(n log n) in the waiting tasks, and a
    /// burst makes every waiting task decide again and again, so a line built less than
    /// `LINE_REUSE` ago is reused when it holds `me`, less the tasks that got a Job or back
    /// off since. A task new to the line builds it afresh, so its place is exact.
    fn line_for(&self, arrivals: &mut Arrivals, me: &Waiting) -> Vec<Waiting> {
        let mut cached = self.line.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((built, line)) = cached.as_ref()
            && built.elapsed() < LINE_REUSE
            && line.iter().any(|w| w.uid == me.uid)
        {
            let line = line
                .iter()
                .filter(|w| w.uid == me.uid || !self.jobs.has_job(&(w.uid.clone(), w.generation)))
                .cloned()
                .collect();
            return self.without_backoff(line);
        }
        let mut waiting = self.caches.waiting(|g| self.jobs.has_job(g));
        if !waiting.iter().any(|w| w.uid == me.uid) {
            waiting.push(me.clone());
        }
        let line = arrivals.line_up(waiting);
        *cached = Some((Instant::now(), line.clone()));
        self.without_backoff(line)
    }

    /// Sends one task to its kind's controller for a new look.
    pub fn wake_task(&self, kind: TaskKind, namespace: &str, name: &str) {
        if let Some(tx) = self.wake.get(&kind) {
            let _ = tx.send((namespace.to_string(), name.to_string()));
        }
    }

    /// Records that the task generation's place was just written into its status.
    pub fn position_shown(&self, uid: &str, generation: i64) {
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|e| e.into_inner());
        arrivals.looks.shown(uid, generation, Instant::now());
    }

    /// How long `uid` still backs off after a failed Job creation.
    pub fn backing_off(&self, uid: &str) -> Option<Duration> {
        let backoff = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        backoff
            .get(uid)
            .and_then(|b| b.until.checked_duration_since(Instant::now()))
    }

    /// Records that `uid` could not start (its Job was refused, or its source could not be
    /// checked); returns how many refusals that `count` (the API server said no, rather than
    /// being unreachable or overloaded) there were. The task leaves the line for 5 s, then
    /// 10, 20, 40, 80 s, so it does not hold the head while it cannot run.
    pub fn failed_to_start(&self, uid: &str, count: bool) -> u32 {
        let mut backoff = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        let entry = backoff.entry(uid.to_string()).or_insert(Backoff {
            failures: 0,
            counted: 0,
            until: Instant::now(),
        });
        entry.failures += 1;
        entry.counted += u32::from(count);
        entry.until = Instant::now() + JOB_CREATE_BACKOFF * 2u32.pow(entry.failures.min(5) - 1);
        entry.counted
    }

    /// Ends a task's backoff now, as if its time were up.
    #[cfg(test)]
    pub(crate) fn expire_backoff(&self, uid: &str) {
        if let Some(b) = self.backoff.lock().unwrap().get_mut(uid) {
            b.until = Instant::now();
        }
    }

    /// Forgets a task's failures (its Job exists, or it failed for good).
    pub fn forget(&self, uid: &str) {
        self.backoff.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }

    fn without_backoff(&self, mut line: Vec<Waiting>) -> Vec<Waiting> {
        let backoff = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        line.retain(|w| backoff.get(&w.uid).is_none_or(|b| b.until <= now));
        line
    }

    /// The line as the status shows it: tasks not yet running, in fair order.
    async fn line_now(&self) -> Vec<Waiting> {
        let waiting = self
            .caches
            .waiting(|g| self.jobs.has_job(g))
            .into_iter()
            .filter(|w| !w.running)
            .collect();
        let line = self.arrivals.lock().unwrap_or_else(|e| e.into_inner()).line_up(waiting);
        self.without_backoff(line)
    }

    fn wake(&self, tasks: impl IntoIterator<Item = Waiting>) {
        for w in tasks {
            if let Some(tx) = self.wake.get(&w.kind) {
                let _ = tx.send((w.namespace, w.name));
            }
        }
    }

    /// A slot freed: wakes the heads of the line, which may take it. A fixed number of
    /// reconciles however long the line is; `refresh` updates the other positions.
    pub async fn wake_heads(&self) {
        let line = self.line_now().await;
        self.wake(line.into_iter().take(self.max_running));
    }

    /// Runs while the operator leads: every few seconds wakes the heads of the line (a
    /// missed wake-up costs seconds, not forever) and at most `REFRESH_AT_MOST` tasks whose
    /// shown position is stale.
    pub async fn refresh(&self) {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        loop {
            tick.tick().await;
            let line = self.line_now().await;
            self.wake(stale_positions(&line, self.max_running, REFRESH_AT_MOST));
        }
    }
}

/// Up to `room` tasks of `me`'s kind that follow it in the fair `line`, were `validated` by
/// their reconcile (admission looked at them, or they show a queue position for their
/// generation), and were never carried by a Job of that generation.
fn companions(
    line: &[Waiting],
    me: &Waiting,
    validated: impl Fn(&Waiting) -> bool,
    carried: impl Fn(&Generation) -> bool,
    room: usize,
) -> Vec<Waiting> {
    line.iter()
        .skip_while(|w| w.uid != me.uid)
        .skip(1)
        .filter(|w| w.kind == me.kind && validated(w) && !carried(&(w.uid.clone(), w.generation)))
        .take(room)
        .cloned()
        .collect()
}

/// The heads of the line (the first `heads`), and then at most `at_most` tasks whose status
/// shows another position than their place in their namespace's line.
fn stale_positions(line: &[Waiting], heads: usize, at_most: usize) -> Vec<Waiting> {
    let mut places: HashMap<&str, usize> = HashMap::new();
    let mut stale = Vec::new();
    for (i, w) in line.iter().enumerate() {
        let place = places.entry(w.namespace.as_str()).or_insert(0);
        *place += 1;
        let shown_wrong = w.shown.is_some_and(|shown| shown as usize != *place);
        if i < heads || (shown_wrong && stale.len() < heads + at_most) {
            stale.push(w.clone());
        }
    }
    stale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(second: i64, uid: &str) -> Waiting {
        task_in("ns", second, uid)
    }

    fn task_in(namespace: &str, second: i64, uid: &str) -> Waiting {
        Waiting {
            created: jiff::Timestamp::from_second(second).unwrap(),
            uid: uid.into(),
            kind: TaskKind::HashTask,
            namespace: namespace.into(),
            name: uid.into(),
            generation: 1,
            shown: None,
            running: false,
        }
    }

    #[test]
    fn namespaces_take_turns_so_a_burst_does_not_starve_another() {
        let mut arrivals = Arrivals::default();
        let mut a: Vec<Waiting> = (1..=30).map(|i| task_in("a", i, &format!("a{i:02}"))).collect();
        let b = task_in("b", 100, "b1");
        let all = |a: &[Waiting]| a.iter().cloned().chain([b.clone()]).collect::<Vec<_>>();
        // Three slots, all taken: b1 waits first in its namespace's line.
        assert_eq!(
            position(&mut arrivals, &all(&a), "b1", 3, 3),
            Admit::Wait { position: 1 }
        );
        assert_eq!(
            position(&mut arrivals, &all(&a), "a05", 3, 3),
            Admit::Wait { position: 5 }
        );
        // First free slot: a's older head.
        assert_eq!(position(&mut arrivals, &all(&a), "a01", 2, 3), Admit::Now);
        arrivals.served("a");
        a.remove(0);
        // Second free slot: b's turn, ahead of a's 29 others.
        assert_eq!(
            position(&mut arrivals, &all(&a), "a02", 2, 3),
            Admit::Wait { position: 1 }
        );
        assert_eq!(position(&mut arrivals, &all(&a), "b1", 2, 3), Admit::Now);
        arrivals.served("b");
        assert_eq!(position(&mut arrivals, &a, "a02", 2, 3), Admit::Now);
    }

    #[test]
    fn a_position_counts_only_the_tasks_namespace_so_it_only_goes_down() {
        let mut arrivals = Arrivals::default();
        let a: Vec<Waiting> = (1..=5).map(|i| task_in("a", i, &format!("a{i}"))).collect();
        let before: Vec<usize> = {
            let line = arrivals.line_up(a.clone());
            a.iter().map(|w| namespace_position(&line, &w.uid)).collect()
        };
        assert_eq!(before, [1, 2, 3, 4, 5]);
        // Another namespace's tasks arrive, one of them older: a's positions stay.
        let mut more = a.clone();
        more.extend([task_in("b", 0, "b-old"), task_in("c", 9, "c1")]);
        let line = arrivals.line_up(more);
        let after: Vec<usize> = a.iter().map(|w| namespace_position(&line, &w.uid)).collect();
        assert_eq!(after, before);
        assert_eq!(namespace_position(&line, "c1"), 1);
    }

    #[test]
    fn stale_positions_are_the_heads_and_a_bounded_number_of_wrong_ones() {
        let mut line: Vec<Waiting> = (1..=10).map(|i| task_in("a", i, &format!("a{i:02}"))).collect();
        for (i, w) in line.iter_mut().enumerate() {
            // Every task still shows the place it had before the head left.
            w.shown = Some(i as u32 + 2);
        }
        line[9].shown = Some(10);
        let woken: Vec<String> = stale_positions(&line, 2, 3).into_iter().map(|w| w.uid).collect();
        assert_eq!(woken, ["a01", "a02", "a03", "a04", "a05"]);
        let right: Vec<Waiting> = line
            .iter()
            .enumerate()
            .map(|(i, w)| Waiting {
                shown: Some(i as u32 + 1),
                ..w.clone()
            })
            .collect();
        assert_eq!(stale_positions(&right, 1, 50).len(), 1, "only the head");
    }

    #[test]
    fn a_batch_takes_the_next_validated_tasks_of_its_kind_in_fair_order() {
        let mut line: Vec<Waiting> = (1..=6).map(|i| task(i, &format!("t{i}"))).collect();
        for w in &mut line[1..] {
            w.shown = Some(1);
        }
        line[2].shown = None; // not reconciled yet: not validated
        line[3].kind = TaskKind::ImageTask;
        let carried = |g: &Generation| g.0 == "t5";
        let shown = |w: &Waiting| w.shown.is_some();
        let chosen: Vec<String> = companions(&line, &line[0], shown, carried, 10)
            .into_iter()
            .map(|w| w.uid)
            .collect();
        assert_eq!(chosen, ["t2", "t6"]);
        assert_eq!(
            companions(&line, &line[0], shown, carried, 1).len(),
            1,
            "at most the room"
        );
        assert!(
            companions(&line, &line[0], shown, carried, 0).is_empty(),
            "a task alone takes none"
        );
        assert!(
            companions(&line, &line[5], shown, carried, 10).is_empty(),
            "only tasks behind it"
        );
    }

    fn position(arrivals: &mut Arrivals, waiting: &[Waiting], uid: &str, running: usize, max: usize) -> Admit {
        admit(&arrivals.line_up(waiting.to_vec()), uid, running, max)
    }

    #[test]
    fn first_come_first_served_within_the_cap() {
        let mut arrivals = Arrivals::default();
        let all = [task(20, "c"), task(5, "a"), task(10, "b")];
        // Three slots, all taken: everyone waits in creation order.
        assert_eq!(position(&mut arrivals, &all, "c", 3, 3), Admit::Wait { position: 3 });
        assert_eq!(position(&mut arrivals, &all, "a", 3, 3), Admit::Wait { position: 1 });
        // One slot frees: the younger tasks still wait behind the oldest.
        assert_eq!(position(&mut arrivals, &all, "c", 2, 3), Admit::Wait { position: 3 });
        assert_eq!(position(&mut arrivals, &all, "b", 2, 3), Admit::Wait { position: 2 });
        assert_eq!(position(&mut arrivals, &all, "a", 2, 3), Admit::Now);
        // "a" has its Job now and leaves the line.
        let rest = [task(20, "c"), task(10, "b")];
        assert_eq!(position(&mut arrivals, &rest, "c", 3, 3), Admit::Wait { position: 2 });
        assert_eq!(position(&mut arrivals, &rest, "b", 2, 3), Admit::Now);
        assert_eq!(position(&mut arrivals, &[task(20, "c")], "c", 2, 3), Admit::Now);
    }

    #[test]
    fn an_older_task_not_yet_reconciled_counts_ahead() {
        let mut arrivals = Arrivals::default();
        // Only "young" was reconciled, but the cache holds "old" too: one free slot is "old"'s.
        let all = [task(2, "young"), task(1, "old")];
        assert_eq!(
            position(&mut arrivals, &all, "young", 2, 3),
            Admit::Wait { position: 2 }
        );
        assert_eq!(position(&mut arrivals, &all, "old", 2, 3), Admit::Now);
    }

    #[test]
    fn a_task_created_later_in_the_same_second_queues_behind() {
        let mut arrivals = Arrivals::default();
        let first = [task(7, "m"), task(7, "z")];
        assert_eq!(position(&mut arrivals, &first, "m", 1, 1), Admit::Wait { position: 1 });
        assert_eq!(position(&mut arrivals, &first, "z", 1, 1), Admit::Wait { position: 2 });
        // "a" sorts first by uid but arrives later within the same second: behind both.
        let later = [task(7, "m"), task(7, "z"), task(7, "a")];
        assert_eq!(position(&mut arrivals, &later, "z", 1, 1), Admit::Wait { position: 2 });
        assert_eq!(position(&mut arrivals, &later, "a", 1, 1), Admit::Wait { position: 3 });
        // An older task is still older, however late it is seen.
        let older = [task(7, "m"), task(7, "z"), task(7, "a"), task(6, "y")];
        assert_eq!(position(&mut arrivals, &older, "m", 1, 1), Admit::Wait { position: 2 });
    }

    #[test]
    fn a_task_that_leaves_the_line_is_forgotten() {
        let mut arrivals = Arrivals::default();
        arrivals.line_up(vec![task(1, "gone"), task(1, "next")]);
        assert_eq!(position(&mut arrivals, &[task(1, "next")], "next", 0, 1), Admit::Now);
        assert_eq!(arrivals.seen.len(), 1);
    }

    fn hash_task(name: &str, second: i64, finished: bool) -> HashTask {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let spec = taskyard_api::HashTaskSpec {
            source: taskyard_api::HashSource {
                url: Some("https://example.com/f".into()),
                object: None,
            },
            algorithms: vec![taskyard_api::HashAlgorithm::Md5],
            retries: 2,
            timeout_seconds: 600,
        };
        let mut t = HashTask::new(name, spec);
        t.metadata.namespace = Some("ns".into());
        t.metadata.uid = Some(format!("uid-{name}"));
        t.metadata.generation = Some(1);
        t.metadata.creation_timestamp = Some(Time(jiff::Timestamp::from_second(second).unwrap()));
        if finished {
            let mut status = taskyard_api::HashTaskStatus::default();
            status.common.phase = Some(taskyard_api::Phase::Succeeded);
            status.common.observed_generation = Some(1);
            t.status = Some(status);
        }
        t
    }

    #[tokio::test]
    async fn a_freed_slot_wakes_only_the_heads_of_the_line() {
        let caches = Caches::of_hash_tasks(
            [
                ("young", 30, false),
                ("old", 10, false),
                ("done", 5, true),
                ("middle", 20, false),
            ]
            .map(|(name, second, finished)| hash_task(name, second, finished)),
        );
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let admission = Admission::new(
            caches,
            Default::default(),
            [(TaskKind::HashTask, tx)].into_iter().collect(),
            2,
            1,
            Pacing::immediate(),
        );
        admission.wake_heads().await;
        let mut woken = Vec::new();
        while let Ok((_, name)) = rx.try_recv() {
            woken.push(name);
        }
        assert_eq!(woken, ["old", "middle"]);

        // A task whose Job cannot be created leaves the line while it backs off.
        assert_eq!(admission.failed_to_start("uid-old", true), 1);
        assert!(
            admission
                .backing_off("uid-old")
                .is_some_and(|d| d <= JOB_CREATE_BACKOFF)
        );
        admission.wake_heads().await;
        let mut woken = Vec::new();
        while let Ok((_, name)) = rx.try_recv() {
            woken.push(name);
        }
        assert_eq!(woken, ["middle", "young"]);
        assert_eq!(
            admission.failed_to_start("uid-old", false),
            1,
            "an unreachable API server does not count"
        );
        assert_eq!(admission.failed_to_start("uid-old", true), 2);
        admission.forget("uid-old");
        assert_eq!(admission.backing_off("uid-old"), None);
    }

    #[tokio::test]
    async fn with_5000_waiting_tasks_a_freed_slot_wakes_only_the_heads() {
        let caches = Caches::of_hash_tasks((0..5000).map(|i| {
            let mut task = hash_task(&format!("t{i:04}"), i, false);
            task.metadata.namespace = Some(format!("ns{}", i % 7));
            task
        }));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let admission = Admission::new(
            caches,
            Default::default(),
            [(TaskKind::HashTask, tx)].into_iter().collect(),
            10,
            1,
            Pacing::immediate(),
        );
        admission.wake_heads().await;
        let mut woken = Vec::new();
        while let Ok((ns, _)) = rx.try_recv() {
            woken.push(ns);
        }
        // One reconcile per slot, not one per waiting task; the heads of 7 namespaces in turn.
        assert_eq!(woken.len(), 10);
        assert_eq!(woken.iter().collect::<std::collections::BTreeSet<_>>().len(), 7);
        // The refresher's share of a tick is bounded too.
        let line = admission.line_now().await;
        assert_eq!(line.len(), 5000);
        assert!(stale_positions(&line, 10, REFRESH_AT_MOST).len() <= 10 + REFRESH_AT_MOST);
    }

    fn paced(caches: Caches, max_running: usize) -> Admission {
        let pacing = Pacing {
            queued_grace: Duration::from_secs(1),
            linger: Duration::from_millis(300),
            burst_window: Duration::from_secs(10),
            burst_arrivals: 2,
            position_hold: Duration::from_secs(4),
        };
        Admission::new(caches, Default::default(), BTreeMap::new(), max_running, 10, pacing)
    }

    fn companion_names(decision: &Decision) -> Vec<&str> {
        match decision {
            Decision::Now(ticket) => ticket.companions.iter().map(|w| w.name.as_str()).collect(),
            _ => panic!("not admitted"),
        }
    }

    #[tokio::test]
    async fn a_task_in_a_burst_lingers_once_then_takes_the_tasks_that_arrived_behind_it() {
        let tasks = [("a", 10), ("b", 11), ("c", 12), ("d", 13)].map(|(n, s)| hash_task(n, s, false));
        let waiting: Vec<Waiting> = tasks.iter().map(Waiting::of).collect();
        let admission = paced(Caches::of_hash_tasks(tasks), 5);
        // The first of its kind is lone: it starts at once, alone.
        let first = admission.decide(waiting[0].clone(), false).await;
        assert!(companion_names(&first).is_empty());
        drop(first);
        // Right behind it, b could start too, but lingers for what follows.
        let b = admission.decide(waiting[1].clone(), false).await;
        assert!(matches!(b, Decision::Linger(d) if d == Duration::from_millis(300)));
        for w in &waiting[2..] {
            assert!(matches!(admission.decide(w.clone(), false).await, Decision::Linger(_)));
        }
        // Looking again, b takes c and d, which its reconcile validated meanwhile.
        let b = admission.decide(waiting[1].clone(), false).await;
        assert_eq!(companion_names(&b), ["c", "d"]);
        assert!(matches!(
            admission.decide(waiting[2].clone(), false).await,
            Decision::Exists
        ));
        // A task that must run alone never lingers.
        drop(b);
        let alone = admission.decide(waiting[3].clone(), true).await;
        assert!(companion_names(&alone).is_empty());
    }

    #[tokio::test]
    async fn a_task_new_to_the_line_shows_its_place_only_after_the_grace() {
        let tasks = [("a", 10), ("b", 11)].map(|(n, s)| hash_task(n, s, false));
        let mut waiting: Vec<Waiting> = tasks.iter().map(Waiting::of).collect();
        let admission = paced(Caches::of_hash_tasks(tasks), 1);
        let held = admission.decide(waiting[0].clone(), true).await;
        assert!(matches!(held, Decision::Now(_)));
        let Decision::Wait { position, quiet_for } = admission.decide(waiting[1].clone(), false).await else {
            panic!("b must wait for the one slot");
        };
        assert_eq!(position, 1);
        assert!(quiet_for.is_some_and(|d| d > Duration::from_millis(500) && d <= Duration::from_secs(1)));
        // A place already shown (by an earlier leader) is brought up to date at once...
        waiting[1].shown = Some(2);
        let again = admission.decide(waiting[1].clone(), false).await;
        assert!(matches!(
            again,
            Decision::Wait {
                position: 1,
                quiet_for: None
            }
        ));
        // ...but one this operator has just written stays a while, though it moved.
        admission.position_shown(&waiting[1].uid, 1);
        waiting[1].shown = Some(3);
        let held = admission.decide(waiting[1].clone(), false).await;
        assert!(matches!(held, Decision::Hold));
    }
}

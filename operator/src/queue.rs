//! Admission of runner Jobs: at most `maxRunningJobs` unfinished runner Jobs across the
//! cluster; the other tasks wait, first come first served by creation time, with their
//! position in status. When a slot frees, every waiting task is woken to look again.
//!
//! The line is derived from the operator's caches of all three kinds, not from the tasks
//! that reconciles happened to look at so far: a task's position counts every older task that
//! has no Job yet, seen by a reconcile or not, so a position never goes up because an older
//! task was reconciled late. Creation times have one-second resolution; within a second the
//! order in which the operator first saw the tasks decides, so a task created later never
//! lands ahead of one that already has a position.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::reflector;
use taskyard_api::{HashTask, ImageTask, TaskKind, TaskSpecCommon, TextTask};
use taskyard_common::status::TaskStatus;
use tokio::sync::mpsc::UnboundedSender;

use crate::cache::TaskCache;
use crate::task::{TaskResource, is_recorded};

/// How long an admission waits for the caches' first listing (only right after start).
const CACHE_SYNC_WAIT: Duration = Duration::from_secs(10);

/// A task that has no runner Job for its generation yet and has not finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub created: jiff::Timestamp,
    pub uid: String,
    pub kind: TaskKind,
    pub namespace: String,
    pub name: String,
}

impl Waiting {
    pub fn of<K: TaskResource>(task: &K) -> Waiting {
        let created = task.meta().creation_timestamp.as_ref();
        Waiting {
            created: created.map_or(jiff::Timestamp::MIN, |t| t.0),
            uid: task.uid().unwrap_or_default(),
            kind: <K::Spec as TaskSpecCommon>::KIND,
            namespace: task.namespace().unwrap_or_default(),
            name: task.name_any(),
        }
    }
}

/// What admission decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Create the Job now.
    Now,
    /// Wait; 1-based position among the waiting tasks.
    Wait { position: usize },
}

/// The order in which the operator first saw each waiting task: the tie-break within a
/// creation second.
#[derive(Debug, Default)]
pub struct Arrivals {
    next: u64,
    seen: HashMap<String, u64>,
}

impl Arrivals {
    /// Puts the waiting tasks in line: oldest first, then first seen. Tasks seen for the first
    /// time together are ordered by uid; tasks no longer waiting are forgotten.
    pub fn line_up(&mut self, mut waiting: Vec<Waiting>) -> Vec<Waiting> {
        oldest_first(&mut waiting);
        let present: HashSet<&str> = waiting.iter().map(|w| w.uid.as_str()).collect();
        self.seen.retain(|uid, _| present.contains(uid.as_str()));
        for w in &waiting {
            if !self.seen.contains_key(&w.uid) {
                self.seen.insert(w.uid.clone(), self.next);
                self.next += 1;
            }
        }
        waiting.sort_by_key(|w| (w.created, self.seen[&w.uid]));
        waiting
    }
}

/// Sorts by creation time, the uid breaking ties.
fn oldest_first(waiting: &mut [Waiting]) {
    waiting.sort_by(|a, b| (a.created, &a.uid).cmp(&(b.created, &b.uid)));
}

/// Decides for the task `uid` in `line`, given how many runner Jobs are unfinished now. A task
/// is admitted only if the free slots cover it and every task ahead of it.
pub fn admit(line: &[Waiting], uid: &str, running: usize, max: usize) -> Admit {
    let ahead = line.iter().position(|w| w.uid == uid).unwrap_or(line.len());
    if running + ahead < max {
        Admit::Now
    } else {
        Admit::Wait { position: ahead + 1 }
    }
}

/// The waiting tasks of one kind in a cache: not deleted, not finished, and without a runner
/// Job for their generation (`with_job` holds uid and generation of every runner Job).
fn waiting_in<K: TaskResource>(
    cache: &reflector::Store<K>,
    with_job: &HashSet<(String, i64)>,
) -> impl Iterator<Item = Waiting> {
    cache.state().into_iter().filter_map(move |task| {
        let generation = task.meta().generation.unwrap_or(1);
        let waiting = task.meta().deletion_timestamp.is_none()
            && !is_recorded(&*task)
            && !with_job.contains(&(task.uid()?, generation));
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
    /// Ends when every kind's first listing is in its cache.
    pub async fn synced(&self) {
        tokio::join!(self.hash.synced(), self.image.synced(), self.text.synced());
    }

    fn waiting(&self, with_job: &HashSet<(String, i64)>) -> Vec<Waiting> {
        waiting_in(&self.hash.store, with_job)
            .chain(waiting_in(&self.image.store, with_job))
            .chain(waiting_in(&self.text.store, with_job))
            .collect()
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

    /// Tasks whose status says they wait for a runner slot: the queue-length metric.
    pub fn queued(&self) -> usize {
        queued_in(&self.hash.store) + queued_in(&self.image.store) + queued_in(&self.text.store)
    }
}

/// Sends a waiting task to its kind's controller for a new look.
pub type Wake = UnboundedSender<(String, String)>;

/// The admission state shared by every reconcile.
pub struct Admission {
    /// One decision at a time: held from counting the Jobs until the new Job exists.
    pub arrivals: tokio::sync::Mutex<Arrivals>,
    pub caches: Caches,
    pub wake: BTreeMap<TaskKind, Wake>,
}

impl Admission {
    pub fn new(caches: Caches, wake: BTreeMap<TaskKind, Wake>) -> Self {
        Admission {
            arrivals: Default::default(),
            caches,
            wake,
        }
    }

    /// The current line of waiting tasks, `me` included even when the cache lags behind.
    pub async fn line(&self, arrivals: &mut Arrivals, me: Waiting, with_job: &HashSet<(String, i64)>) -> Vec<Waiting> {
        // Right after start, the older tasks of the other kinds may not be listed yet.
        if tokio::time::timeout(CACHE_SYNC_WAIT, self.caches.synced())
            .await
            .is_err()
        {
            tracing::warn!("task caches not synced after {CACHE_SYNC_WAIT:?}; admitting from what is listed");
        }
        let mut waiting = self.caches.waiting(with_job);
        if !waiting.iter().any(|w| w.uid == me.uid) {
            waiting.push(me);
        }
        arrivals.line_up(waiting)
    }

    /// Wakes every waiting task: a slot freed, and positions moved. Oldest first, so that the
    /// head of the line, which may take the slot, does not wait behind the rest.
    pub fn wake_all(&self) {
        let mut waiting = self.caches.waiting(&HashSet::new());
        oldest_first(&mut waiting);
        for w in waiting {
            if let Some(tx) = self.wake.get(&w.kind) {
                let _ = tx.send((w.namespace, w.name));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(second: i64, uid: &str) -> Waiting {
        Waiting {
            created: jiff::Timestamp::from_second(second).unwrap(),
            uid: uid.into(),
            kind: TaskKind::HashTask,
            namespace: "ns".into(),
            name: uid.into(),
        }
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
    async fn a_freed_slot_wakes_the_waiting_tasks_oldest_first() {
        let (hash, mut writer) = reflector::store::<HashTask>();
        for (name, second, finished) in [
            ("young", 30, false),
            ("old", 10, false),
            ("done", 5, true),
            ("middle", 20, false),
        ] {
            writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(hash_task(name, second, finished)));
        }
        let caches = Caches {
            hash: TaskCache::synced_from(hash),
            image: TaskCache::synced_from(reflector::store().0),
            text: TaskCache::synced_from(reflector::store().0),
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let admission = Admission::new(caches, [(TaskKind::HashTask, tx)].into_iter().collect());
        admission.wake_all();
        let mut woken = Vec::new();
        while let Ok((_, name)) = rx.try_recv() {
            woken.push(name);
        }
        assert_eq!(woken, ["old", "middle", "young"]);
    }
}

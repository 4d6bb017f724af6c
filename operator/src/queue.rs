//! Admission of runner Jobs: at most `maxRunningJobs` unfinished runner Jobs across the
//! cluster; the other tasks wait, first come first served by creation time, with their
//! position in status. When a slot frees, every waiting task is woken to look again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use taskyard_api::TaskKind;
use tokio::sync::mpsc::UnboundedSender;

/// A waiting entry not seen by a reconcile for this long belongs to a deleted task.
const STALE_AFTER: Duration = Duration::from_secs(120);

/// Where a task stands in the queue: oldest first, the uid breaking ties.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct QueueKey {
    pub created: jiff::Timestamp,
    pub uid: String,
}

/// A waiting task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiter {
    pub kind: TaskKind,
    pub namespace: String,
    pub name: String,
    seen: Instant,
}

/// The tasks waiting for a slot.
#[derive(Debug, Default)]
pub struct Queue {
    waiting: BTreeMap<QueueKey, Waiter>,
}

/// What admission decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Create the Job now.
    Now,
    /// Wait; 1-based position among the waiting tasks.
    Wait { position: usize },
}

impl Queue {
    /// Decides for one task, given how many runner Jobs are unfinished now. A task is admitted
    /// only if the slots left cover it and every older waiting task.
    pub fn admit(&mut self, key: QueueKey, waiter: (TaskKind, &str, &str), running: usize, max: usize) -> Admit {
        let now = Instant::now();
        self.waiting
            .retain(|k, w| k.uid == key.uid || now.duration_since(w.seen) < STALE_AFTER);
        let ahead = self
            .waiting
            .range(..key.clone())
            .filter(|(k, _)| k.uid != key.uid)
            .count();
        if running + ahead < max {
            self.remove(&key.uid);
            Admit::Now
        } else {
            let (kind, namespace, name) = waiter;
            self.waiting.insert(
                key,
                Waiter {
                    kind,
                    namespace: namespace.into(),
                    name: name.into(),
                    seen: now,
                },
            );
            Admit::Wait { position: ahead + 1 }
        }
    }

    /// Drops a task from the queue (admitted, invalid, deleted).
    pub fn remove(&mut self, uid: &str) {
        self.waiting.retain(|k, _| k.uid != uid);
    }

    pub fn waiters(&self) -> impl Iterator<Item = &Waiter> {
        self.waiting.values()
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

/// Sends a waiting task to its kind's controller for a new look.
pub type Wake = UnboundedSender<(String, String)>;

/// The admission state shared by every reconcile: one decision at a time.
pub struct Admission {
    pub queue: tokio::sync::Mutex<Queue>,
    pub wake: BTreeMap<TaskKind, Wake>,
}

impl Admission {
    /// Wakes every waiting task: a slot freed, and positions moved.
    pub async fn wake_all(&self) {
        let queue = self.queue.lock().await;
        for w in queue.waiters() {
            if let Some(tx) = self.wake.get(&w.kind) {
                let _ = tx.send((w.namespace.clone(), w.name.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(second: i64, uid: &str) -> QueueKey {
        QueueKey {
            created: jiff::Timestamp::from_second(second).unwrap(),
            uid: uid.into(),
        }
    }

    fn w(name: &str) -> (TaskKind, &str, &str) {
        (TaskKind::HashTask, "ns", name)
    }

    #[test]
    fn first_come_first_served_within_the_cap() {
        let mut q = Queue::default();
        // Three slots, two taken: the oldest waiting task gets the last one.
        assert_eq!(q.admit(key(10, "b"), w("b"), 3, 3), Admit::Wait { position: 1 });
        assert_eq!(q.admit(key(20, "c"), w("c"), 3, 3), Admit::Wait { position: 2 });
        assert_eq!(q.admit(key(5, "a"), w("a"), 3, 3), Admit::Wait { position: 1 });
        assert_eq!(q.len(), 3);
        // One slot frees: the younger tasks still wait behind the oldest.
        assert_eq!(q.admit(key(20, "c"), w("c"), 2, 3), Admit::Wait { position: 3 });
        assert_eq!(q.admit(key(5, "a"), w("a"), 2, 3), Admit::Now);
        assert_eq!(q.admit(key(20, "c"), w("c"), 3, 3), Admit::Wait { position: 2 });
        assert_eq!(q.admit(key(10, "b"), w("b"), 2, 3), Admit::Now);
        assert_eq!(q.admit(key(20, "c"), w("c"), 2, 3), Admit::Now);
        assert!(q.is_empty());
    }

    #[test]
    fn a_removed_task_no_longer_blocks() {
        let mut q = Queue::default();
        assert_eq!(q.admit(key(1, "gone"), w("gone"), 1, 1), Admit::Wait { position: 1 });
        assert_eq!(q.admit(key(2, "next"), w("next"), 0, 1), Admit::Wait { position: 2 });
        q.remove("gone");
        assert_eq!(q.admit(key(2, "next"), w("next"), 0, 1), Admit::Now);
    }
}

//! When admission holds a task back a moment, to spend fewer API writes and Pod starts
//! under a burst:
//! - a task that could start now, but arrived right behind several others of its kind (a
//!   burst), lingers once, briefly, so the tasks arriving behind it ride in its Job;
//! - a task that must wait shows `Queued` only after a short grace: under a burst most
//!   waiting tasks are carried by a batch within a second, and a status written then would
//!   be overwritten at once;
//! - a shown place is rewritten at most every few seconds: each status write wakes the
//!   task's reconcile, which under a burst found its place moved and wrote again (5.7
//!   status writes per task over a burst of 1,000).
//!
//! A lone task is neither: it starts at once, as with one Job per task.
//! What is kept here is in memory only: a new leader starts without it, and then every task
//! falls back to showing its place (a task with a shown place may ride in a batch too).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use taskyard_api::TaskKind;

/// How long admission may hold a task back.
#[derive(Clone, Copy, Debug)]
pub struct Pacing {
    /// How long a task that must wait goes without showing `Queued`.
    pub queued_grace: Duration,
    /// How long a task that could start lingers for the tasks arriving behind it.
    pub linger: Duration,
    /// A task is in a burst when, counting itself, `burst_arrivals` tasks of its kind
    /// arrived within `burst_window`. Two or three tasks close together are no burst: each
    /// starts at once in a Job of its own.
    pub burst_window: Duration,
    pub burst_arrivals: usize,
    /// How long a place this operator wrote stays shown before it is brought up to date.
    pub position_hold: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            queued_grace: Duration::from_secs(1),
            linger: Duration::from_millis(300),
            burst_window: Duration::from_secs(1),
            burst_arrivals: 4,
            position_hold: Duration::from_secs(4),
        }
    }
}

impl Pacing {
    /// No holding back at all: every waiting task shows its place at once, none lingers.
    pub fn immediate() -> Self {
        Pacing {
            queued_grace: Duration::ZERO,
            linger: Duration::ZERO,
            burst_window: Duration::ZERO,
            burst_arrivals: usize::MAX,
            position_hold: Duration::ZERO,
        }
    }
}

/// What admission saw of one task generation.
#[derive(Debug)]
struct Look {
    generation: i64,
    first: Instant,
    lingered: bool,
    /// When this operator last wrote the generation's place into its status.
    shown_at: Option<Instant>,
}

/// The task generations admission has looked at (so their reconcile validated them), and
/// when each kind saw new ones lately.
#[derive(Debug, Default)]
pub struct Looks {
    tasks: HashMap<String, Look>,
    arrivals: HashMap<TaskKind, VecDeque<Instant>>,
}

impl Looks {
    /// Records a look at `uid`'s `generation`; true if it is the first, and then whether it
    /// arrived in a burst (see `Pacing`).
    pub fn look(&mut self, kind: TaskKind, uid: &str, generation: i64, pacing: &Pacing, now: Instant) -> (bool, bool) {
        if self.tasks.get(uid).is_some_and(|l| l.generation == generation) {
            return (false, false);
        }
        let look = Look {
            generation,
            first: now,
            lingered: false,
            shown_at: None,
        };
        self.tasks.insert(uid.to_string(), look);
        let recent = self.arrivals.entry(kind).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= pacing.burst_window)
        {
            recent.pop_front();
        }
        recent.push_back(now);
        (true, recent.len() >= pacing.burst_arrivals)
    }

    /// Whether this task generation was looked at: its reconcile validated it.
    pub fn validated(&self, uid: &str, generation: i64) -> bool {
        self.tasks.get(uid).is_some_and(|l| l.generation == generation)
    }

    /// How long ago the task generation was first looked at.
    pub fn since_first(&self, uid: &str, generation: i64, now: Instant) -> Duration {
        self.tasks
            .get(uid)
            .filter(|l| l.generation == generation)
            .map_or(Duration::MAX, |l| now.duration_since(l.first))
    }

    /// Marks the task generation as lingering; false if it lingered already (it lingers once).
    pub fn linger(&mut self, uid: &str, generation: i64) -> bool {
        match self.tasks.get_mut(uid) {
            Some(look) if look.generation == generation && !look.lingered => {
                look.lingered = true;
                true
            }
            _ => false,
        }
    }

    /// Records that the generation's place was just written into its status.
    pub fn shown(&mut self, uid: &str, generation: i64, now: Instant) {
        if let Some(look) = self.tasks.get_mut(uid).filter(|l| l.generation == generation) {
            look.shown_at = Some(now);
        }
    }

    /// Whether this operator wrote the generation's place less than `hold` ago.
    pub fn shown_lately(&self, uid: &str, generation: i64, hold: Duration, now: Instant) -> bool {
        self.tasks
            .get(uid)
            .filter(|l| l.generation == generation)
            .and_then(|l| l.shown_at)
            .is_some_and(|at| now.duration_since(at) < hold)
    }

    /// Forgets the tasks for which `keep` says no (they got a Job, finished or went).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.tasks.retain(|uid, _| keep(uid));
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacing() -> Pacing {
        Pacing {
            burst_window: Duration::from_secs(1),
            burst_arrivals: 3,
            ..Pacing::default()
        }
    }

    #[test]
    fn a_task_right_behind_several_others_of_its_kind_is_in_a_burst() {
        let mut looks = Looks::default();
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let (p, kind) = (pacing(), TaskKind::HashTask);
        assert_eq!(looks.look(kind, "a", 1, &p, t0), (true, false), "the first is lone");
        assert_eq!(
            looks.look(kind, "a", 1, &p, ms(10)),
            (false, false),
            "a second look is no arrival"
        );
        assert_eq!(looks.look(kind, "b", 1, &p, ms(100)), (true, false), "two are no burst");
        assert_eq!(
            looks.look(TaskKind::ImageTask, "c", 1, &p, ms(150)),
            (true, false),
            "kinds apart"
        );
        assert_eq!(
            looks.look(kind, "d", 1, &p, ms(200)),
            (true, true),
            "the third in a second is"
        );
        assert_eq!(
            looks.look(kind, "e", 1, &p, ms(1150)),
            (true, false),
            "a and b are too old"
        );
        assert_eq!(
            looks.look(kind, "a", 2, &p, ms(1190)),
            (true, true),
            "a new generation arrives"
        );
    }

    #[test]
    fn a_task_lingers_once_per_generation() {
        let mut looks = Looks::default();
        let now = Instant::now();
        looks.look(TaskKind::HashTask, "a", 1, &pacing(), now);
        assert!(looks.linger("a", 1));
        assert!(!looks.linger("a", 1));
        assert!(!looks.linger("b", 1), "only a task looked at");
        looks.look(TaskKind::HashTask, "a", 2, &pacing(), now);
        assert!(looks.linger("a", 2));
    }

    #[test]
    fn it_knows_which_generations_were_validated_and_since_when() {
        let mut looks = Looks::default();
        let t0 = Instant::now();
        looks.look(TaskKind::TextTask, "a", 3, &pacing(), t0);
        assert!(looks.validated("a", 3));
        assert!(!looks.validated("a", 2));
        let t1 = t0 + Duration::from_millis(400);
        assert_eq!(looks.since_first("a", 3, t1), Duration::from_millis(400));
        assert_eq!(looks.since_first("a", 2, t1), Duration::MAX);
        looks.retain(|uid| uid != "a");
        assert!(looks.is_empty());
    }

    #[test]
    fn a_written_place_is_held_for_a_while() {
        let mut looks = Looks::default();
        let t0 = Instant::now();
        let hold = Duration::from_secs(4);
        looks.look(TaskKind::HashTask, "a", 1, &pacing(), t0);
        assert!(!looks.shown_lately("a", 1, hold, t0), "nothing written yet");
        looks.shown("a", 1, t0);
        assert!(looks.shown_lately("a", 1, hold, t0 + Duration::from_secs(3)));
        assert!(!looks.shown_lately("a", 1, hold, t0 + Duration::from_secs(4)));
        assert!(!looks.shown_lately("a", 2, hold, t0), "another generation");
    }
}

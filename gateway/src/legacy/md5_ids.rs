//! The MD5 API's serial ids (`md5-<n>`), handed out without listing every task per upload.
//!
//! Each process keeps a high-water mark: the next id it will try. It is seeded once from the
//! ids in use (a listing) and then each upload takes the next one, so concurrent uploads in
//! one process never try the same id and none lists. Several replicas share the id space:
//! the create of the task is the arbiter (a name is created once; `AlreadyExists` otherwise).
//! On a conflict, the mark is raised past the highest id in use (listed again) and the next
//! one tried; so a replica's list happens at start and after another replica wrote ids.

use std::future::Future;
use std::sync::Mutex;

use crate::backend::BackendError;

/// How many creates one upload tries before it gives up.
const TRIES: usize = 100;

#[derive(Debug, Default)]
pub struct Ids {
    /// The next id to try; None until the ids in use have been listed.
    next: Mutex<Option<u64>>,
}

impl Ids {
    /// Creates something under a fresh id with `create` (AlreadyExists when the id is taken),
    /// listing the ids in use with `in_use` only before the first id and after a conflict.
    pub async fn allocate<L, LF, C, CF, T>(&self, in_use: L, create: C) -> Result<(u64, T), BackendError>
    where
        L: Fn() -> LF,
        LF: Future<Output = Result<Vec<u64>, BackendError>>,
        C: Fn(u64) -> CF,
        CF: Future<Output = Result<T, BackendError>>,
    {
        let mut id = match self.take() {
            Some(id) => id,
            None => self.raise(&in_use().await?),
        };
        for _ in 0..TRIES {
            match create(id).await {
                Ok(made) => return Ok((id, made)),
                // Another replica took it: its ids are past our mark.
                Err(BackendError::AlreadyExists(_)) => id = self.raise(&in_use().await?),
                Err(e) => return Err(e),
            }
        }
        Err(BackendError::Unavailable(format!(
            "no free task id after {TRIES} tries; try again"
        )))
    }

    /// The next id, if the mark is known.
    fn take(&self) -> Option<u64> {
        let mut next = self.next.lock().unwrap();
        let id = (*next)?;
        *next = Some(id + 1);
        Some(id)
    }

    /// Raises the mark past every id in `in_use` (never lowers it) and takes the next id.
    fn raise(&self, in_use: &[u64]) -> u64 {
        let mut next = self.next.lock().unwrap();
        let past_used = in_use.iter().max().map_or(1, |m| m + 1);
        let id = next.unwrap_or(1).max(past_used);
        *next = Some(id + 1);
        id
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// The shared id space of several replicas: the set of ids created (the API server's
    /// names), and how often it was listed.
    #[derive(Default)]
    struct Space {
        taken: Mutex<BTreeSet<u64>>,
        lists: AtomicUsize,
    }

    impl Space {
        async fn list(&self) -> Result<Vec<u64>, BackendError> {
            self.lists.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(self.taken.lock().unwrap().iter().copied().collect())
        }

        async fn create(&self, id: u64) -> Result<(), BackendError> {
            // Lets other allocators run between the choice of an id and its create.
            tokio::task::yield_now().await;
            if self.taken.lock().unwrap().insert(id) {
                Ok(())
            } else {
                Err(BackendError::AlreadyExists(format!("md5-{id}")))
            }
        }
    }

    async fn allocate(ids: &Ids, space: &Space) -> u64 {
        ids.allocate(|| space.list(), |id| space.create(id)).await.unwrap().0
    }

    #[tokio::test]
    async fn one_process_counts_from_the_ids_in_use_and_lists_once() {
        let space = Space::default();
        space.taken.lock().unwrap().extend([1, 2, 7]);
        let ids = Ids::default();
        let got: Vec<u64> = futures::future::join_all((0..50).map(|_| allocate(&ids, &space))).await;
        let unique: BTreeSet<u64> = got.iter().copied().collect();
        assert_eq!(unique.len(), 50, "{got:?}");
        assert_eq!(unique, (8..58).collect(), "ids follow the highest in use, without gaps");
        // Every concurrent first upload may list once (the mark was unknown); later ones never.
        let lists = space.lists.load(Ordering::SeqCst);
        allocate(&ids, &space).await;
        assert_eq!(
            space.lists.load(Ordering::SeqCst),
            lists,
            "a known mark needs no listing"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn replicas_never_hand_out_one_id_twice() {
        let space = Arc::new(Space::default());
        let replicas: Vec<Arc<Ids>> = (0..3).map(|_| Arc::new(Ids::default())).collect();
        let mut uploads = Vec::new();
        for n in 0..300 {
            let (ids, space) = (replicas[n % 3].clone(), space.clone());
            uploads.push(tokio::spawn(async move { allocate(&ids, &space).await }));
        }
        let mut got = Vec::new();
        for upload in uploads {
            got.push(upload.await.unwrap());
        }
        let unique: BTreeSet<u64> = got.iter().copied().collect();
        assert_eq!(unique.len(), 300, "an id was handed out twice");
        assert_eq!(*space.taken.lock().unwrap(), unique, "every id handed out was created");
    }

    #[tokio::test]
    async fn a_conflict_moves_past_the_other_replica_s_ids() {
        let space = Space::default();
        let (a, b) = (Ids::default(), Ids::default());
        assert_eq!(allocate(&a, &space).await, 1);
        assert_eq!(allocate(&b, &space).await, 2);
        // b wrote ids a has not seen: a's next create conflicts, a lists and moves past them.
        for _ in 0..5 {
            allocate(&b, &space).await;
        }
        assert_eq!(allocate(&a, &space).await, 8);
        assert_eq!(allocate(&a, &space).await, 9, "then counts on without listing");
        assert_eq!(allocate(&b, &space).await, 10);
    }

    #[tokio::test]
    async fn other_errors_are_answered_and_the_mark_survives() {
        let space = Space::default();
        let ids = Ids::default();
        let failed = ids
            .allocate(
                || space.list(),
                |_| async { Err::<(), _>(BackendError::Unavailable("down".into())) },
            )
            .await;
        assert!(matches!(failed, Err(BackendError::Unavailable(_))));
        // The failed create burnt id 1 (as a Postgres serial does on a rollback).
        assert_eq!(allocate(&ids, &space).await, 2);
    }
}

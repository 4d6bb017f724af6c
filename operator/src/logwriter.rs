//! The HashTask results log writer: the operator's single writer of the log.
//!
//! Reconciles hand it lines and wait for the write. Lines that arrive while a write is in
//! flight are written together in the next one, so a burst of finishing tasks costs a few
//! writes, not one per task. Appends skip lines already present (see `hashlog`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use taskyard_common::hashlog::{self, LogLine};
use taskyard_common::store::Store;

use crate::leader::Fence;

use tokio::sync::{mpsc, oneshot};

/// Most lines in one write.
const MAX_BATCH: usize = 1000;

type Request = (LogLine, oneshot::Sender<Result<(), String>>);

#[derive(Clone)]
pub struct LogWriter {
    tx: mpsc::Sender<Request>,
    batches: Arc<AtomicU64>,
}

impl LogWriter {
    /// Starts the writer task; it writes only while `fence` holds.
    pub fn spawn(store: Store, fence: Fence) -> Self {
        let (tx, rx) = mpsc::channel(MAX_BATCH * 4);
        let batches = Arc::new(AtomicU64::new(0));
        tokio::spawn(write_loop(store, fence, rx, batches.clone()));
        Self { tx, batches }
    }

    /// How many batches (appends to the store) the writer has made.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Appends a line (once, however often it is asked) and returns when it is stored.
    pub async fn append(&self, line: LogLine) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send((line, ack))
            .await
            .map_err(|_| "the results log writer has stopped".to_string())?;
        done.await
            .map_err(|_| "the results log writer has stopped".to_string())?
    }
}

async fn write_loop(store: Store, fence: Fence, mut rx: mpsc::Receiver<Request>, batches: Arc<AtomicU64>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let lines: Vec<LogLine> = batch.iter().map(|(line, _)| line.clone()).collect();
        let outcome = if fence.holds() {
            batches.fetch_add(1, Ordering::Relaxed);
            hashlog::append(&store, &lines)
                .await
                .map(|added| tracing::debug!(lines = lines.len(), added, "results log written"))
                .map_err(|e| format!("cannot append to the HashTask results log: {e}"))
        } else {
            // Two writers could lose each other's lines; the new leader writes these.
            Err("not appending to the HashTask results log: this replica no longer holds the leader lease".into())
        };
        for (_, ack) in batch.drain(..) {
            let _ = ack.send(outcome.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use taskyard_api::{Outcome, TaskIdentity};
    use taskyard_common::store::DirStore;

    use super::*;

    fn line(i: usize) -> LogLine {
        LogLine {
            time: "2026-11-23T10:00:00Z".parse().unwrap(),
            identity: TaskIdentity {
                namespace: "n".into(),
                name: format!("t{i}"),
                uid: format!("uid-{i}"),
                generation: 1,
            },
            outcome: Outcome::Succeeded,
            md5: Some("d41d8cd98f00b204e9800998ecf8427e".into()),
            size: Some(0),
            message: "ok".into(),
        }
    }

    #[tokio::test]
    async fn concurrent_appends_are_kept_once_and_coalesced_into_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let writer = LogWriter::spawn(Store::Dir(DirStore::new(dir.path())), Fence::unfenced());
        let appends = (0..50).map(|i| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.append(line(i % 40)).await })
        });
        for a in appends.collect::<Vec<_>>() {
            a.await.unwrap().unwrap();
        }
        let log = std::fs::read_to_string(dir.path().join("logs/hashtasks/2026-11-23.log")).unwrap();
        assert_eq!(log.lines().count(), 40);
        for i in 0..40 {
            assert_eq!(log.lines().filter(|l| l.contains(&format!(" uid-{i} 1 "))).count(), 1);
        }
    }

    #[tokio::test]
    async fn a_replica_that_no_longer_holds_the_lease_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let writer = LogWriter::spawn(Store::Dir(DirStore::new(dir.path())), Fence::elected());
        let error = writer.append(line(1)).await.unwrap_err();
        assert!(error.contains("no longer holds the leader lease"), "{error}");
        assert!(!dir.path().join("logs").exists(), "the log was written");
    }
}

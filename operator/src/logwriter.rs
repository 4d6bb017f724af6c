//! The HashTask results log writer: the operator's single writer of the log.
//!
//! Reconciles hand it lines and wait for the write. Up to `IN_FLIGHT` writes run at once, so
//! a line does not wait for an earlier write to finish first; lines that arrive while all
//! of them are busy are written together in the next one, so a burst of finishing tasks
//! costs a few writes, not one per task. Each write is a new log segment (see `hashlog`),
//! so writes never touch each other, the writer never reads the log, and its memory is a
//! few batches, however long the day's log is.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use taskyard_common::hashlog::{self, LogLine};
use taskyard_common::store::Store;

use crate::leader::Fence;

use tokio::sync::{Semaphore, mpsc, oneshot};

/// Most lines in one write.
const MAX_BATCH: usize = 1000;
/// Writes at once. One made a line wait for the write before its own: under a burst of
/// 10,000 tasks, 10-45 ms of a failing task's reconcile.
const IN_FLIGHT: usize = 4;

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
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        // A free slot first: while every slot is busy, arriving lines gather into one batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let (store, fence, batches) = (store.clone(), fence.clone(), batches.clone());
        tokio::spawn(async move {
            write_batch(&store, &fence, batch, &batches).await;
            drop(slot);
        });
    }
}

async fn write_batch(store: &Store, fence: &Fence, batch: Vec<Request>, batches: &AtomicU64) {
    let lines: Vec<LogLine> = batch.iter().map(|(line, _)| line.clone()).collect();
    let outcome = if fence.holds() {
        batches.fetch_add(1, Ordering::Relaxed);
        hashlog::append(store, &lines)
            .await
            .map(|written| tracing::debug!(lines = lines.len(), written, "results log segment written"))
            .map_err(|e| format!("cannot append to the HashTask results log: {e}"))
    } else {
        // Segments keep two writers from losing each other's lines, but only the leader
        // reconciles; the new leader writes these lines.
        Err("not appending to the HashTask results log: this replica no longer holds the leader lease".into())
    };
    for (_, ack) in batch {
        let _ = ack.send(outcome.clone());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use futures::TryStreamExt;
    use taskyard_api::{Outcome, TaskIdentity};
    use taskyard_common::keys::hash_log_day_prefix;
    use taskyard_common::store::{DirStore, S3Settings, S3Store};
    use taskyard_tests::http::read_request_head;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use tokio::sync::Notify;

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

    fn day() -> jiff::civil::Date {
        jiff::civil::date(2026, 11, 23)
    }

    async fn read(store: &Store) -> Vec<String> {
        hashlog::read_day(store, day()).try_collect().await.unwrap()
    }

    async fn segments(store: &Store) -> usize {
        let keys: Vec<String> = store.list(&hash_log_day_prefix(day())).try_collect().await.unwrap();
        keys.len()
    }

    #[tokio::test]
    async fn concurrent_appends_are_kept_once_and_coalesced_into_few_segments() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Dir(DirStore::new(dir.path()));
        let writer = LogWriter::spawn(store.clone(), Fence::unfenced());
        let appends = (0..50).map(|i| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.append(line(i % 40)).await })
        });
        for a in appends.collect::<Vec<_>>() {
            a.await.unwrap().unwrap();
        }
        let log = read(&store).await;
        assert_eq!(log.len(), 40);
        for i in 0..40 {
            assert_eq!(log.iter().filter(|l| l.contains(&format!(" uid-{i} 1 "))).count(), 1);
        }
        // One segment per batch: lines that arrive together are written together.
        assert_eq!(segments(&store).await as u64, writer.batches());
        assert!(writer.batches() < 50, "{} batches for 50 lines", writer.batches());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_writers_writing_the_same_lines_at_once_lose_and_duplicate_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Dir(DirStore::new(dir.path()));
        // An old leader still writing while the new one writes: lines 300..600 reach both,
        // the old leader's copies late. Ten waves, each awaited, so each writer makes at
        // least ten batches, and in every wave both write at once.
        let old = LogWriter::spawn(store.clone(), Fence::unfenced());
        let new = LogWriter::spawn(store.clone(), Fence::unfenced());
        for wave in 0..10 {
            let to_old = (60 * wave..60 * wave + 60).map(|i| (old.clone(), i));
            let to_new = (300 + 70 * wave..300 + 70 * wave + 70).map(|i| (new.clone(), i));
            let appends = to_old
                .chain(to_new)
                .map(|(writer, i)| tokio::spawn(async move { writer.append(line(i)).await }));
            for a in appends.collect::<Vec<_>>() {
                a.await.unwrap().unwrap();
            }
        }
        assert!(old.batches() >= 10 && new.batches() >= 10);
        assert_eq!(segments(&store).await as u64, old.batches() + new.batches());
        let log = read(&store).await;
        let uids: HashSet<String> = log.iter().map(|l| l.split(' ').nth(2).unwrap().to_string()).collect();
        let all: HashSet<String> = (0..1000).map(|i| format!("uid-{i}")).collect();
        assert_eq!(uids, all, "lost lines");
        assert_eq!(log.len(), 1000, "duplicated lines");
    }

    /// A fake S3 server on loopback that answers every request at once except the first PUT,
    /// which it holds until `release` is notified; `held` is notified when it has it.
    async fn s3_holding_the_first_put() -> (String, Arc<Notify>, Arc<Notify>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (held, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let puts = Arc::new(AtomicU64::new(0));
        let (h, r) = (held.clone(), release.clone());
        tokio::spawn(async move {
            loop {
                let (conn, _) = listener.accept().await.unwrap();
                let (held, release, puts) = (h.clone(), r.clone(), puts.clone());
                tokio::spawn(async move {
                    let mut conn = BufReader::new(conn);
                    while let Some((head, length)) = read_request_head(&mut conn).await {
                        let mut body = vec![0; length];
                        conn.read_exact(&mut body).await.unwrap();
                        if head.starts_with("PUT ") && puts.fetch_add(1, Ordering::SeqCst) == 0 {
                            held.notify_one();
                            release.notified().await;
                        }
                        let answer = "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 0\r\n\r\n";
                        conn.get_mut().write_all(answer.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        (endpoint, held, release)
    }

    #[tokio::test]
    async fn a_line_does_not_wait_for_an_earlier_write_still_in_flight() {
        let (endpoint, held, release) = s3_holding_the_first_put().await;
        let store = Store::S3(
            S3Store::connect(&S3Settings {
                endpoint: Some(endpoint),
                region: "us-east-1".into(),
                bucket: "taskyard".into(),
                force_path_style: true,
                credentials: Some(("id".into(), "secret".into())),
                ..Default::default()
            })
            .await,
        );
        let writer = LogWriter::spawn(store, Fence::unfenced());
        let first = tokio::spawn({
            let writer = writer.clone();
            async move { writer.append(line(1)).await }
        });
        held.notified().await;
        tokio::time::timeout(Duration::from_secs(10), writer.append(line(2)))
            .await
            .expect("the second line waited for the first line's write")
            .unwrap();
        assert!(!first.is_finished(), "the first write was not held");
        release.notify_one();
        first.await.unwrap().unwrap();
        assert_eq!(writer.batches(), 2);
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

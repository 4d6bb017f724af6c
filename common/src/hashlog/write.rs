//! Writing the results log: every append is a new segment, created with a conditional put.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use jiff::civil::Date;

use super::LogLine;
use crate::keys::{hash_log_day_prefix, hash_log_segment_key};
use crate::store::{PutOutcome, Store, StoreError};

/// How many fresh names a segment write tries before giving up.
const NAME_ATTEMPTS: usize = 3;

/// Appends lines as one new segment per UTC day they belong to; returns how many lines were
/// written. Nothing already in the log is read or rewritten, so memory is the batch's size
/// whatever the log's, and a retried append (or an old leader's late one) cannot replace
/// anything: it adds lines that readers drop as repeats.
pub async fn append(store: &Store, lines: &[LogLine]) -> Result<usize, StoreError> {
    let mut by_day: BTreeMap<Date, String> = BTreeMap::new();
    // Repeats inside one batch are dropped here already, to keep segments clean.
    let mut in_batch = HashSet::new();
    let mut written = 0;
    for line in lines {
        if in_batch.insert((line.identity.uid.as_str(), line.identity.generation)) {
            let body = by_day.entry(line.date()).or_default();
            body.push_str(&line.render());
            body.push('\n');
            written += 1;
        }
    }
    for (date, body) in by_day {
        write_segment(store, date, Bytes::from(body)).await?;
    }
    Ok(written)
}

/// Creates a new segment of `date`'s log holding `body`; returns its key.
async fn write_segment(store: &Store, date: Date, body: Bytes) -> Result<String, StoreError> {
    for _ in 0..NAME_ATTEMPTS {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let key = hash_log_segment_key(date, jiff::Timestamp::now(), &nonce);
        // Conditional: even a (practically impossible) name collision never overwrites.
        match store
            .put_if_absent(&key, body.clone(), "text/plain; charset=utf-8")
            .await?
        {
            PutOutcome::Created => return Ok(key),
            PutOutcome::AlreadyExists => continue,
        }
    }
    Err(StoreError::Backend {
        op: "conditional put",
        key: hash_log_day_prefix(date),
        message: format!(
            "{NAME_ATTEMPTS} new random segment names were all reported as existing: the store does not \
             honour If-None-Match: * correctly; use an S3 server that supports conditional writes"
        ),
    })
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;
    use taskyard_api::Outcome;

    use super::*;
    use crate::hashlog::read_day;
    use crate::hashlog::tests::line;
    use crate::store::DirStore;

    fn day(d: u8) -> Date {
        jiff::civil::date(2026, 11, d as i8)
    }

    async fn read(store: &Store, date: Date) -> Vec<String> {
        read_day(store, date).try_collect().await.unwrap()
    }

    async fn segments(store: &Store, date: Date) -> Vec<String> {
        store.list(&hash_log_day_prefix(date)).try_collect().await.unwrap()
    }

    #[tokio::test]
    async fn each_append_adds_one_segment_per_day_and_never_rewrites_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Dir(DirStore::new(dir.path()));
        let mut next_day = line("c", 1, Outcome::Succeeded);
        next_day.time = "2026-11-24T00:00:01Z".parse().unwrap();
        let batch = vec![
            line("a", 1, Outcome::Succeeded),
            line("b", 1, Outcome::Failed),
            line("a", 1, Outcome::Succeeded),
            next_day,
        ];
        assert_eq!(append(&store, &batch).await.unwrap(), 3);
        let first = segments(&store, day(23)).await;
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(segments(&store, day(24)).await.len(), 1);
        let written = store.get(&first[0], 1 << 20).await.unwrap().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&written).lines().count(),
            2,
            "repeat inside the batch"
        );

        // A crash after the append and before the status write repeats the append: a new
        // segment, the old one untouched, and the reader still sees each line once.
        assert_eq!(append(&store, &batch).await.unwrap(), 3);
        let both = segments(&store, day(23)).await;
        assert_eq!(both.len(), 2, "{both:?}");
        assert!(both.contains(&first[0]));
        assert_eq!(store.get(&first[0], 1 << 20).await.unwrap().unwrap(), written);
        let log = read(&store, day(23)).await;
        assert_eq!(
            log,
            [
                line("a", 1, Outcome::Succeeded).render(),
                line("b", 1, Outcome::Failed).render()
            ]
        );
        assert_eq!(read(&store, day(24)).await.len(), 1);
    }

    #[tokio::test]
    async fn segment_names_are_new_each_time_and_sort_in_write_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Dir(DirStore::new(dir.path()));
        let mut keys = Vec::new();
        for _ in 0..20 {
            keys.push(
                write_segment(&store, day(23), Bytes::from_static(b"x\n"))
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(segments(&store, day(23)).await, keys, "listing order is write order");
        let name = keys[0].strip_prefix("logs/hashtasks/2026-11-23/").unwrap();
        let (time, nonce) = name.strip_suffix(".log").unwrap().split_once('-').unwrap();
        assert_eq!(time.len(), "20261123T101112.123456789Z".len(), "{name}");
        assert_eq!(nonce.len(), 32, "128 random bits in hex: {name}");
    }

    #[tokio::test]
    async fn racing_appenders_lose_nothing_and_readers_see_no_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Dir(DirStore::new(dir.path()));
        // Two writers, 40 batches each at once; lines 300..500 are written by both, as an
        // old leader's late write would repeat the new leader's lines.
        let writer = |range: std::ops::Range<usize>| {
            let store = store.clone();
            let lines: Vec<LogLine> = range.map(|i| line(&format!("u{i}"), 1, Outcome::Succeeded)).collect();
            async move {
                let batches = lines.chunks(13).map(|batch| append(&store, batch));
                futures::future::try_join_all(batches).await.unwrap();
            }
        };
        let a = tokio::spawn(writer(0..500));
        let b = tokio::spawn(writer(300..800));
        a.await.unwrap();
        b.await.unwrap();
        let log = read(&store, day(23)).await;
        assert_eq!(log.len(), 800);
        let uids: HashSet<&str> = log.iter().map(|l| l.split(' ').nth(2).unwrap()).collect();
        assert_eq!(uids.len(), 800, "a line is duplicated");
        for i in 0..800 {
            assert!(uids.contains(format!("u{i}").as_str()), "line {i} is lost");
        }
    }
}

//! The HashTask results log: daily objects `logs/hashtasks/<YYYY-MM-DD>.log`, one line per
//! finished task generation.
//!
//! Appending is read, merge, write. It is safe because there is one writer at a time (the
//! operator's leader, or `job-runner run` on one machine), and idempotent because a line whose
//! uid and generation are already in the log is never added again.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use taskyard_api::{Outcome, TaskIdentity, TaskOutput, TaskResult};

use crate::keys::hash_log_key;
use crate::store::{Store, StoreError};

/// A daily log larger than this is refused rather than read into memory.
const MAX_LOG_BYTES: u64 = 512 << 20;

/// One line of the results log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// When the task generation finished; it also picks the daily object.
    pub time: jiff::Timestamp,
    pub identity: TaskIdentity,
    pub outcome: Outcome,
    pub md5: Option<String>,
    pub size: Option<u64>,
    pub message: String,
}

impl LogLine {
    /// The line of a finished HashTask generation.
    pub fn from_result(result: &TaskResult) -> Self {
        let hash = match &result.output {
            Some(TaskOutput::Hash(h)) => Some(h),
            _ => None,
        };
        LogLine {
            time: result.finished_at,
            identity: result.identity.clone(),
            outcome: result.outcome,
            md5: hash.and_then(|h| h.digests.get("md5").cloned()),
            size: hash.map(|h| h.size),
            message: result.message.clone(),
        }
    }

    /// The daily object this line belongs in.
    pub fn key(&self) -> String {
        hash_log_key(self.time.to_zoned(jiff::tz::TimeZone::UTC).date())
    }

    /// `<RFC3339 time> <namespace>/<name> <uid> <generation> <Succeeded|Failed> <md5 or -> <size or -> <message>`
    pub fn render(&self) -> String {
        let id = &self.identity;
        let outcome = match self.outcome {
            Outcome::Succeeded => "Succeeded",
            Outcome::Failed => "Failed",
        };
        let size = self.size.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
        // One line per entry, whatever the message holds.
        let message: String = self
            .message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let message = if message.trim().is_empty() {
            "-".to_string()
        } else {
            message.trim().to_string()
        };
        format!(
            "{} {}/{} {} {} {outcome} {} {size} {message}",
            self.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            id.namespace,
            id.name,
            id.uid,
            id.generation,
            self.md5.as_deref().unwrap_or("-"),
        )
    }
}

/// The uid and generation of a log line.
fn entry_of(line: &str) -> Option<(&str, &str)> {
    let mut fields = line.split(' ').skip(2);
    Some((fields.next()?, fields.next()?))
}

/// Whether the log already has the line of this uid and generation.
pub fn has_entry(log: &str, uid: &str, generation: i64) -> bool {
    let generation = generation.to_string();
    log.lines()
        .any(|line| entry_of(line) == Some((uid, generation.as_str())))
}

/// Appends the lines the log does not have yet. Returns the new log and how many were added.
pub fn merge(existing: &str, lines: &[LogLine]) -> (String, usize) {
    let mut seen: HashSet<(String, i64)> = existing
        .lines()
        .filter_map(entry_of)
        .filter_map(|(uid, generation)| Some((uid.to_string(), generation.parse().ok()?)))
        .collect();
    let mut out = String::with_capacity(existing.len() + lines.len() * 160);
    out.push_str(existing);
    if !out.is_empty() && !out.ends_with('\n') {
        // Whole-object writes cannot tear a line; keep lines whole even if one was edited by hand.
        out.push('\n');
    }
    let mut added = 0;
    for line in lines {
        if seen.insert((line.identity.uid.clone(), line.identity.generation)) {
            out.push_str(&line.render());
            out.push('\n');
            added += 1;
        }
    }
    (out, added)
}

/// Appends lines to their daily objects: one read and at most one write per object.
/// Lines already present are skipped, so a retried append never duplicates one.
pub async fn append(store: &Store, lines: &[LogLine]) -> Result<usize, StoreError> {
    let mut by_key: BTreeMap<String, Vec<LogLine>> = BTreeMap::new();
    for line in lines {
        by_key.entry(line.key()).or_default().push(line.clone());
    }
    let mut added = 0;
    for (key, lines) in by_key {
        let existing = store.get(&key, MAX_LOG_BYTES).await?.unwrap_or_default();
        let existing = String::from_utf8_lossy(&existing);
        let (merged, n) = merge(&existing, &lines);
        if n > 0 {
            store
                .put(&key, Bytes::from(merged), "text/plain; charset=utf-8")
                .await?;
        }
        added += n;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DirStore;

    fn line(uid: &str, generation: i64, outcome: Outcome) -> LogLine {
        LogLine {
            time: "2026-11-23T10:11:12.345Z".parse().unwrap(),
            identity: TaskIdentity {
                namespace: "ns".into(),
                name: format!("t-{uid}"),
                uid: uid.into(),
                generation,
            },
            outcome,
            md5: (outcome == Outcome::Succeeded).then(|| "d41d8cd98f00b204e9800998ecf8427e".into()),
            size: (outcome == Outcome::Succeeded).then_some(0),
            message: if outcome == Outcome::Succeeded {
                "ok".into()
            } else {
                "fetch failed:\nHTTP 404".into()
            },
        }
    }

    #[test]
    fn renders_the_contract_format() {
        assert_eq!(
            line("u1", 2, Outcome::Succeeded).render(),
            "2026-11-23T10:11:12Z ns/t-u1 u1 2 Succeeded d41d8cd98f00b204e9800998ecf8427e 0 ok"
        );
        assert_eq!(
            line("u1", 2, Outcome::Failed).render(),
            "2026-11-23T10:11:12Z ns/t-u1 u1 2 Failed - - fetch failed: HTTP 404"
        );
        assert_eq!(line("u1", 2, Outcome::Failed).key(), "logs/hashtasks/2026-11-23.log");
    }

    #[test]
    fn merge_is_idempotent_per_uid_and_generation() {
        let (log, n) = merge("", &[line("a", 1, Outcome::Succeeded), line("b", 1, Outcome::Failed)]);
        assert_eq!(n, 2);
        // The same lines again, one new generation, and a duplicate inside the batch.
        let (log2, n2) = merge(
            &log,
            &[
                line("a", 1, Outcome::Succeeded),
                line("a", 2, Outcome::Succeeded),
                line("a", 2, Outcome::Succeeded),
            ],
        );
        assert_eq!(n2, 1);
        assert_eq!(log2.lines().count(), 3);
        assert!(log2.starts_with(&log));
        assert!(has_entry(&log2, "a", 2) && !has_entry(&log2, "a", 3) && !has_entry(&log2, "ns/t-a", 1));
    }

    #[tokio::test]
    async fn append_coalesces_into_one_write_per_day_and_never_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Dir(DirStore::new(dir.path()));
        let mut next_day = line("c", 1, Outcome::Succeeded);
        next_day.time = "2026-11-24T00:00:01Z".parse().unwrap();
        let batch = vec![
            line("a", 1, Outcome::Succeeded),
            line("b", 1, Outcome::Failed),
            next_day,
        ];
        assert_eq!(append(&store, &batch).await.unwrap(), 3);
        // A crash after the append and before the status write repeats the append.
        assert_eq!(append(&store, &batch).await.unwrap(), 0);
        let day1 = store
            .get("logs/hashtasks/2026-11-23.log", 1 << 20)
            .await
            .unwrap()
            .unwrap();
        let day2 = store
            .get("logs/hashtasks/2026-11-24.log", 1 << 20)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&day1).lines().count(), 2);
        assert_eq!(String::from_utf8_lossy(&day2).lines().count(), 1);
    }
}

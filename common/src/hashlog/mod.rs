//! The HashTask results log, one line per finished task generation, kept per UTC day as
//! append-only segments `logs/hashtasks/<YYYY-MM-DD>/<write time>-<random>.log`.
//!
//! A write adds a new segment and never reads or rewrites the log, so two writers (two
//! leaders across a lease handover, a retried append) can never lose each other's lines; the
//! price is that a line may be written twice, which readers drop (`read_day`).

mod read;
mod write;

use taskyard_api::{Outcome, TaskIdentity, TaskOutput, TaskResult};

pub use read::{DayLines, read_day};
pub use write::append;

/// One line of the results log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// When the task generation finished; it also picks the day of the log.
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

    /// The UTC day whose log this line belongs in.
    pub fn date(&self) -> jiff::civil::Date {
        self.time.to_zoned(jiff::tz::TimeZone::UTC).date()
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

/// The uid and generation of a log line: its identity in the log.
fn entry_of(line: &str) -> Option<(&str, &str)> {
    let mut fields = line.split(' ').skip(2);
    Some((fields.next()?, fields.next()?))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn line(uid: &str, generation: i64, outcome: Outcome) -> LogLine {
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
                "fetch failed:\nHTTP 404\r\n".into()
            },
        }
    }

    #[test]
    fn renders_the_contract_format() {
        assert_eq!(
            line("u1", 2, Outcome::Succeeded).render(),
            "2026-11-23T10:11:12Z ns/t-u1 u1 2 Succeeded d41d8cd98f00b204e9800998ecf8427e 0 ok"
        );
        // A message with newlines stays one line.
        assert_eq!(
            line("u1", 2, Outcome::Failed).render(),
            "2026-11-23T10:11:12Z ns/t-u1 u1 2 Failed - - fetch failed: HTTP 404"
        );
        assert_eq!(line("u1", 2, Outcome::Failed).date(), jiff::civil::date(2026, 11, 23));
    }

    #[test]
    fn a_line_is_identified_by_uid_and_generation() {
        let rendered = line("u1", 2, Outcome::Failed).render();
        assert_eq!(entry_of(&rendered), Some(("u1", "2")));
        assert_eq!(entry_of("2026-11-23T10:11:12Z ns/t"), None);
    }
}

//! `job-runner log --store DIR [--date D]`: prints a day's HashTask results log from a
//! directory store, as any reader sees it: the day's segments in order, a repeated
//! uid+generation once. Streams, so a long log prints in constant memory.

use std::io::Write;
use std::path::Path;

use futures::TryStreamExt;
use jiff::civil::Date;
use taskyard_common::hashlog;
use taskyard_common::store::{DirStore, Store};

/// Why printing the log failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The command line is wrong (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The store could not be read (exit code 1).
    #[error("cannot read the results log: {0}")]
    Store(#[from] taskyard_common::store::StoreError),
    /// Standard output could not be written (exit code 1).
    #[error("cannot write the log to standard output: {0}")]
    Output(#[from] std::io::Error),
}

/// Parses `--date`, which is exactly `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, LogError> {
    let bad = || LogError::Usage(format!("--date {text} is not a date: use YYYY-MM-DD"));
    let shape_ok = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape_ok {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

/// Writes the log of `date` (default: today, UTC) in the store directory `store_dir` to `out`.
/// Returns the day and how many lines were written.
pub async fn print_day(store_dir: &Path, date: Option<&str>, out: &mut impl Write) -> Result<(Date, usize), LogError> {
    let date = match date {
        Some(text) => parse_date(text)?,
        None => jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date(),
    };
    match std::fs::metadata(store_dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(LogError::Usage(format!(
                "--store {} is not a directory: pass the directory `job-runner run --store` wrote to",
                store_dir.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LogError::Usage(format!(
                "the store directory {} does not exist: pass the directory `job-runner run --store` wrote to",
                store_dir.display()
            )));
        }
        Err(e) => {
            return Err(LogError::Usage(format!(
                "cannot open the store directory {} ({e}): pass the directory `job-runner run --store` wrote to",
                store_dir.display()
            )));
        }
    }
    let store = Store::Dir(DirStore::new(store_dir));
    let mut lines = hashlog::read_day(&store, date);
    let mut count = 0;
    while let Some(line) = lines.try_next().await? {
        writeln!(out, "{line}")?;
        count += 1;
    }
    out.flush()?;
    Ok((date, count))
}

/// Runs the command; returns the exit code: 0 printed (maybe nothing), 1 the store or standard
/// output failed, 2 usage errors.
pub async fn log_command(store_dir: &Path, date: Option<&str>) -> u8 {
    let mut out = std::io::BufWriter::new(std::io::stdout());
    match print_day(store_dir, date, &mut out).await {
        Ok((date, 0)) => {
            eprintln!(
                "no results log for {date} in {}: no HashTask finished that day (UTC)",
                store_dir.display()
            );
            0
        }
        Ok(_) => 0,
        // `job-runner log | head` closing the pipe is not a failure.
        Err(LogError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                LogError::Usage(_) => 2,
                _ => 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use taskyard_api::{Outcome, TaskIdentity};
    use taskyard_common::hashlog::LogLine;

    use super::*;

    #[test]
    fn a_date_is_exactly_yyyy_mm_dd() {
        assert_eq!(parse_date("2026-11-28").unwrap(), jiff::civil::date(2026, 11, 28));
        assert_eq!(
            parse_date("2026-13-01").unwrap_err().to_string(),
            "--date 2026-13-01 is not a date: use YYYY-MM-DD"
        );
        for bad in [
            "2026-02-30",
            "20261128",
            "2026-1-01",
            "today",
            "",
            "2026-11-28T00:00:00Z",
            "+02026-11-28",
        ] {
            let err = parse_date(bad).unwrap_err().to_string();
            assert!(err.contains("is not a date: use YYYY-MM-DD"), "{bad:?}: {err}");
        }
    }

    fn line(uid: &str, time: jiff::Timestamp, message: &str) -> LogLine {
        LogLine {
            time,
            identity: TaskIdentity {
                namespace: "default".into(),
                name: "h".into(),
                uid: uid.into(),
                generation: 1,
            },
            outcome: Outcome::Failed,
            md5: None,
            size: None,
            message: message.into(),
        }
    }

    #[tokio::test]
    async fn prints_the_day_once_per_entry_today_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Dir(DirStore::new(dir.path()));
        let day: jiff::Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let (a, b) = (line("a", day, "first\nsecond"), line("b", day, "x"));
        hashlog::append(&store, &[a.clone(), b.clone()]).await.unwrap();
        // A retried append: the same line in a second segment.
        hashlog::append(&store, std::slice::from_ref(&a)).await.unwrap();
        let now = line("c", jiff::Timestamp::now(), "today");
        hashlog::append(&store, std::slice::from_ref(&now)).await.unwrap();

        let mut out = Vec::new();
        let (_, n) = print_day(dir.path(), Some("2026-11-23"), &mut out).await.unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{}\n{}\n", a.render(), b.render())
        );
        assert_eq!(n, 2);

        let mut out = Vec::new();
        let (date, n) = print_day(dir.path(), None, &mut out).await.unwrap();
        assert_eq!(date, now.date());
        assert_eq!(String::from_utf8(out).unwrap(), format!("{}\n", now.render()));
        assert_eq!(n, 1);

        let (_, n) = print_day(dir.path(), Some("2026-11-22"), &mut Vec::new())
            .await
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn a_missing_store_or_bad_date_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-store");
        let err = print_day(&missing, None, &mut Vec::new()).await.unwrap_err();
        assert!(matches!(err, LogError::Usage(_)), "{err}");
        let err = err.to_string();
        assert!(
            err.ends_with("no-such-store does not exist: pass the directory `job-runner run --store` wrote to"),
            "{err}"
        );

        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let err = print_day(&file, None, &mut Vec::new()).await.unwrap_err().to_string();
        assert!(err.contains("is not a directory"), "{err}");

        let err = print_day(dir.path(), Some("2026-13-01"), &mut Vec::new())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "--date 2026-13-01 is not a date: use YYYY-MM-DD");
    }
}

//! The final result of a task generation, from its finished Job, the runner's `result.json`
//! and the Pod's termination message. Pure.

use k8s_openapi::api::batch::v1::Job;
use taskyard_api::{Outcome, Reason, TaskIdentity, TaskKind, TaskResult};

use crate::jobstate::JobState;

/// What is known about a finished Job.
pub struct Finished<'a> {
    pub kind: TaskKind,
    pub identity: &'a TaskIdentity,
    pub state: &'a JobState,
    /// The runner's result.json, if it wrote one.
    pub result: Option<TaskResult>,
    /// The last runner Pod's termination message, if any.
    pub termination_message: Option<String>,
    pub timeout_seconds: i64,
    /// When the Job started and finished (from its status, so the same after a restart).
    pub started_at: jiff::Timestamp,
    pub finished_at: jiff::Timestamp,
}

/// When the Job reached its terminal condition, if it has.
pub fn finished_at(job: &Job) -> Option<jiff::Timestamp> {
    let status = job.status.as_ref()?;
    if let Some(t) = &status.completion_time {
        return Some(t.0);
    }
    status
        .conditions
        .iter()
        .flatten()
        .filter(|c| c.status == "True" && (c.type_ == "Complete" || c.type_ == "Failed"))
        .find_map(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

/// The result to record. `None` while the Job runs.
pub fn final_result(f: Finished<'_>) -> Option<TaskResult> {
    let failed = |reason: Reason, message: String| TaskResult {
        kind: f.kind,
        identity: f.identity.clone(),
        outcome: Outcome::Failed,
        reason,
        message,
        started_at: f.started_at,
        finished_at: f.finished_at,
        output: None,
        attempts: None,
    };
    // The result must be this generation's, not an older one's.
    let result = f.result.filter(|r| &r.identity == f.identity);
    match f.state {
        JobState::Running => None,
        JobState::Complete => Some(match result {
            Some(r) => r,
            None => failed(
                Reason::StoreError,
                "the runner finished but its result.json is not in the store; check the store's health and the runner Pod's logs".into(),
            ),
        }),
        JobState::Failed { reason, .. } if reason == "DeadlineExceeded" => {
            let last = result
                .map(|r| format!(" (last runner message: {})", r.message))
                .or_else(|| f.termination_message.map(|m| format!(" (last runner message: {})", m.trim())))
                .unwrap_or_default();
            Some(failed(
                Reason::TimedOut,
                format!(
                    "the task did not finish within timeoutSeconds ({} s); raise spec.timeoutSeconds if it needs longer{last}",
                    f.timeout_seconds
                ),
            ))
        }
        JobState::Failed { reason, message } => Some(match (result, f.termination_message) {
            (Some(r), _) if r.outcome == Outcome::Failed => r,
            (_, Some(m)) if !m.trim().is_empty() => {
                let (reason, message) = runner_failure(&m, f.identity);
                failed(reason, message)
            }
            _ => failed(Reason::Failed, format!("the runner Job failed: {reason}: {message}")),
        }),
    }
}

/// The runner's own reason and words for this task in a termination message, whose lines are
/// `<namespace>/<name>: <Reason>: <message>`: a runner that could not write its result (the
/// store was down) says `StoreError` there, which is the task's reason. A message in another
/// form (the kernel's OOM kill, a log tail) is kept whole, with reason `Failed`.
fn runner_failure(termination_message: &str, identity: &TaskIdentity) -> (Reason, String) {
    let prefix = format!("{}/{}: ", identity.namespace, identity.name);
    let said = termination_message.lines().find_map(|line| {
        let (reason, message) = line.strip_prefix(&prefix)?.split_once(": ")?;
        let reason: Reason = reason.parse().ok()?;
        let failure = !matches!(reason, Reason::Queued | Reason::Running | Reason::Completed);
        failure.then(|| (reason, message.to_string()))
    });
    said.unwrap_or_else(|| (Reason::Failed, termination_message.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use taskyard_api::{HashOutput, TaskOutput};

    use super::*;

    fn id(generation: i64) -> TaskIdentity {
        TaskIdentity {
            namespace: "n".into(),
            name: "t".into(),
            uid: "u".into(),
            generation,
        }
    }

    fn ts() -> jiff::Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn result(generation: i64, outcome: Outcome) -> TaskResult {
        TaskResult {
            kind: TaskKind::HashTask,
            identity: id(generation),
            outcome,
            reason: if outcome == Outcome::Succeeded {
                Reason::Completed
            } else {
                Reason::FetchFailed
            },
            message: "runner says".into(),
            started_at: ts(),
            finished_at: ts(),
            output: (outcome == Outcome::Succeeded).then(|| {
                TaskOutput::Hash(HashOutput {
                    digests: Default::default(),
                    size: 1,
                })
            }),
            attempts: None,
        }
    }

    fn finished(state: &JobState, result: Option<TaskResult>, termination: Option<&str>) -> Option<TaskResult> {
        let identity = id(2);
        final_result(Finished {
            kind: TaskKind::HashTask,
            identity: &identity,
            state,
            result,
            termination_message: termination.map(str::to_string),
            timeout_seconds: 30,
            started_at: ts(),
            finished_at: ts(),
        })
    }

    #[test]
    fn running_jobs_have_no_result() {
        assert!(finished(&JobState::Running, Some(result(2, Outcome::Succeeded)), None).is_none());
    }

    #[test]
    fn a_complete_job_takes_the_runners_result() {
        let r = finished(&JobState::Complete, Some(result(2, Outcome::Succeeded)), None).unwrap();
        assert_eq!((r.outcome, r.reason.as_str()), (Outcome::Succeeded, "Completed"));
        // A result of another generation is not this generation's result.
        let r = finished(&JobState::Complete, Some(result(1, Outcome::Succeeded)), None).unwrap();
        assert_eq!((r.outcome, r.reason.as_str()), (Outcome::Failed, "StoreError"));
    }

    #[test]
    fn deadline_is_timed_out_and_retries_keep_the_runners_message() {
        let deadline = JobState::Failed {
            reason: "DeadlineExceeded".into(),
            message: "x".into(),
        };
        let r = finished(&deadline, None, Some("still downloading")).unwrap();
        assert_eq!(r.reason, Reason::TimedOut);
        assert!(
            r.message.contains("timeoutSeconds (30 s)") && r.message.contains("still downloading"),
            "{}",
            r.message
        );

        let backoff = JobState::Failed {
            reason: "BackoffLimitExceeded".into(),
            message: "Job has reached the specified backoff limit".into(),
        };
        let r = finished(&backoff, Some(result(2, Outcome::Failed)), Some("ignored")).unwrap();
        assert_eq!((r.reason.as_str(), r.message.as_str()), ("FetchFailed", "runner says"));
        let r = finished(
            &backoff,
            None,
            Some("n/t: StoreError: cannot write result.json: refused\n"),
        )
        .unwrap();
        assert_eq!(
            (r.reason.as_str(), r.message.as_str()),
            ("StoreError", "cannot write result.json: refused")
        );
        let r = finished(&backoff, None, Some("the runner ran out of memory (OOMKilled)")).unwrap();
        assert_eq!(
            (r.reason.as_str(), r.message.as_str()),
            ("Failed", "the runner ran out of memory (OOMKilled)")
        );
        let r = finished(&backoff, None, None).unwrap();
        assert!(r.message.contains("BackoffLimitExceeded"), "{}", r.message);
    }

    #[test]
    fn a_runner_that_could_not_write_its_result_fails_the_task_with_store_error() {
        let backoff = JobState::Failed {
            reason: "BackoffLimitExceeded".into(),
            message: "Job has reached the specified backoff limit".into(),
        };
        // A batch's message names every task; this task's line is the one that counts.
        let message = "n/other: FetchFailed: GET u answered HTTP 404\nn/t: StoreError: cannot write result.json: \
                       object store put failed: Connection refused";
        let r = finished(&backoff, None, Some(message)).unwrap();
        assert_eq!(r.reason, Reason::StoreError);
        assert_eq!(
            r.message,
            "cannot write result.json: object store put failed: Connection refused"
        );
        // A line that only looks like one keeps the whole message.
        let r = finished(&backoff, None, Some("n/t: Completed: all good?")).unwrap();
        assert_eq!(
            (r.reason, r.message.as_str()),
            (Reason::Failed, "n/t: Completed: all good?")
        );
        let r = finished(&backoff, None, Some("n/t: NoSuchReason: x")).unwrap();
        assert_eq!(r.reason, Reason::Failed);
    }
}

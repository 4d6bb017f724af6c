//! `job-runner exec`: the tasks of a runner Job, with the bucket as the store.
//!
//! Each task's result goes to its `result.json`. The Pod's termination message carries the
//! failures too, so the operator can explain a failure even when the store cannot be written.
//!
//! A batch (several tasks, `input.batch` set) runs as `batch` says; its exit code is 0 when
//! every task's result is written, whatever the outcomes, and non-zero otherwise, so that the
//! Job fails and the operator runs the tasks without a result again, each alone.
//!
//! One task: exit code 0 when it succeeded or failed permanently (a 4xx, a blocked address,
//! an invalid or too-large input: its failed result.json is written, and a retry would only
//! fail again; Kubernetes 1.20 has no podFailurePolicy to say so). Non-zero when a task
//! failed transiently (5xx, network, timeouts, the store), so the Job's backoffLimit retries.

use taskyard_api::{Outcome, RunnerInput};
use taskyard_common::store::{S3Settings, S3Store, Store};

use crate::settings::RunnerArgs;
use crate::tasks::{Context, run_task, write_result};

/// Kubernetes reads at most 4096 bytes of a termination message.
const TERMINATION_MESSAGE_MAX: usize = 4000;

/// Runs every task of the input. Returns the process exit code: 0 when all succeeded.
pub async fn exec(input: &RunnerInput, s3: &S3Settings, args: RunnerArgs, termination_log: &str) -> i32 {
    let store = Store::S3(S3Store::connect(s3).await);
    let ctx = match Context::new(store.clone(), args) {
        Ok(ctx) => ctx,
        Err(e) => {
            write_termination_message(termination_log, &e.to_string());
            return 1;
        }
    };
    if let Some(batch) = &input.batch {
        let ended = crate::batch::run_batch(&ctx, &input.tasks, batch).await;
        let failures: Vec<String> = ended
            .iter()
            .filter(|e| !e.written || e.result.outcome == Outcome::Failed)
            .map(|e| match e.written {
                true => format!("{}: {}: {}", e.task, e.result.reason, e.result.message),
                false => format!("{}: StoreError: cannot write result.json", e.task),
            })
            .collect();
        let unwritten = ended.iter().any(|e| !e.written);
        return exit_code(&failures, unwritten, termination_log);
    }
    let mut failures = Vec::new();
    let mut retry = false;
    for task in &input.tasks {
        let ran = run_task(&ctx, task).await;
        let result = ran.result;
        let id = &task.identity;
        tracing::info!(task = %format!("{}/{}", id.namespace, id.name), outcome = ?result.outcome, reason = %result.reason, "{}", result.message);
        if let Err(e) = write_result(&store, &result).await {
            retry = true;
            failures.push(format!(
                "{}/{}: StoreError: cannot write result.json: {e}",
                id.namespace, id.name
            ));
        } else if result.outcome == Outcome::Failed {
            retry |= !ran.permanent;
            failures.push(format!(
                "{}/{}: {}: {}",
                id.namespace, id.name, result.reason, result.message
            ));
        }
    }
    exit_code(&failures, retry, termination_log)
}

/// 0 unless a failure may pass on a retry; the failures go to the termination message.
fn exit_code(failures: &[String], retry: bool, termination_log: &str) -> i32 {
    if failures.is_empty() {
        return 0;
    }
    write_termination_message(termination_log, &failures.join("\n"));
    i32::from(retry)
}

fn write_termination_message(path: &str, message: &str) {
    let mut end = message.len().min(TERMINATION_MESSAGE_MAX);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    eprintln!("{message}");
    if let Err(e) = std::fs::write(path, &message[..end]) {
        tracing::warn!("cannot write the termination message to {path}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_failures_end_the_job_without_a_retry() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("termination-log");
        let log = log.to_str().unwrap();
        assert_eq!(exit_code(&[], false, log), 0);
        let failures = vec!["ns/a: FetchFailed: GET u answered HTTP 404".to_string()];
        assert_eq!(exit_code(&failures, false, log), 0, "a 404 is not retried");
        assert_eq!(std::fs::read_to_string(log).unwrap(), failures[0], "but it is reported");
        assert_eq!(exit_code(&failures, true, log), 1, "a transient failure is retried");
    }
}

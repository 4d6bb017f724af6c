//! The tasks of a batch Job, run side by side, each keeping the promises of a Job of its own:
//! its own timeout (per run), its own retries (the runner retries a transient failure itself,
//! since a Pod retry would rerun every task), and its result in the store as soon as it is
//! done, followed by a "done" report the operator watches for. A task whose result cannot be
//! written has no report; the Job then fails and the operator runs that task again alone.
//!
//! The report is one object listing every task done so far, rewritten after each: one writer
//! at a time, so the last write lists them all.

use std::time::Duration;

use futures::StreamExt;
use taskyard_api::{Batch, DoneReport, Outcome, RunnerTask, TaskResult, TaskSpec, TaskSpecCommon};
use taskyard_common::store::Store;
use tokio::sync::Mutex;

use crate::tasks::{Context, run_task, write_result};

/// The wait before the second run of a task; it doubles with every run, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Writes of a result tried before the task is left to a run of its own.
const WRITE_TRIES: u32 = 3;

/// How one task of the batch ended, for the log and the termination message.
pub struct Ended {
    pub task: String,
    pub result: TaskResult,
    /// The result is in the store.
    pub written: bool,
}

/// Runs every task of the batch, `ctx.args.batch_concurrency` at a time.
pub async fn run_batch(ctx: &Context, tasks: &[RunnerTask], batch: &Batch) -> Vec<Ended> {
    let concurrency = ctx.args.batch_concurrency.max(1) as usize;
    let report = Mutex::new(DoneReport::default());
    futures::stream::iter(tasks)
        .map(|task| run_one(ctx, task, batch, &report))
        .buffer_unordered(concurrency)
        .collect()
        .await
}

async fn run_one(ctx: &Context, task: &RunnerTask, batch: &Batch, report: &Mutex<DoneReport>) -> Ended {
    let retries = retries_of(&task.spec).max(0) as u32;
    let mut runs = 1;
    let mut result = loop {
        let ran = run_task(ctx, task).await;
        let done = ran.result.outcome == Outcome::Succeeded || ran.permanent || runs > retries;
        if done {
            break ran.result;
        }
        tokio::time::sleep(backoff(runs)).await;
        runs += 1;
    };
    result.attempts = Some(runs);
    let id = &task.identity;
    let name = format!("{}/{}", id.namespace, id.name);
    tracing::info!(task = %name, outcome = ?result.outcome, reason = %result.reason, runs, "{}", result.message);
    let written = write_with_retries(&ctx.store, &result).await;
    if written {
        report_done(&ctx.store, batch, report, task).await;
    }
    Ended {
        task: name,
        result,
        written,
    }
}

fn retries_of(spec: &TaskSpec) -> i32 {
    match spec {
        TaskSpec::ImageTask(s) => s.retries(),
        TaskSpec::TextTask(s) => s.retries(),
        TaskSpec::HashTask(s) => s.retries(),
    }
}

/// The wait after the `run`-th run failed.
fn backoff(run: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(run.saturating_sub(1)))
        .min(MAX_BACKOFF)
}

async fn write_with_retries(store: &Store, result: &TaskResult) -> bool {
    for attempt in 1..=WRITE_TRIES {
        match write_result(store, result).await {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(attempt, "cannot write the result of {}: {e}", result.identity.name);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    false
}

/// Best effort: without the report the operator still reads the result when the Job ends.
/// The lock is held across the write, so reports land in the order they grow.
async fn report_done(store: &Store, batch: &Batch, report: &Mutex<DoneReport>, task: &RunnerTask) {
    let mut report = report.lock().await;
    report.add(&task.identity);
    let body = match serde_json::to_vec(&*report) {
        Ok(body) => bytes::Bytes::from(body),
        Err(e) => return tracing::warn!("cannot encode the done report: {e}"),
    };
    let key = &batch.report_key;
    if let Err(e) = store.put(key, body, "application/json").await {
        tracing::warn!("cannot report {key}: {e}; the operator reads the result when the Job ends");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_between_runs_doubles_up_to_a_limit() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}

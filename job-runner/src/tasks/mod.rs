//! Running one task: dispatch by kind, the whole-task timeout, and the result.

mod hash;
mod image;
mod text;
mod upload;

use bytes::Bytes;
use taskyard_api::{Outcome, RunnerTask, TaskOutput, TaskResult, TaskSpec, TaskSpecCommon};
use taskyard_common::keys::result_key;
use taskyard_common::store::{Store, StoreError};

use crate::bounds::bound_result;
use crate::budget::ByteBudget;
use crate::error::RunnerError;
use crate::fetch::Fetcher;
use crate::settings::RunnerArgs;

/// What a task runs with.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub fetcher: Fetcher,
    pub args: RunnerArgs,
    /// Fetched image bytes held at once.
    pub downloads: ByteBudget,
    /// Memory of images being decoded, resized and encoded at once.
    pub work: ByteBudget,
}

impl Context {
    pub fn new(store: Store, args: RunnerArgs) -> Result<Self, RunnerError> {
        Ok(Self {
            fetcher: Fetcher::new(&args)?,
            downloads: ByteBudget::new(args.image_download_bytes),
            work: ByteBudget::new(args.image_work_bytes),
            store,
            args,
        })
    }
}

/// A finished task's summary message and output.
pub type Done = (String, TaskOutput);

/// A task's result, and whether a failure is permanent (a retry would fail the same way).
pub struct Ran {
    pub result: TaskResult,
    pub permanent: bool,
}

/// Runs one task to its result. Never fails: every failure becomes a `Failed` result that
/// says what is wrong, bounded in size for status.
pub async fn run_task(ctx: &Context, task: &RunnerTask) -> Ran {
    let started_at = jiff::Timestamp::now();
    let timeout_seconds = match &task.spec {
        TaskSpec::ImageTask(s) => s.timeout_seconds(),
        TaskSpec::TextTask(s) => s.timeout_seconds(),
        TaskSpec::HashTask(s) => s.timeout_seconds(),
    };
    let deadline = std::time::Duration::from_secs(timeout_seconds.max(1) as u64);
    let done = match tokio::time::timeout(deadline, dispatch(ctx, task)).await {
        Ok(done) => done,
        Err(_) => Err(RunnerError::TimedOut(timeout_seconds)),
    };
    let permanent = done.as_ref().err().is_some_and(RunnerError::is_permanent);
    let (outcome, reason, message, output) = match done {
        Ok((message, output)) => (
            Outcome::Succeeded,
            taskyard_api::Reason::Completed,
            message,
            Some(output),
        ),
        Err(e) => (Outcome::Failed, e.reason(), e.to_string(), None),
    };
    let mut result = TaskResult {
        kind: task.spec.kind(),
        identity: task.identity.clone(),
        outcome,
        reason,
        message,
        started_at,
        finished_at: jiff::Timestamp::now(),
        output,
        attempts: None,
    };
    bound_result(&mut result);
    Ran { result, permanent }
}

async fn dispatch(ctx: &Context, task: &RunnerTask) -> Result<Done, RunnerError> {
    let task = &upload::confined(task)?;
    match &task.spec {
        TaskSpec::HashTask(spec) => hash::run(ctx, spec).await,
        TaskSpec::TextTask(spec) => text::run(ctx, &task.identity, spec).await,
        TaskSpec::ImageTask(spec) => image::run(ctx, &task.identity, spec).await,
    }
}

/// Writes `result.json` where the operator looks for it.
pub async fn write_result(store: &Store, result: &TaskResult) -> Result<(), StoreError> {
    let key = result_key(result.kind, &result.identity);
    let body = serde_json::to_vec_pretty(result).expect("a result always serialises");
    store.put(&key, Bytes::from(body), "application/json").await
}

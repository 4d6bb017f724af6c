//! `job-runner run --store DIR TASK.yaml`: one task resource, run on this machine with a
//! directory as the object store. The runner appends the HashTask log line itself here, as a
//! new segment of the day's log.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use taskyard_api::{
    API_VERSION, HashTaskStatus, ImageTaskStatus, Outcome, RunnerTask, TaskIdentity, TaskResult, TaskSpec,
    TextTaskStatus,
};
use taskyard_common::hashlog::{self, LogLine};
use taskyard_common::status::{TaskStatus, apply_result};
use taskyard_common::store::{DirStore, Store};

use crate::settings::RunnerArgs;
use crate::tasks::{Context, run_task, write_result};

/// A problem with the command line or the task file (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// What a local run produced.
pub struct LocalOutcome {
    pub result: TaskResult,
    /// The task's status as the operator would write it.
    pub status: Value,
}

/// Reads a task resource from YAML text.
pub fn parse_task(yaml: &str) -> Result<RunnerTask, UsageError> {
    let doc: Value =
        serde_yaml::from_str(yaml).map_err(|e| UsageError(format!("the task file is not valid YAML: {e}")))?;
    let field = |path: &str| doc.pointer(path).and_then(Value::as_str);
    match field("/apiVersion") {
        Some(API_VERSION) => {}
        other => {
            return Err(UsageError(format!(
                "apiVersion is {other:?}: a task file has apiVersion: {API_VERSION}"
            )));
        }
    }
    let kind = field("/kind")
        .ok_or_else(|| UsageError("the task file has no kind (ImageTask, TextTask or HashTask)".into()))?;
    let name = field("/metadata/name").ok_or_else(|| UsageError("the task file has no metadata.name".into()))?;
    let spec = doc
        .get("spec")
        .cloned()
        .ok_or_else(|| UsageError("the task file has no spec".into()))?;
    // What the API server would refuse on kubectl apply is refused here too.
    if let Some(schema) = crate::schema::crd_schema(kind) {
        let errors = crate::schema::validate(&schema, &doc);
        if !errors.is_empty() {
            return Err(UsageError(crate::schema::invalid_message(kind, name, &errors)));
        }
    }
    let spec: TaskSpec = serde_json::from_value(json!({"kind": kind, "spec": spec}))
        .map_err(|e| UsageError(format!("invalid {kind} spec: {e}")))?;
    let identity = TaskIdentity {
        namespace: field("/metadata/namespace").unwrap_or("default").to_string(),
        name: name.to_string(),
        // Like `kubectl create`, every run is a new object unless the file names its uid.
        uid: field("/metadata/uid")
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        generation: doc.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1),
    };
    Ok(RunnerTask { identity, spec })
}

/// Runs the task in `yaml` with `store_dir` as the store.
pub async fn run_local(store_dir: &Path, yaml: &str, args: RunnerArgs) -> Result<LocalOutcome, UsageError> {
    let task = parse_task(yaml)?;
    std::fs::create_dir_all(store_dir).map_err(|e| {
        UsageError(format!(
            "cannot create the store directory {}: {e}",
            store_dir.display()
        ))
    })?;
    let store = Store::Dir(DirStore::new(store_dir));
    let ctx = Context::new(store.clone(), args).map_err(|e| UsageError(e.to_string()))?;
    let result = run_task(&ctx, &task).await.result;
    Ok(record(&store, &task, result).await)
}

/// Records a finished task as a cluster would: its `result.json`, the HashTask results log
/// line (appended here, as no operator runs), and the status the operator would write.
/// Used by `job-runner run` and the gateway's local mode.
pub async fn record(store: &Store, task: &RunnerTask, mut result: TaskResult) -> LocalOutcome {
    let recorded = async {
        write_result(store, &result).await?;
        if let TaskSpec::HashTask(_) = task.spec {
            hashlog::append(store, &[LogLine::from_result(&result)]).await?;
        }
        Ok::<_, taskyard_common::store::StoreError>(())
    };
    if let Err(e) = recorded.await {
        result.outcome = Outcome::Failed;
        result.reason = taskyard_api::Reason::StoreError;
        result.message = format!("cannot record the result in {}: {e}", store.describe());
    }
    let status = match task.spec {
        TaskSpec::HashTask(_) => status_of::<HashTaskStatus>(&result),
        TaskSpec::ImageTask(_) => status_of::<ImageTaskStatus>(&result),
        TaskSpec::TextTask(_) => status_of::<TextTaskStatus>(&result),
    };
    LocalOutcome { result, status }
}

fn status_of<S: TaskStatus + DeserializeOwned>(result: &TaskResult) -> Value {
    let mut status = S::default();
    apply_result(&mut status, result);
    serde_json::to_value(&status).expect("a status always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_task_resource_with_defaults() {
        let task = parse_task(
            "apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {name: r}\nspec:\n  source: {object: a.bin}\n",
        )
        .unwrap();
        assert_eq!(task.identity.namespace, "default");
        assert_eq!(task.identity.generation, 1);
        let TaskSpec::HashTask(spec) = task.spec else {
            panic!("not a HashTask")
        };
        assert_eq!(spec.retries, 2);
        assert_eq!(spec.timeout_seconds, 600);
        assert_eq!(spec.algorithms, vec![taskyard_api::HashAlgorithm::Md5]);
    }

    #[test]
    fn explains_bad_task_files() {
        for (yaml, want) in [
            ("kind: HashTask", "apiVersion"),
            (
                "apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {name: r}\nspec: {source: {object: a}, algorithms: []}",
                "HashTask.taskyard.dev \"r\" is invalid: spec.algorithms: Invalid value: 0: spec.algorithms in body should have at least 1 items",
            ),
            (
                "apiVersion: taskyard.dev/v1alpha1\nkind: ImageTask\nmetadata: {name: g}\nspec: {source: {object: a}, resize: {width: 0, height: 1}}",
                "spec.resize.width: Invalid value: 0",
            ),
            (
                "apiVersion: taskyard.dev/v1alpha1\nkind: Pod\nmetadata: {name: a}\nspec: {}",
                "invalid Pod spec",
            ),
            (
                "apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nspec: {}",
                "metadata.name",
            ),
            (": : :", "not valid YAML"),
        ] {
            let err = parse_task(yaml).unwrap_err();
            assert!(err.0.contains(want), "{yaml:?} gave {err}");
        }
    }
}

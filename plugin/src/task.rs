//! Tasks in the user's namespace, created and read with the user's own credentials: create,
//! find by name, wait until finished, print.

use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use crate::error::{PluginError, kube as kube_error};
use crate::spec::{NewTask, manifest, resource};

const KINDS: [&str; 3] = ["HashTask", "ImageTask", "TextTask"];

fn api(client: &kube::Client, namespace: &str, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("taskyard.dev", "v1alpha1", kind);
    Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::from_gvk_with_plural(&gvk, &resource(kind)),
    )
}

/// A task's kind and name.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRef {
    pub kind: &'static str,
    pub name: String,
}

impl std::fmt::Display for TaskRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.to_ascii_lowercase(), self.name)
    }
}

pub async fn create(
    client: &kube::Client,
    namespace: &str,
    task: &NewTask,
    name: Option<&str>,
) -> Result<TaskRef, PluginError> {
    let object: DynamicObject =
        serde_json::from_value(manifest(task, namespace, name)).expect("a manifest is an object");
    let what = format!("create {} in namespace {namespace}", resource(task.kind));
    let created = api(client, namespace, task.kind)
        .create(&PostParams::default(), &object)
        .await
        .map_err(|e| kube_error(&what, e))?;
    Ok(TaskRef {
        kind: task.kind,
        name: created.metadata.name.unwrap_or_default(),
    })
}

/// The kind a `get`/`wait` argument names: `KIND/NAME` (kind, plural or short name) or a
/// bare NAME (any kind).
pub fn parse_ref(arg: &str) -> Result<(Option<&'static str>, String), PluginError> {
    let Some((kind, name)) = arg.split_once('/') else {
        return Ok((None, arg.to_string()));
    };
    let kind = kind.split('.').next().unwrap_or_default().to_ascii_lowercase();
    let found = KINDS.iter().copied().find(|k| {
        let lower = k.to_ascii_lowercase();
        kind == lower
            || kind == resource(k)
            || matches!((kind.as_str(), *k), ("imgtask", "ImageTask") | ("txttask", "TextTask"))
    });
    match found {
        Some(k) => Ok((Some(k), name.to_string())),
        None => Err(PluginError::Usage(format!(
            "{arg:?}: the kind is one of hashtask, imagetask (imgtask), texttask (txttask)"
        ))),
    }
}

/// A task by `get`/`wait` argument, with its resource.
pub async fn find(client: &kube::Client, namespace: &str, arg: &str) -> Result<(TaskRef, DynamicObject), PluginError> {
    let (kind, name) = parse_ref(arg)?;
    let kinds: Vec<&'static str> = kind.map(|k| vec![k]).unwrap_or_else(|| KINDS.to_vec());
    let mut found = Vec::new();
    // A user may read some kinds only: a bare name is looked up in those, and a refusal
    // counts only when no kind could be read.
    let (mut refused, mut readable) = (None, 0);
    for kind in kinds {
        let what = format!("get {} in namespace {namespace}", resource(kind));
        let got = api(client, namespace, kind).get_opt(&name).await;
        readable += usize::from(got.is_ok());
        match got {
            Ok(Some(object)) => found.push((
                TaskRef {
                    kind,
                    name: name.clone(),
                },
                object,
            )),
            Ok(None) => {}
            Err(kube::Error::Api(s)) if s.code == 403 => {
                refused.get_or_insert(kube_error(&what, kube::Error::Api(s)));
            }
            Err(e) => return Err(kube_error(&what, e)),
        }
    }
    match (found.len(), refused) {
        (1, _) => Ok(found.remove(0)),
        (0, Some(refused)) if readable == 0 => Err(refused),
        (0, _) => Err(PluginError::Kube(format!(
            "no task named {name:?} in namespace {namespace} (`kubectl get taskyard -n {namespace}` lists them)"
        ))),
        _ => Err(PluginError::Usage(format!(
            "several tasks are named {name:?}: say which, e.g. {}",
            found
                .iter()
                .map(|(r, _)| r.to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ))),
    }
}

/// `Succeeded`, `Failed`, or None while the task is pending or running.
pub fn finished(object: &DynamicObject) -> Option<&str> {
    object.data["status"]["phase"]
        .as_str()
        .filter(|p| matches!(*p, "Succeeded" | "Failed"))
}

/// Polls the task every second until it finishes or `timeout` passes.
pub async fn wait(
    client: &kube::Client,
    namespace: &str,
    task: &TaskRef,
    timeout: Duration,
) -> Result<DynamicObject, PluginError> {
    let deadline = Instant::now() + timeout;
    let what = format!("get {} in namespace {namespace}", resource(task.kind));
    loop {
        let object = api(client, namespace, task.kind)
            .get(&task.name)
            .await
            .map_err(|e| kube_error(&what, e))?;
        if finished(&object).is_some() {
            return Ok(object);
        }
        if Instant::now() >= deadline {
            return Err(PluginError::Timeout(timeout, task.to_string()));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The task's status as YAML under its name; Err(TaskFailed) when it failed.
pub fn report(task: &TaskRef, object: &DynamicObject) -> Result<String, PluginError> {
    let status = object.data.get("status").cloned().unwrap_or(Value::Null);
    let yaml = serde_yaml::to_string(&status).unwrap_or_default();
    let text = format!("{task}\n{}", indent(&yaml));
    if status["phase"] == "Failed" {
        let message = status["conditions"][0]["message"].as_str().unwrap_or("no message");
        return Err(PluginError::TaskFailed(format!("{text}{task} failed: {message}")));
    }
    Ok(text)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_by_kind_or_bare_name() {
        assert_eq!(parse_ref("report").unwrap(), (None, "report".into()));
        assert_eq!(parse_ref("hashtask/r").unwrap(), (Some("HashTask"), "r".into()));
        assert_eq!(parse_ref("imgtask/r").unwrap().0, Some("ImageTask"));
        assert_eq!(parse_ref("texttasks.taskyard.dev/r").unwrap().0, Some("TextTask"));
        assert!(parse_ref("job/r").is_err());
    }

    fn object(status: Value) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "taskyard.dev/v1alpha1", "kind": "HashTask",
            "metadata": {"name": "r"}, "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn reports_print_the_status_and_fail_for_a_failed_task() {
        let t = TaskRef {
            kind: "HashTask",
            name: "r".into(),
        };
        let ok = object(serde_json::json!({"phase": "Succeeded", "digests": {"md5": "abc"}}));
        assert_eq!(finished(&ok), Some("Succeeded"));
        let text = report(&t, &ok).unwrap();
        assert!(
            text.starts_with("hashtask/r\n") && text.contains("  digests:\n    md5: abc"),
            "{text}"
        );
        let failed = object(serde_json::json!({"phase": "Failed", "conditions": [{"message": "too big"}]}));
        let e = report(&t, &failed).unwrap_err().to_string();
        assert!(e.ends_with("hashtask/r failed: too big"), "{e}");
        assert_eq!(finished(&object(serde_json::json!({"phase": "Running"}))), None);
    }
}

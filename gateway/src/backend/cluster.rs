//! Cluster mode: every task is a task resource (HashTask, ImageTask, TextTask) in one
//! namespace, created and read through the Kubernetes API; the operator runs it. The gateway
//! keeps nothing of its own, so any number of replicas give the same answers: names are
//! unique in a namespace, and the API server refuses a second create of one name, which is
//! what the MD5 service's ids rely on.

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use taskyard_api::{TaskKind, TaskSpec};
use taskyard_common::store::Store;

use super::{API_LABEL, Backend, BackendError, NewTask, Status, TaskView};

pub const GROUP: &str = "taskyard.dev";
pub const VERSION: &str = "v1alpha1";

#[derive(Clone)]
pub struct ClusterBackend {
    client: kube::Client,
    store: Store,
    namespace: String,
}

impl ClusterBackend {
    pub fn new(client: kube::Client, store: Store, namespace: String) -> Self {
        Self {
            client,
            store,
            namespace,
        }
    }

    fn api(&self, kind: TaskKind) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, &resource(kind))
    }
}

/// The API resource of a task kind.
pub fn resource(kind: TaskKind) -> ApiResource {
    let plural = format!("{}s", kind.lower());
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, kind.as_str()), &plural)
}

/// The resource to create for a new task.
pub fn manifest(namespace: &str, task: &NewTask) -> Value {
    let tagged = serde_json::to_value(&task.spec).expect("a task spec serialises");
    json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": task.spec.kind().as_str(),
        "metadata": {"name": task.name, "namespace": namespace, "labels": task.labels},
        "spec": tagged["spec"],
    })
}

/// A task resource as the HTTP layer sees it.
pub fn view(kind: TaskKind, object: &DynamicObject) -> Result<TaskView, String> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let spec: TaskSpec = serde_json::from_value(json!({"kind": kind.as_str(), "spec": object.data["spec"]}))
        .map_err(|e| format!("the {kind} {name:?} has a spec the gateway cannot read: {e}"))?;
    let raw = match object.data.get("status") {
        Some(Value::Null) | None => json!({}),
        Some(status) => status.clone(),
    };
    let unreadable = |e: serde_json::Error| format!("the {kind} {name:?} has a status the gateway cannot read: {e}");
    let status = match kind {
        TaskKind::HashTask => Status::Hash(serde_json::from_value(raw).map_err(unreadable)?),
        TaskKind::ImageTask => Status::Image(serde_json::from_value(raw).map_err(unreadable)?),
        TaskKind::TextTask => Status::Text(serde_json::from_value(raw).map_err(unreadable)?),
    };
    Ok(TaskView {
        kind,
        uid: object.metadata.uid.clone().unwrap_or_default(),
        created: object
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .unwrap_or_else(jiff::Timestamp::now),
        labels: object.metadata.labels.clone().unwrap_or_default(),
        name,
        spec,
        status,
    })
}

fn unavailable(what: &str, e: kube::Error) -> BackendError {
    BackendError::Unavailable(format!("cannot {what} through the Kubernetes API: {e}"))
}

fn selector(api: &str) -> ListParams {
    ListParams::default().labels(&format!("{API_LABEL}={api}"))
}

impl Backend for ClusterBackend {
    fn store(&self) -> &Store {
        &self.store
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn create(&self, task: NewTask) -> BoxFuture<'_, Result<TaskView, BackendError>> {
        async move {
            let kind = task.spec.kind();
            let object: DynamicObject =
                serde_json::from_value(manifest(&self.namespace, &task)).expect("a manifest is an object");
            match self.api(kind).create(&PostParams::default(), &object).await {
                Ok(created) => view(kind, &created).map_err(BackendError::Unavailable),
                Err(kube::Error::Api(s)) if s.code == 409 => Err(BackendError::AlreadyExists(task.name)),
                Err(e) => Err(unavailable(&format!("create the {kind} {:?}", task.name), e)),
            }
        }
        .boxed()
    }

    fn get<'a>(&'a self, kind: TaskKind, name: &'a str) -> BoxFuture<'a, Result<Option<TaskView>, BackendError>> {
        async move {
            // No resource can have such a name: the legacy APIs' ids come from the URL, and
            // asking the API server with one is a 400 (or a request kube cannot build), which
            // would read as "unavailable" where local mode answers "no such task".
            if !super::is_object_name(name) {
                return Ok(None);
            }
            match self.api(kind).get_opt(name).await {
                Ok(Some(object)) => view(kind, &object).map(Some).map_err(BackendError::Unavailable),
                Ok(None) => Ok(None),
                Err(e) => Err(unavailable(&format!("read the {kind} {name:?}"), e)),
            }
        }
        .boxed()
    }

    fn names<'a>(&'a self, kind: TaskKind, api: &'a str) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        async move {
            let list = self
                .api(kind)
                .list_metadata(&selector(api))
                .await
                .map_err(|e| unavailable(&format!("list the {kind}s"), e))?;
            Ok(list.items.into_iter().filter_map(|m| m.metadata.name).collect())
        }
        .boxed()
    }

    fn list<'a>(&'a self, kind: TaskKind, api: &'a str) -> BoxFuture<'a, Result<Vec<TaskView>, BackendError>> {
        async move {
            let list = self
                .api(kind)
                .list(&selector(api))
                .await
                .map_err(|e| unavailable(&format!("list the {kind}s"), e))?;
            let mut views = Vec::with_capacity(list.items.len());
            for object in &list.items {
                match view(kind, object) {
                    Ok(v) => views.push(v),
                    // One unreadable resource must not hide every other task.
                    Err(e) => tracing::warn!("{e}"),
                }
            }
            views.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)));
            Ok(views)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_md5_task() -> NewTask {
        let spec = crate::legacy::spec("HashTask", json!({"source": {"object": "hashes/x"}}));
        NewTask::for_api("md5", "md5-7".into(), spec)
    }

    #[test]
    fn the_manifest_is_a_task_resource_with_the_api_label() {
        let m = manifest("legacy", &new_md5_task());
        assert_eq!(m["apiVersion"], "taskyard.dev/v1alpha1");
        assert_eq!(m["kind"], "HashTask");
        assert_eq!(m["metadata"]["name"], "md5-7");
        assert_eq!(m["metadata"]["namespace"], "legacy");
        assert_eq!(m["metadata"]["labels"][API_LABEL], "md5");
        assert_eq!(m["spec"]["source"]["object"], "hashes/x");
        assert_eq!(m["spec"]["algorithms"], json!(["md5"]));
        assert!(m["spec"].get("kind").is_none(), "{m}");
    }

    #[test]
    fn a_resource_reads_back_as_a_view() {
        let mut m = manifest("legacy", &new_md5_task());
        m["metadata"]["uid"] = json!("u-1");
        m["metadata"]["creationTimestamp"] = json!("2026-01-02T03:04:05Z");
        m["status"] = json!({"phase": "Succeeded", "digests": {"md5": "abc"}});
        let object: DynamicObject = serde_json::from_value(m).unwrap();
        let v = view(TaskKind::HashTask, &object).unwrap();
        assert_eq!((v.name.as_str(), v.uid.as_str()), ("md5-7", "u-1"));
        assert_eq!(v.phase(), taskyard_api::Phase::Succeeded);
        let Status::Hash(s) = &v.status else {
            panic!("{:?}", v.status)
        };
        assert_eq!(s.digests["md5"], "abc");
        assert_eq!(v.created.to_string(), "2026-01-02T03:04:05Z");
    }

    #[test]
    fn a_new_resource_without_status_is_pending() {
        let object: DynamicObject = serde_json::from_value(manifest("legacy", &new_md5_task())).unwrap();
        let v = view(TaskKind::HashTask, &object).unwrap();
        assert_eq!(v.phase(), taskyard_api::Phase::Pending);
    }

    #[test]
    fn a_resource_with_a_foreign_spec_is_an_error_naming_it() {
        let mut m = manifest("legacy", &new_md5_task());
        m["spec"] = json!({"source": 3});
        let object: DynamicObject = serde_json::from_value(m).unwrap();
        let e = view(TaskKind::HashTask, &object).unwrap_err();
        assert!(e.contains("md5-7") && e.contains("spec"), "{e}");
    }

    /// A backend whose API server is a closed port on loopback: any request it sends fails.
    fn unreachable() -> ClusterBackend {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let store = Store::Dir(taskyard_common::store::DirStore::new(std::env::temp_dir()));
        ClusterBackend::new(kube::Client::try_from(config).unwrap(), store, "legacy".into())
    }

    #[tokio::test]
    async fn a_name_no_resource_can_have_is_no_task_without_asking() {
        let backend = unreachable();
        for name in ["b64-a b", "b64-%", "b64-A", "md5-1/status", "", "b64-..", "b64-x-"] {
            let found = backend.get(TaskKind::ImageTask, name).await;
            assert!(matches!(found, Ok(None)), "{name:?}: {found:?}");
        }
        // A valid name is asked for, so the closed port shows.
        let asked = backend.get(TaskKind::ImageTask, "b64-0a1b").await;
        assert!(matches!(asked, Err(BackendError::Unavailable(_))), "{asked:?}");
    }

    #[test]
    fn resources_have_the_crds_plurals() {
        assert_eq!(resource(TaskKind::ImageTask).plural, "imagetasks");
        assert_eq!(resource(TaskKind::HashTask).api_version, "taskyard.dev/v1alpha1");
    }
}

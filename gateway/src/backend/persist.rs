//! Local mode keeps each task as a record in the store directory, beside its results
//! (`tasks/<namespace>/<kind>/<name>/<uid>/resource.json`), so that a restarted gateway
//! still knows the ids it handed out and finishes the tasks it had not.

use bytes::Bytes;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use taskyard_api::{TaskKind, TaskSpec};
use taskyard_common::store::{Store, StoreError};

use super::{Status, TaskView};

/// A record is a task resource's metadata, spec and status; never larger than this.
const RECORD_LIMIT: u64 = 4 << 20;

#[derive(Serialize, Deserialize)]
struct Record {
    name: String,
    uid: String,
    created: jiff::Timestamp,
    labels: std::collections::BTreeMap<String, String>,
    task: TaskSpec,
    status: Value,
}

fn key(namespace: &str, view: &TaskView) -> String {
    format!(
        "tasks/{namespace}/{}/{}/{}/resource.json",
        view.kind.lower(),
        view.name,
        view.uid
    )
}

pub async fn save(store: &Store, namespace: &str, view: &TaskView) -> Result<(), StoreError> {
    let status = match &view.status {
        Status::Hash(s) => serde_json::to_value(s),
        Status::Image(s) => serde_json::to_value(s),
        Status::Text(s) => serde_json::to_value(s),
    }
    .expect("a status serialises");
    let record = Record {
        name: view.name.clone(),
        uid: view.uid.clone(),
        created: view.created,
        labels: view.labels.clone(),
        task: view.spec.clone(),
        status,
    };
    let body = serde_json::to_vec(&record).expect("a record serialises");
    store
        .put(&key(namespace, view), Bytes::from(body), "application/json")
        .await
}

/// Every task recorded in `namespace`. A record that cannot be read is skipped with a
/// warning: one damaged file must not keep the gateway from starting.
pub async fn load(store: &Store, namespace: &str) -> Result<Vec<TaskView>, StoreError> {
    let keys: Vec<String> = store.list(&format!("tasks/{namespace}/")).try_collect().await?;
    let mut views = Vec::new();
    for key in keys.iter().filter(|k| k.ends_with("/resource.json")) {
        let Some(bytes) = store.get(key, RECORD_LIMIT).await? else {
            continue;
        };
        match parse(&bytes) {
            Ok(view) => views.push(view),
            Err(e) => tracing::warn!("skipping the task record {key}: {e}"),
        }
    }
    Ok(views)
}

fn parse(bytes: &[u8]) -> Result<TaskView, serde_json::Error> {
    let r: Record = serde_json::from_slice(bytes)?;
    let kind = r.task.kind();
    let status = match kind {
        TaskKind::HashTask => Status::Hash(serde_json::from_value(r.status)?),
        TaskKind::ImageTask => Status::Image(serde_json::from_value(r.status)?),
        TaskKind::TextTask => Status::Text(serde_json::from_value(r.status)?),
    };
    Ok(TaskView {
        kind,
        name: r.name,
        uid: r.uid,
        created: r.created,
        labels: r.labels,
        spec: r.task,
        status,
    })
}

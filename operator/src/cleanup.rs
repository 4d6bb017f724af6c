//! `cleanupOnDelete`: a deleted task's own store objects (results, manifests, texts of every
//! generation) are deleted after it (see `reaper`). Shared images and the HashTask results
//! log are never deleted. Nothing holds the deletion itself: versions before 0.2 used the
//! finalizer below, which the operator now only removes.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use taskyard_api::{TaskIdentity, TaskKind};
use taskyard_common::keys::{manifest_key, result_key, text_key};
use taskyard_common::store::Store;

use crate::error::Error;
use crate::task::TaskResource;

/// The finalizer of versions before 0.2.
pub const FINALIZER: &str = "taskyard.dev/cleanup";

/// The task-specific keys of every generation up to `identity.generation`.
pub fn task_keys(kind: TaskKind, identity: &TaskIdentity) -> Vec<String> {
    (1..=identity.generation)
        .flat_map(|generation| {
            let id = TaskIdentity {
                generation,
                ..identity.clone()
            };
            let mut keys = vec![result_key(kind, &id)];
            match kind {
                TaskKind::ImageTask => keys.push(manifest_key(kind, &id)),
                TaskKind::TextTask => keys.push(text_key(&id)),
                TaskKind::HashTask => {}
            }
            keys
        })
        .collect()
}

/// Deletes the task's objects; a missing object is not an error.
pub async fn delete_objects(store: &Store, keys: &[String]) -> Result<(), String> {
    for key in keys {
        store.delete(key).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub fn has_finalizer<K: Resource>(task: &K) -> bool {
    task.finalizers().iter().any(|f| f == FINALIZER)
}

/// Sets the task's finalizers to `finalizers`, if the task has not changed since it was read.
pub async fn set_finalizers<K: TaskResource>(api: &Api<K>, task: &K, finalizers: Vec<String>) -> Result<(), Error> {
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": task.resource_version()}});
    api.patch(&task.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generations_own_objects_and_nothing_shared() {
        let id = TaskIdentity {
            namespace: "n".into(),
            name: "t".into(),
            uid: "u".into(),
            generation: 2,
        };
        assert_eq!(
            task_keys(TaskKind::TextTask, &id),
            [
                "tasks/n/texttask/t/u/1/result.json",
                "texts/n/t/u/1.txt",
                "tasks/n/texttask/t/u/2/result.json",
                "texts/n/t/u/2.txt"
            ]
        );
        let image = task_keys(TaskKind::ImageTask, &id);
        assert!(
            image.iter().all(|k| k.starts_with("tasks/n/imagetask/t/u/")),
            "{image:?}"
        );
        assert_eq!(image.len(), 4);
        assert_eq!(task_keys(TaskKind::HashTask, &id).len(), 2);
    }
}

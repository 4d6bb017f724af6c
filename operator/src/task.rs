//! What the operator needs of each task kind, so one reconcile serves all three.

use k8s_openapi::NamespaceResourceScope;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use taskyard_api::{
    HashTask, HashTaskStatus, ImageTask, ImageTaskStatus, Phase, TaskSpec, TaskSpecCommon, TextTask, TextTaskStatus,
};
use taskyard_common::status::TaskStatus;

pub trait TaskResource:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    type Spec: TaskSpecCommon + Clone + Serialize + Send + Sync;
    type Status: TaskStatus + DeserializeOwned;

    fn task_spec(&self) -> &Self::Spec;
    fn task_status(&self) -> Option<&Self::Status>;
    /// The spec tagged with its kind, as the runner receives it.
    fn runner_spec(&self) -> TaskSpec;
    /// The operator's cache of this kind.
    fn cache(caches: &crate::queue::Caches) -> &kube::runtime::reflector::Store<Self>;
}

macro_rules! task_resource {
    ($kind:ident, $status:ident, $cache:ident) => {
        impl TaskResource for $kind {
            type Spec = <$kind as kube::core::object::HasSpec>::Spec;
            type Status = $status;

            fn task_spec(&self) -> &Self::Spec {
                &self.spec
            }
            fn task_status(&self) -> Option<&Self::Status> {
                self.status.as_ref()
            }
            fn runner_spec(&self) -> TaskSpec {
                TaskSpec::$kind(self.spec.clone())
            }
            fn cache(caches: &crate::queue::Caches) -> &kube::runtime::reflector::Store<Self> {
                &caches.$cache.store
            }
        }
    };
}

/// Whether the status already records the end of the task's current generation.
pub fn is_recorded<K: TaskResource>(task: &K) -> bool {
    task.task_status().is_some_and(|s| {
        s.common().observed_generation == Some(task.meta().generation.unwrap_or(1))
            && s.common().phase.is_some_and(Phase::is_finished)
    })
}

task_resource!(HashTask, HashTaskStatus, hash);
task_resource!(ImageTask, ImageTaskStatus, image);
task_resource!(TextTask, TextTaskStatus, text);

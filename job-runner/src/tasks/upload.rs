//! A task reads only its own namespace's data: `spec.source.object` is a path inside the
//! namespace's upload area, resolved here to the full key before any task code sees it.

use taskyard_api::{RunnerTask, TaskSpec};
use taskyard_common::keys::upload_key;

use crate::error::RunnerError;

/// The task with `spec.source.object` replaced by its key in the namespace's upload area.
pub fn confined(task: &RunnerTask) -> Result<RunnerTask, RunnerError> {
    let mut task = task.clone();
    let object = match &mut task.spec {
        TaskSpec::HashTask(spec) => &mut spec.source.object,
        TaskSpec::TextTask(spec) => &mut spec.source.object,
        TaskSpec::ImageTask(spec) => &mut spec.source.object,
    };
    if let Some(path) = object {
        *path = upload_key(&task.identity.namespace, path).map_err(RunnerError::InvalidSpec)?;
    }
    Ok(task)
}

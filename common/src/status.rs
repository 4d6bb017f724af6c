//! Status derivation shared by the operator and `job-runner run`: phases, the `Succeeded`
//! condition, and the kind-specific fields taken from a runner result. Pure functions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use taskyard_api::{
    CommonStatus, HashTaskStatus, ImageTaskStatus, Outcome, Phase, Reason, TaskOutput, TaskResult, TextTaskStatus,
};

/// The condition type every task carries (Tekton style).
pub const CONDITION_SUCCEEDED: &str = "Succeeded";

/// The condition status a phase implies.
fn condition_status(phase: Phase) -> &'static str {
    match phase {
        Phase::Pending | Phase::Running => "Unknown",
        Phase::Succeeded => "True",
        Phase::Failed => "False",
    }
}

/// Sets a condition, merged by type; `lastTransitionTime` moves only when the status does.
pub fn set_condition(conditions: &mut Vec<Condition>, new: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            let last_transition_time = if old.status == new.status {
                old.last_transition_time.clone()
            } else {
                new.last_transition_time.clone()
            };
            *old = Condition {
                last_transition_time,
                ..new
            };
        }
        None => conditions.push(new),
    }
}

/// Puts a task in `phase` for `generation`, with the `Succeeded` condition that goes with it.
pub fn set_phase(
    status: &mut CommonStatus,
    generation: i64,
    phase: Phase,
    reason: Reason,
    message: &str,
    now: jiff::Timestamp,
) {
    status.phase = Some(phase);
    status.observed_generation = Some(generation);
    set_condition(
        &mut status.conditions,
        Condition {
            type_: CONDITION_SUCCEEDED.into(),
            status: condition_status(phase).into(),
            reason: reason.as_str().into(),
            message: message.into(),
            last_transition_time: Time(now),
            observed_generation: Some(generation),
        },
    );
}

/// The status of any task kind.
pub trait TaskStatus: Default + Clone + PartialEq + serde::Serialize + Send + Sync + 'static {
    fn common(&self) -> &CommonStatus;
    fn common_mut(&mut self) -> &mut CommonStatus;
    /// Fills the kind-specific fields from a runner's output.
    fn apply_output(&mut self, output: &TaskOutput);
    /// Clears the kind-specific fields, when a new generation starts.
    fn clear_output(&mut self);
}

impl TaskStatus for HashTaskStatus {
    fn common(&self) -> &CommonStatus {
        &self.common
    }
    fn common_mut(&mut self) -> &mut CommonStatus {
        &mut self.common
    }
    fn apply_output(&mut self, output: &TaskOutput) {
        if let TaskOutput::Hash(out) = output {
            self.digests = out.digests.clone();
            self.size = Some(out.size);
        }
    }
    fn clear_output(&mut self) {
        self.digests.clear();
        self.size = None;
    }
}

impl TaskStatus for ImageTaskStatus {
    fn common(&self) -> &CommonStatus {
        &self.common
    }
    fn common_mut(&mut self) -> &mut CommonStatus {
        &mut self.common
    }
    fn apply_output(&mut self, output: &TaskOutput) {
        if let TaskOutput::Image(out) = output {
            self.images = Some(out.counts.clone());
            self.items = out.items.clone();
            self.manifest = Some(out.manifest.clone());
        }
    }
    fn clear_output(&mut self) {
        self.images = None;
        self.items.clear();
        self.manifest = None;
    }
}

impl TaskStatus for TextTaskStatus {
    fn common(&self) -> &CommonStatus {
        &self.common
    }
    fn common_mut(&mut self) -> &mut CommonStatus {
        &mut self.common
    }
    fn apply_output(&mut self, output: &TaskOutput) {
        if let TaskOutput::Text(out) = output {
            self.text = Some(out.text.clone());
            self.title = out.title.clone();
            self.preview = Some(out.preview.clone());
        }
    }
    fn clear_output(&mut self) {
        self.text = None;
        self.title = None;
        self.preview = None;
    }
}

/// Records a runner's result as the final status of its generation.
pub fn apply_result<S: TaskStatus>(status: &mut S, result: &TaskResult) {
    let phase = match result.outcome {
        Outcome::Succeeded => Phase::Succeeded,
        Outcome::Failed => Phase::Failed,
    };
    status.clear_output();
    if let Some(output) = &result.output {
        status.apply_output(output);
    }
    let common = status.common_mut();
    set_phase(
        common,
        result.identity.generation,
        phase,
        result.reason,
        &result.message,
        result.finished_at,
    );
    common.completion_time = Some(Time(result.finished_at));
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use taskyard_api::{HashOutput, TaskIdentity, TaskKind};

    use super::*;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let mut status = CommonStatus::default();
        set_phase(
            &mut status,
            1,
            Phase::Pending,
            Reason::Queued,
            "waiting",
            ts("2026-01-01T00:00:00Z"),
        );
        set_phase(
            &mut status,
            1,
            Phase::Running,
            Reason::Running,
            "running",
            ts("2026-01-01T00:00:05Z"),
        );
        let c = &status.conditions[0];
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("Unknown", "Running"));
        assert_eq!(c.last_transition_time.0, ts("2026-01-01T00:00:00Z"));
        set_phase(
            &mut status,
            1,
            Phase::Succeeded,
            Reason::Completed,
            "done",
            ts("2026-01-01T00:00:09Z"),
        );
        assert_eq!(status.conditions.len(), 1);
        assert_eq!(status.conditions[0].status, "True");
        assert_eq!(status.conditions[0].last_transition_time.0, ts("2026-01-01T00:00:09Z"));
        assert_eq!(status.observed_generation, Some(1));
    }

    #[test]
    fn a_result_becomes_the_final_status() {
        let mut status = HashTaskStatus {
            size: Some(99),
            ..Default::default()
        };
        let result = TaskResult {
            kind: TaskKind::HashTask,
            identity: TaskIdentity {
                namespace: "n".into(),
                name: "t".into(),
                uid: "u".into(),
                generation: 4,
            },
            outcome: Outcome::Succeeded,
            reason: Reason::Completed,
            message: "md5 d41d8cd98f00b204e9800998ecf8427e, 0 bytes".into(),
            started_at: ts("2026-01-01T00:00:00Z"),
            finished_at: ts("2026-01-01T00:00:02Z"),
            output: Some(TaskOutput::Hash(HashOutput {
                digests: BTreeMap::from([("md5".into(), "d41d8cd98f00b204e9800998ecf8427e".into())]),
                size: 0,
            })),
            attempts: None,
        };
        apply_result(&mut status, &result);
        assert_eq!(status.common.phase, Some(Phase::Succeeded));
        assert_eq!(status.common.observed_generation, Some(4));
        assert_eq!(status.size, Some(0));
        assert_eq!(status.digests["md5"], "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(status.common.completion_time, Some(Time(ts("2026-01-01T00:00:02Z"))));

        let failed = TaskResult {
            outcome: Outcome::Failed,
            reason: Reason::FetchFailed,
            output: None,
            ..result
        };
        apply_result(&mut status, &failed);
        assert_eq!(status.common.phase, Some(Phase::Failed));
        assert_eq!(status.common.conditions[0].status, "False");
        assert_eq!(status.common.conditions[0].reason, "FetchFailed");
        assert!(status.digests.is_empty() && status.size.is_none());
    }
}

//! What a runner Job's status says about its task. Pure.

use k8s_openapi::api::batch::v1::Job;

/// Where a runner Job stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Created; no Pod has finished it yet.
    Running,
    /// The runner exited 0.
    Complete,
    /// The Job gave up: `DeadlineExceeded` (timeoutSeconds) or `BackoffLimitExceeded` (retries).
    Failed { reason: String, message: String },
}

/// Reads the Job's terminal conditions.
pub fn job_state(job: &Job) -> JobState {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_ref());
    for c in conditions.into_iter().flatten() {
        if c.status != "True" {
            continue;
        }
        match c.type_.as_str() {
            "Complete" => return JobState::Complete,
            "Failed" => {
                return JobState::Failed {
                    reason: c.reason.clone().unwrap_or_default(),
                    message: c.message.clone().unwrap_or_default(),
                };
            }
            _ => {}
        }
    }
    JobState::Running
}

/// Runner Pods started for the Job so far.
pub fn attempts(job: &Job) -> i32 {
    job.status
        .as_ref()
        .map(|s| s.succeeded.unwrap_or(0) + s.failed.unwrap_or(0) + s.active.unwrap_or(0))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(yaml: &str) -> Job {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn reads_terminal_conditions() {
        assert_eq!(job_state(&job("metadata: {name: j}\n")), JobState::Running);
        assert_eq!(job_state(&job("status: {active: 1}\n")), JobState::Running);
        let complete = job("status:\n  succeeded: 1\n  conditions:\n  - {type: Complete, status: 'True'}\n");
        assert_eq!(job_state(&complete), JobState::Complete);
        assert_eq!(attempts(&complete), 1);
        let deadline = job(
            "status:\n  failed: 2\n  conditions:\n  - {type: Failed, status: 'True', reason: DeadlineExceeded, message: Job was active longer than specified deadline}\n",
        );
        assert_eq!(
            job_state(&deadline),
            JobState::Failed {
                reason: "DeadlineExceeded".into(),
                message: "Job was active longer than specified deadline".into()
            }
        );
        assert_eq!(attempts(&deadline), 2);
        let not_yet = job("status:\n  conditions:\n  - {type: Failed, status: 'False'}\n");
        assert_eq!(job_state(&not_yet), JobState::Running);
    }
}

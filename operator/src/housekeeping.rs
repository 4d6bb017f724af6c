//! Runner Jobs that are no longer wanted: those of an older generation still running (the
//! spec changed), and finished ones past `jobTtlSeconds` (Job TTL is not available on
//! Kubernetes 1.20, so the operator does it). Task status stays.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::DeleteParams;

use crate::error::Error;
use crate::finish::finished_at;
use crate::job::LABEL_GENERATION;
use crate::jobstate::{JobState, job_state};

/// What to delete now, and when to look again.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub delete: Vec<String>,
    pub next_check: Option<Duration>,
}

fn generation_of(job: &Job) -> Option<i64> {
    job.metadata.labels.as_ref()?.get(LABEL_GENERATION)?.parse().ok()
}

/// Decides which of a task's Jobs go. `recorded` says whether the current generation's result
/// is already in status (its Job must stay until then).
pub fn plan(jobs: &[Job], generation: i64, recorded: bool, ttl: Duration, now: jiff::Timestamp) -> Plan {
    let mut plan = Plan::default();
    for job in jobs {
        let Some(name) = job.metadata.name.clone() else {
            continue;
        };
        let job_generation = generation_of(job).unwrap_or(generation);
        let state = job_state(job);
        if job_generation < generation && state == JobState::Running {
            plan.delete.push(name);
            continue;
        }
        if state == JobState::Running || (job_generation == generation && !recorded) {
            continue;
        }
        let finished = finished_at(job).unwrap_or(now);
        let age = now.duration_since(finished).unsigned_abs();
        match ttl.checked_sub(age) {
            None | Some(Duration::ZERO) => plan.delete.push(name),
            Some(left) => plan.next_check = Some(plan.next_check.map_or(left, |n| n.min(left))),
        }
    }
    plan
}

/// Deletes Jobs with their Pods; one already gone is fine.
pub async fn delete_jobs(jobs: &Api<Job>, names: &[String]) -> Result<(), Error> {
    for name in names {
        match jobs.delete(name, &DeleteParams::background()).await {
            Ok(_) => tracing::info!(job = %name, "deleted runner Job"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, generation: i64, finished: Option<&str>) -> Job {
        let status = match finished {
            Some(t) => format!(
                "status:\n  completionTime: '{t}'\n  conditions:\n  - {{type: Complete, status: 'True', lastTransitionTime: '{t}'}}\n"
            ),
            None => "status: {active: 1}\n".into(),
        };
        serde_yaml::from_str(&format!(
            "metadata:\n  name: {name}\n  labels: {{taskyard.dev/generation: '{generation}'}}\n{status}"
        ))
        .unwrap()
    }

    fn now() -> jiff::Timestamp {
        "2026-01-01T01:00:00Z".parse().unwrap()
    }

    #[test]
    fn an_older_generation_still_running_is_deleted() {
        let jobs = [job("t-1", 1, None), job("t-2", 2, None)];
        let p = plan(&jobs, 2, false, Duration::from_secs(3600), now());
        assert_eq!(p.delete, ["t-1"]);
        assert_eq!(p.next_check, None);
    }

    #[test]
    fn finished_jobs_go_after_the_ttl_once_recorded() {
        let jobs = [
            job("old", 1, Some("2026-01-01T00:00:00Z")),
            job("cur", 2, Some("2026-01-01T00:59:00Z")),
        ];
        // The current generation's Job stays until its result is in status.
        let p = plan(&jobs, 2, false, Duration::from_secs(120), now());
        assert_eq!(p.delete, ["old"]);
        assert_eq!(p.next_check, None);
        let p = plan(&jobs, 2, true, Duration::from_secs(120), now());
        assert_eq!(p.delete, ["old"]);
        assert_eq!(p.next_check, Some(Duration::from_secs(60)));
        let p = plan(&jobs, 2, true, Duration::from_secs(30), now());
        assert_eq!(p.delete, ["old", "cur"]);
    }
}

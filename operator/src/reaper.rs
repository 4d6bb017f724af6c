//! Cleaning up after tasks that are gone. Runner Jobs live in the operator's namespace and
//! cannot be owned by a task in another, so nothing deletes them with the task: the reaper
//! does, when the watch reports a task deleted, and by a sweep at start-up and every minute
//! for deletions it did not see (while no replica led, or across a watch gap). With
//! `cleanupOnDelete` it also deletes the task's own store objects, and sweeps the store's
//! `tasks/` and `texts/` prefixes for objects whose task is gone (deleted while no operator
//! ran). Nothing here holds a deletion: a task is gone before the reaper looks.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::ListParams;
use taskyard_api::{TaskIdentity, TaskKind};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::cleanup::{delete_objects, task_keys};
use crate::error::Error;
use crate::finish::finished_at;
use crate::housekeeping::delete_jobs;
use crate::job::{LABEL_MANAGED_BY, LABEL_UID, MANAGED_BY, is_batch, members};
use crate::jobstate::{JobState, job_state};
use crate::reconcile::Context;
use futures::TryStreamExt;
use taskyard_common::keys::batch_report_key;

/// When the reaper looks at a deleted task's Jobs and objects a second time.
const REAP_AGAIN_AFTER: Duration = Duration::from_secs(5);
/// How often the reaper sweeps for Jobs whose task is gone.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often it sweeps the store (with cleanupOnDelete): listing is dearer than a Job list.
const STORE_SWEEP_EVERY: Duration = Duration::from_secs(600);
/// The store prefixes of task-specific objects, and where the task uid stands in their keys:
/// `tasks/<ns>/<kind>/<name>/<uid>/...` and `texts/<ns>/<name>/<uid>/<generation>.txt`.
const TASK_OBJECTS: [(&str, usize); 2] = [("tasks/", 4), ("texts/", 3)];

/// A task the watch reported deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoneTask {
    pub kind: TaskKind,
    pub identity: TaskIdentity,
}

/// The names of the Jobs whose task uid is not among `live` uids (for a batch: none of its
/// tasks' uids; a batch runs on for the tasks still there).
pub fn orphans(jobs: &[Job], live: &HashSet<String>) -> Vec<String> {
    jobs.iter()
        .filter(|job| {
            if is_batch(job) {
                return !members(job).iter().any(|(_, id)| live.contains(&id.uid));
            }
            let uid = job.metadata.labels.as_ref().and_then(|l| l.get(LABEL_UID));
            uid.is_none_or(|uid| !live.contains(uid))
        })
        .filter_map(|job| job.metadata.name.clone())
        .collect()
}

/// Finished batch Jobs past their time to live whose every task has its status written (or
/// is gone, or runs a newer generation). A task's reconcile deletes its own Job; a batch's
/// belongs to no one task, so the sweep does.
pub fn expired_batches(
    jobs: &[Job],
    ttl: Duration,
    now: jiff::Timestamp,
    settled: impl Fn(TaskKind, &TaskIdentity) -> bool,
) -> Vec<String> {
    jobs.iter()
        .filter(|job| is_batch(job) && job_state(job) != JobState::Running)
        .filter(|job| {
            let finished = finished_at(job).unwrap_or(now);
            now.duration_since(finished).unsigned_abs() >= ttl
        })
        .filter(|job| members(job).iter().all(|(kind, id)| settled(*kind, id)))
        .filter_map(|job| job.metadata.name.clone())
        .collect()
}

/// The keys whose task uid (at segment `uid_at`) is not among the `live` uids.
pub fn orphan_objects(keys: &[String], uid_at: usize, live: &HashSet<String>) -> Vec<String> {
    keys.iter()
        .filter(|key| key.split('/').nth(uid_at).is_some_and(|uid| !live.contains(uid)))
        .cloned()
        .collect()
}

/// Runs until the operator stops: deletions as they are reported, and the sweeps (the first
/// at once, for what happened while no operator ran).
pub async fn run(ctx: Arc<Context>, mut gone: UnboundedReceiver<GoneTask>) {
    // The sweeps compare with the cached tasks: only a complete cache may decide.
    if !ctx.admission.caches.synced().await {
        return;
    }
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    let mut store_sweep = tokio::time::interval(STORE_SWEEP_EVERY);
    loop {
        tokio::select! {
            Some(task) = gone.recv() => reap(&ctx, &task).await,
            _ = sweep.tick() => {
                if let Err(e) = sweep_orphans(&ctx).await {
                    tracing::warn!("cannot sweep runner Jobs of deleted tasks: {e}");
                }
            }
            _ = store_sweep.tick(), if ctx.settings.cleanup_on_delete => {
                if let Err(e) = sweep_store(&ctx).await {
                    tracing::warn!("cannot sweep the store for objects of deleted tasks: {e}");
                }
            }
        }
    }
}

/// Deletes the task-specific objects whose task is gone, prefix by prefix.
async fn sweep_store(ctx: &Context) -> Result<(), String> {
    for (prefix, uid_at) in TASK_OBJECTS {
        let keys: Vec<String> = ctx.store.list(prefix).try_collect().await.map_err(|e| e.to_string())?;
        // Listed first, then compared: a task created meanwhile is in the cache by then.
        let orphaned = orphan_objects(&keys, uid_at, &ctx.admission.caches.uids());
        if !orphaned.is_empty() {
            tracing::info!(
                objects = orphaned.len(),
                prefix,
                "deleting store objects of deleted tasks"
            );
            delete_objects(&ctx.store, &orphaned).await?;
        }
    }
    Ok(())
}

fn jobs_api(ctx: &Context) -> Api<Job> {
    Api::namespaced(ctx.client.clone(), &ctx.settings.namespace)
}

/// Deletes a deleted task's Jobs (and their Pods) and, with cleanupOnDelete, its objects;
/// and once more a few seconds later, for a reconcile that was creating its Job (and so its
/// result) while the task went.
async fn reap(ctx: &Arc<Context>, task: &GoneTask) {
    reap_once(ctx, task).await;
    let (ctx, task) = (ctx.clone(), task.clone());
    tokio::spawn(async move {
        tokio::time::sleep(REAP_AGAIN_AFTER).await;
        reap_once(&ctx, &task).await;
    });
}

async fn reap_once(ctx: &Context, task: &GoneTask) {
    let id = &task.identity;
    // Its own Jobs, from the Job index; a batch runs on for its other tasks (the sweep
    // deletes it when they are all gone).
    let names: Vec<String> = ctx
        .job_index
        .jobs_of(&id.uid)
        .iter()
        .filter(|job| !is_batch(job))
        .filter_map(|job| job.metadata.name.clone())
        .collect();
    let freed = match delete_jobs(&jobs_api(ctx), &names).await.map(|()| !names.is_empty()) {
        Ok(freed) => freed,
        Err(e) => {
            tracing::warn!(namespace = %id.namespace, name = %id.name, "cannot delete the runner Jobs of a deleted task (the sweep retries): {e}");
            false
        }
    };
    if ctx.settings.cleanup_on_delete {
        let keys = task_keys(task.kind, id);
        if let Err(e) = delete_objects(&ctx.store, &keys).await {
            tracing::warn!(namespace = %id.namespace, name = %id.name, "cannot delete a deleted task's store objects: {e}");
        }
    }
    if freed {
        ctx.admission.wake_heads().await;
    }
}

async fn sweep_orphans(ctx: &Context) -> Result<(), Error> {
    let jobs = jobs_api(ctx);
    let listed = jobs
        .list(&ListParams::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}")))
        .await?
        .items;
    let orphaned = orphans(&listed, &ctx.admission.caches.uids());
    if !orphaned.is_empty() {
        tracing::info!(jobs = orphaned.len(), "deleting runner Jobs whose task is gone");
        delete_jobs(&jobs, &orphaned).await?;
        ctx.admission.wake_heads().await;
    }
    let ttl = Duration::from_secs(ctx.settings.job_ttl_seconds);
    let caches = &ctx.admission.caches;
    let expired = expired_batches(&listed, ttl, jiff::Timestamp::now(), |kind, id| {
        caches.settled(kind, id)
    });
    if !expired.is_empty() {
        tracing::info!(
            jobs = expired.len(),
            "deleting finished batch Jobs past their time to live"
        );
        delete_jobs(&jobs, &expired).await?;
    }
    // A batch's done reports go with it (and with an orphan).
    let deleted: HashSet<&String> = orphaned.iter().chain(&expired).collect();
    let batches = listed
        .iter()
        .filter(|job| is_batch(job))
        .filter_map(|job| job.metadata.name.as_ref().filter(|name| deleted.contains(name)));
    for name in batches {
        if let Err(e) = delete_objects(&ctx.store, &[batch_report_key(name)]).await {
            tracing::warn!(job = %name, "cannot delete a batch's done reports: {e}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, uid: Option<&str>) -> Job {
        let labels = uid
            .map(|u| format!("  labels: {{taskyard.dev/uid: {u}}}\n"))
            .unwrap_or_default();
        serde_yaml::from_str(&format!("metadata:\n  name: {name}\n{labels}")).unwrap()
    }

    #[test]
    fn objects_of_tasks_that_are_gone_are_orphans() {
        let keys: Vec<String> = [
            "tasks/ns/hashtask/live/uid-a/1/result.json",
            "tasks/ns/imagetask/gone/uid-b/2/manifest.json",
            "texts/ns/live/uid-a/1.txt",
            "texts/ns/gone/uid-b/1.txt",
        ]
        .map(String::from)
        .into();
        let live: HashSet<String> = ["uid-a".to_string()].into();
        assert_eq!(
            orphan_objects(&keys[..2], TASK_OBJECTS[0].1, &live),
            ["tasks/ns/imagetask/gone/uid-b/2/manifest.json"]
        );
        assert_eq!(
            orphan_objects(&keys[2..], TASK_OBJECTS[1].1, &live),
            ["texts/ns/gone/uid-b/1.txt"]
        );
    }

    fn batch(name: &str, uids: &[&str], status: &str) -> Job {
        let ids: Vec<TaskIdentity> = uids
            .iter()
            .map(|u| TaskIdentity {
                namespace: "ns".into(),
                name: u.to_string(),
                uid: u.to_string(),
                generation: 1,
            })
            .collect();
        serde_yaml::from_str(&format!(
            "metadata:\n  name: {name}\n  labels: {{taskyard.dev/kind: hashtask, taskyard.dev/batch: 'true'}}\n  annotations: {{taskyard.dev/tasks: '{}'}}\nstatus: {status}\n",
            serde_json::to_string(&ids).unwrap()
        ))
        .unwrap()
    }

    #[test]
    fn a_batch_is_an_orphan_only_when_all_its_tasks_are_gone() {
        let jobs = [
            batch("b1", &["uid-a", "uid-b"], "{active: 1}"),
            batch("b2", &["uid-c"], "{active: 1}"),
        ];
        let live: HashSet<String> = ["uid-a".to_string()].into();
        assert_eq!(orphans(&jobs, &live), ["b2"]);
    }

    #[test]
    fn a_finished_batch_goes_after_its_ttl_once_every_task_is_settled() {
        let done =
            "{succeeded: 1, completionTime: '2026-01-01T00:00:00Z', conditions: [{type: Complete, status: 'True'}]}";
        let jobs = [
            batch("old", &["a", "b"], done),
            batch("pending", &["c"], done),
            batch("running", &["d"], "{active: 1}"),
        ];
        let ttl = Duration::from_secs(60);
        let settled = |_: TaskKind, id: &TaskIdentity| id.uid != "c";
        let later: jiff::Timestamp = "2026-01-01T00:02:00Z".parse().unwrap();
        assert_eq!(expired_batches(&jobs, ttl, later, settled), ["old"]);
        let soon: jiff::Timestamp = "2026-01-01T00:00:30Z".parse().unwrap();
        assert!(expired_batches(&jobs, ttl, soon, settled).is_empty(), "within its TTL");
    }

    #[test]
    fn jobs_of_tasks_that_are_gone_are_orphans() {
        let jobs = [job("a-1", Some("uid-a")), job("b-1", Some("uid-b")), job("x", None)];
        let live: HashSet<String> = ["uid-a".to_string()].into();
        assert_eq!(orphans(&jobs, &live), ["b-1", "x"]);
        assert!(orphans(&jobs[..1], &live).is_empty());
    }
}

//! Local mode: tasks kept in this process and run here with the runner's own code, against a
//! directory store; results, the HashTask log and statuses are the ones a cluster would write.
//! Each task is also recorded in the store (see `persist`), so a restarted gateway knows
//! its tasks again and runs the ones that had not finished.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use taskyard_api::{Outcome, Phase, Reason, RunnerTask, TaskIdentity, TaskKind};
use taskyard_common::status::{TaskStatus, apply_result, set_phase};
use taskyard_common::store::{DirStore, Store};
use taskyard_runner::tasks::{Context, run_task};
use tokio::sync::Semaphore;

use super::{API_LABEL, Backend, BackendError, NewTask, Status, TaskView};
use crate::settings::Settings;

/// Pause between attempts of a task that failed in a way a retry may fix.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct LocalBackend(Arc<Inner>);

struct Inner {
    store: Store,
    namespace: String,
    ctx: Context,
    tasks: Mutex<BTreeMap<(TaskKind, String), TaskView>>,
    /// Tasks running at once.
    slots: Semaphore,
}

impl LocalBackend {
    pub fn start(settings: &Settings) -> Result<Self, String> {
        settings.validate()?;
        std::fs::create_dir_all(&settings.store).map_err(|e| {
            format!(
                "cannot create the store directory {}: {e}; choose another with --store",
                settings.store.display()
            )
        })?;
        let store = Store::Dir(DirStore::new(&settings.store));
        let ctx = Context::new(store.clone(), settings.runner.clone()).map_err(|e| e.to_string())?;
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Ok(Self(Arc::new(Inner {
            store,
            namespace: settings.namespace.clone(),
            ctx,
            tasks: Mutex::default(),
            slots: Semaphore::new(settings.task_slots.unwrap_or(cores).max(1)),
        })))
    }

    /// Takes back the tasks recorded in the store; those that had not finished run again.
    /// Returns how many tasks were recorded.
    pub async fn restore(&self) -> Result<usize, String> {
        let views = super::persist::load(&self.0.store, &self.0.namespace)
            .await
            .map_err(|e| format!("cannot read the tasks recorded in the store: {e}"))?;
        let count = views.len();
        for mut view in views {
            let unfinished = !view.phase().is_finished();
            if unfinished {
                with_common(&mut view.status, |c| {
                    set_phase(
                        c,
                        1,
                        Phase::Pending,
                        Reason::Queued,
                        "waiting for a free task slot",
                        jiff::Timestamp::now(),
                    )
                });
            }
            self.0
                .tasks
                .lock()
                .unwrap()
                .insert((view.kind, view.name.clone()), view.clone());
            if unfinished {
                tokio::spawn(self.clone().run(self.runner_task(&view), retries_of(&view.spec)));
            }
        }
        Ok(count)
    }

    fn runner_task(&self, view: &TaskView) -> RunnerTask {
        RunnerTask {
            identity: TaskIdentity {
                namespace: self.0.namespace.clone(),
                name: view.name.clone(),
                uid: view.uid.clone(),
                generation: 1,
            },
            spec: view.spec.clone(),
        }
    }

    /// Records a change of a task's status, then shows it: a status a client has seen is
    /// never lost by a restart (one task's updates come from its one `run`, in turn).
    async fn update(&self, kind: TaskKind, name: &str, f: impl FnOnce(&mut TaskView)) {
        let key = (kind, name.to_string());
        let Some(mut changed) = self.0.tasks.lock().unwrap().get(&key).cloned() else {
            return;
        };
        f(&mut changed);
        if let Err(e) = super::persist::save(&self.0.store, &self.0.namespace, &changed).await {
            tracing::warn!(task = %name, "cannot record the task's status: {e}");
        }
        self.show(kind, name, |view| *view = changed);
    }

    /// Changes a task's status in memory only: for the start of a run, which a restart
    /// makes Pending again whatever the record says (`restore`), so recording it would cost
    /// a synced write per task and keep nothing.
    fn show(&self, kind: TaskKind, name: &str, f: impl FnOnce(&mut TaskView)) {
        if let Some(view) = self.0.tasks.lock().unwrap().get_mut(&(kind, name.to_string())) {
            f(view);
        }
    }

    /// Runs a task to its end: waits for a slot, runs with retries of transient failures,
    /// records the result in the store, and writes the status.
    async fn run(self, task: RunnerTask, retries: i32) {
        let kind = task.spec.kind();
        let name = task.identity.name.clone();
        let _slot = self.0.slots.acquire().await.expect("the semaphore is never closed");
        self.show(kind, &name, |v| {
            with_common(&mut v.status, |c| {
                set_phase(c, 1, Phase::Running, Reason::Running, "running", jiff::Timestamp::now());
                c.start_time = Some(k8s_time(jiff::Timestamp::now()));
            })
        });
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            let ran = run_task(&self.0.ctx, &task).await;
            if ran.result.outcome == Outcome::Succeeded || ran.permanent || attempts > retries {
                break ran.result;
            }
            tracing::info!(task = %name, "attempt {attempts} failed ({}); retrying", ran.result.message);
            tokio::time::sleep(RETRY_PAUSE).await;
        };
        let outcome = taskyard_runner::local::record(&self.0.store, &task, result).await;
        tracing::info!(task = %name, kind = %kind, "{:?}: {}", outcome.result.outcome, outcome.result.message);
        self.update(kind, &name, |v| {
            match &mut v.status {
                Status::Hash(s) => finish(s, &outcome.result, attempts),
                Status::Image(s) => finish(s, &outcome.result, attempts),
                Status::Text(s) => finish(s, &outcome.result, attempts),
            };
        })
        .await;
    }
}

fn finish<S: TaskStatus>(status: &mut S, result: &taskyard_api::TaskResult, attempts: i32) {
    apply_result(status, result);
    status.common_mut().attempts = Some(attempts);
}

fn with_common(status: &mut Status, f: impl FnOnce(&mut taskyard_api::CommonStatus)) {
    match status {
        Status::Hash(s) => f(&mut s.common),
        Status::Image(s) => f(&mut s.common),
        Status::Text(s) => f(&mut s.common),
    }
}

fn k8s_time(t: jiff::Timestamp) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t)
}

fn retries_of(spec: &taskyard_api::TaskSpec) -> i32 {
    use taskyard_api::{TaskSpec, TaskSpecCommon};
    match spec {
        TaskSpec::HashTask(s) => s.retries(),
        TaskSpec::ImageTask(s) => s.retries(),
        TaskSpec::TextTask(s) => s.retries(),
    }
}

impl Backend for LocalBackend {
    fn store(&self) -> &Store {
        &self.0.store
    }

    fn namespace(&self) -> &str {
        &self.0.namespace
    }

    fn create(&self, task: NewTask) -> BoxFuture<'_, Result<TaskView, BackendError>> {
        let this = self.clone();
        async move {
            let kind = task.spec.kind();
            let now = jiff::Timestamp::now();
            let mut status = Status::empty(kind);
            with_common(&mut status, |c| {
                set_phase(
                    c,
                    1,
                    Phase::Pending,
                    Reason::Queued,
                    "waiting for a free task slot",
                    now,
                )
            });
            let view = TaskView {
                kind,
                name: task.name.clone(),
                uid: uuid::Uuid::new_v4().to_string(),
                created: now,
                labels: task.labels,
                spec: task.spec,
                status,
            };
            {
                let mut tasks = this.0.tasks.lock().unwrap();
                let key = (kind, task.name.clone());
                if tasks.contains_key(&key) {
                    return Err(BackendError::AlreadyExists(task.name));
                }
                tasks.insert(key, view.clone());
            }
            // Recorded before its id is answered: a restarted gateway still knows it.
            if let Err(e) = super::persist::save(&this.0.store, &this.0.namespace, &view).await {
                this.0.tasks.lock().unwrap().remove(&(kind, view.name.clone()));
                return Err(BackendError::Unavailable(format!(
                    "cannot record the task in the store: {e}"
                )));
            }
            let runner_task = this.runner_task(&view);
            tokio::spawn(this.clone().run(runner_task, retries_of(&view.spec)));
            Ok(view)
        }
        .boxed()
    }

    fn get<'a>(&'a self, kind: TaskKind, name: &'a str) -> BoxFuture<'a, Result<Option<TaskView>, BackendError>> {
        let found = self.0.tasks.lock().unwrap().get(&(kind, name.to_string())).cloned();
        futures::future::ready(Ok(found)).boxed()
    }

    fn names<'a>(&'a self, kind: TaskKind, api: &'a str) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        let names = self
            .0
            .tasks
            .lock()
            .unwrap()
            .values()
            .filter(|v| v.kind == kind && v.labels.get(API_LABEL).map(String::as_str) == Some(api))
            .map(|v| v.name.clone())
            .collect();
        futures::future::ready(Ok(names)).boxed()
    }

    fn list<'a>(&'a self, kind: TaskKind, api: &'a str) -> BoxFuture<'a, Result<Vec<TaskView>, BackendError>> {
        let mut found: Vec<TaskView> = self
            .0
            .tasks
            .lock()
            .unwrap()
            .values()
            .filter(|v| v.kind == kind && v.labels.get(API_LABEL).map(String::as_str) == Some(api))
            .cloned()
            .collect();
        found.sort_by_key(|v| v.created);
        futures::future::ready(Ok(found)).boxed()
    }
}

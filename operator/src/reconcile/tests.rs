//! The reconcile's steps against a fake API server: every request it makes is recorded and
//! answered from a small in-memory model (its Jobs, how Job creation goes), so a test can
//! say exactly what was written.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use clap::Parser;
use http::{Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use kube::runtime::events::Reporter;
use serde_json::{Value, json};
use taskyard_api::{HashAlgorithm, HashSource, HashTask, HashTaskSpec, TaskKind};
use taskyard_common::netpolicy::NetworkPolicy;
use taskyard_common::store::{DirStore, Store};

use super::*;
use crate::leader::Fence;
use crate::queue::{Admission, Caches, MAX_JOB_CREATE_TRIES};

/// What the fake API server holds and how it answers.
#[derive(Default)]
struct Model {
    /// (method, path, body) of every request.
    requests: Vec<(String, String, Value)>,
    /// The status code a Job creation gets (201 when unset).
    create_job_status: Option<u16>,
    /// A status write with a body larger than this is refused (422), as etcd's limit would.
    status_limit: Option<usize>,
}

type Shared = Arc<Mutex<Model>>;

fn respond(status: u16, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn status_error(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": format!("{reason} (fake)"), "reason": reason, "code": code})
}

async fn answer(model: Shared, request: Request<Body>) -> Response<Body> {
    let method = request.method().to_string();
    let uri = request.uri().clone();
    let path = uri.path().to_string();
    let bytes = request.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let mut model = model.lock().unwrap();
    model.requests.push((method.clone(), path.clone(), body.clone()));
    let jobs = "/apis/batch/v1/namespaces/taskyard-system/jobs";
    match (method.as_str(), path.as_str()) {
        ("GET", p) if p == jobs => respond(
            200,
            json!({"kind": "JobList", "apiVersion": "batch/v1", "metadata": {}, "items": []}),
        ),
        ("GET", p) if p.starts_with(jobs) => respond(404, status_error(404, "NotFound")),
        ("POST", p) if p == jobs => match model.create_job_status {
            Some(code) => respond(code, status_error(code, "Forbidden")),
            None => {
                let mut job = body;
                job["metadata"]["creationTimestamp"] = json!("2026-11-28T12:00:00Z");
                respond(201, job)
            }
        },
        ("PUT", p) if p.ends_with("/status") && model.status_limit.is_some_and(|limit| bytes.len() > limit) => {
            respond(422, status_error(422, "Invalid"))
        }
        ("PUT", p) if p.ends_with("/status") => respond(200, body),
        (_, p) if p.contains("/events") => respond(201, body),
        _ => respond(404, status_error(404, "NotFound")),
    }
}

struct Fixture {
    model: Shared,
    ctx: Arc<Context>,
    _store: tempfile::TempDir,
}

fn fixture(max_running: &str) -> Fixture {
    let model: Shared = Default::default();
    let service = {
        let model = model.clone();
        tower::service_fn(move |request| {
            let model = model.clone();
            async move { Ok::<_, Infallible>(answer(model, request).await) }
        })
    };
    let client = kube::Client::new(service, "default");
    let dir = tempfile::tempdir().unwrap();
    let store = Store::Dir(DirStore::new(dir.path()));
    let settings = crate::settings::Settings::try_parse_from([
        "taskyard-operator",
        "--store-bucket",
        "b",
        "--runner-image",
        "runner:1",
        "--max-running-jobs",
        max_running,
    ])
    .unwrap();
    let caches = Caches::of_hash_tasks([]);
    let job_index = std::sync::Arc::new(crate::jobindex::JobIndex::default());
    job_index.mark_synced();
    let (wake, _) = tokio::sync::mpsc::unbounded_channel();
    let reporter = Reporter {
        controller: "taskyard-operator".into(),
        instance: None,
    };
    let ctx = Context {
        admission: Admission::new(
            caches,
            job_index.clone(),
            [(TaskKind::HashTask, wake)].into(),
            settings.max_running_jobs as usize,
            settings.max_tasks_per_job as usize,
            crate::pacing::Pacing::immediate(),
        ),
        job_index,
        events: crate::events::Events::inline(client.clone(), reporter),
        policy: NetworkPolicy::default(),
        log: LogWriter::spawn(store.clone(), Fence::unfenced()),
        metrics: Default::default(),
        store,
        settings,
        client,
    };
    Fixture {
        model,
        ctx: Arc::new(ctx),
        _store: dir,
    }
}

fn hash_task(object: &str) -> Arc<HashTask> {
    let mut task = HashTask::new(
        "report",
        HashTaskSpec {
            source: HashSource {
                url: None,
                object: Some(object.into()),
            },
            algorithms: vec![HashAlgorithm::Md5],
            retries: 2,
            timeout_seconds: 600,
        },
    );
    task.metadata.namespace = Some("team-a".into());
    task.metadata.uid = Some("uid-1".into());
    task.metadata.generation = Some(1);
    task.metadata.resource_version = Some("7".into());
    task.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-11-28T11:00:00Z".parse().unwrap(),
    ));
    Arc::new(task)
}

impl Fixture {
    /// Puts the task's input in its namespace's upload area.
    fn upload(&self, object: &str) {
        let Store::Dir(dir) = &self.ctx.store else {
            unreachable!()
        };
        let path = dir.root().join("uploads/team-a").join(object);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"hello").unwrap();
    }

    fn requests(&self, method: &str, path_part: &str) -> Vec<Value> {
        let model = self.model.lock().unwrap();
        model
            .requests
            .iter()
            .filter(|(m, p, _)| m == method && p.contains(path_part))
            .map(|(_, _, body)| body.clone())
            .collect()
    }

    /// The last status the reconcile wrote.
    fn status(&self) -> Value {
        let written = self.requests("PUT", "/hashtasks/report/status");
        written.last().expect("a status was written")["status"].clone()
    }

    fn event_reasons(&self) -> Vec<String> {
        self.requests("POST", "/events")
            .iter()
            .map(|e| e["reason"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

#[tokio::test]
async fn an_object_outside_the_upload_area_fails_invalid_spec_without_a_job() {
    let f = fixture("10");
    reconcile(hash_task("../team-b/secret.pdf"), f.ctx.clone())
        .await
        .unwrap();
    let status = f.status();
    assert_eq!(status["phase"], "Failed");
    assert_eq!(status["conditions"][0]["reason"], "InvalidSpec");
    assert!(
        status["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("uploads/team-a/"),
        "{status}"
    );
    assert!(f.requests("POST", "/jobs").is_empty(), "a Job was created");
    assert_eq!(f.event_reasons(), ["InvalidSpec"]);
    // A failed HashTask generation has its line in the results log, as every finished one.
    let Store::Dir(dir) = &f.ctx.store else { unreachable!() };
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let segments = dir.root().join(taskyard_common::keys::hash_log_day_prefix(today));
    let log: String = std::fs::read_dir(segments)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(log.contains(" team-a/report uid-1 1 Failed - - InvalidSpec: "), "{log}");
}

#[tokio::test]
async fn a_free_slot_creates_the_job_in_the_operators_namespace() {
    let f = fixture("10");
    f.upload("report.pdf");
    reconcile(hash_task("report.pdf"), f.ctx.clone()).await.unwrap();
    let created = f.requests("POST", "/namespaces/taskyard-system/jobs");
    assert_eq!(created.len(), 1);
    let job = &created[0];
    assert_eq!(job["metadata"]["labels"]["taskyard.dev/namespace"], "team-a");
    assert!(job["metadata"]["ownerReferences"].is_null());
    assert_eq!(f.status()["phase"], "Running");
    assert_eq!(f.event_reasons(), ["JobCreated"]);
}

#[tokio::test]
async fn a_task_waits_with_its_place_when_every_slot_is_taken() {
    let f = fixture("2");
    f.upload("report.pdf");
    // Admission counts the runner Jobs its index holds (from their watch).
    for other in ["other-1", "other-2"] {
        let job = serde_yaml::from_str(&format!(
            "metadata:\n  name: {other}\n  labels: {{taskyard.dev/kind: hashtask, taskyard.dev/namespace: x, \
             taskyard.dev/uid: {other}, taskyard.dev/generation: '1'}}\n  annotations: {{taskyard.dev/task: {other}}}\n\
             status: {{active: 1}}\n"
        ))
        .unwrap();
        f.ctx.job_index.apply(job);
    }
    reconcile(hash_task("report.pdf"), f.ctx.clone()).await.unwrap();
    let status = f.status();
    assert_eq!(status["phase"], "Pending");
    assert_eq!(status["queuePosition"], 1);
    assert_eq!(status["conditions"][0]["reason"], "Queued");
    assert!(f.requests("POST", "/jobs").is_empty());
}

#[tokio::test]
async fn a_job_that_cannot_be_created_backs_off_then_fails_the_task() {
    let f = fixture("10");
    f.upload("report.pdf");
    f.model.lock().unwrap().create_job_status = Some(403);
    for attempt in 1..MAX_JOB_CREATE_TRIES {
        let error = reconcile(hash_task("report.pdf"), f.ctx.clone()).await.unwrap_err();
        assert!(error.to_string().contains("Forbidden"), "{error}");
        // While it backs off it is out of the line and does not try again.
        let action = reconcile(hash_task("report.pdf"), f.ctx.clone()).await.unwrap();
        assert_ne!(action, Action::await_change());
        assert_eq!(f.requests("POST", "/jobs").len(), attempt as usize);
        f.ctx.admission.expire_backoff("uid-1");
    }
    // An unreachable or overloaded API server does not count as a refusal.
    f.model.lock().unwrap().create_job_status = Some(503);
    reconcile(hash_task("report.pdf"), f.ctx.clone()).await.unwrap_err();
    f.ctx.admission.expire_backoff("uid-1");
    f.model.lock().unwrap().create_job_status = Some(403);
    reconcile(hash_task("report.pdf"), f.ctx.clone()).await.unwrap();
    let status = f.status();
    assert_eq!(status["phase"], "Failed");
    assert_eq!(status["conditions"][0]["reason"], "JobCreationFailed");
    assert!(status["conditions"][0]["message"].as_str().unwrap().contains("5 tries"));
    assert_eq!(f.event_reasons().last().map(String::as_str), Some("Failed"));
}

impl Fixture {
    /// Writes this task's result.json into the store.
    fn result(&self, body: &[u8]) {
        let Store::Dir(dir) = &self.ctx.store else {
            unreachable!()
        };
        let key = taskyard_common::keys::result_key(
            TaskKind::HashTask,
            &taskyard_api::TaskIdentity {
                namespace: "team-a".into(),
                name: "report".into(),
                uid: "uid-1".into(),
                generation: 1,
            },
        );
        let path = dir.root().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
}

/// The task's Job of this generation, finished, as the Job index holds it from its watch.
fn completed_job() -> k8s_openapi::api::batch::v1::Job {
    let id = taskyard_api::TaskIdentity {
        namespace: "team-a".into(),
        name: "report".into(),
        uid: "uid-1".into(),
        generation: 1,
    };
    serde_json::from_value(json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": crate::job::job_name(&id), "namespace": "taskyard-system",
            "creationTimestamp": "2026-11-28T12:00:00Z",
            "labels": {"taskyard.dev/kind": "hashtask", "taskyard.dev/namespace": "team-a",
                "taskyard.dev/uid": "uid-1", "taskyard.dev/generation": "1"},
            "annotations": {"taskyard.dev/task": "report"}},
        "status": {"succeeded": 1, "completionTime": "2026-11-28T12:00:05Z",
            "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": "2026-11-28T12:00:05Z"}]}}))
    .unwrap()
}

#[tokio::test]
async fn an_oversized_or_malformed_result_fails_the_task_instead_of_retrying() {
    for (body, want) in [
        (vec![b' '; (4 << 20) + 1], "larger than"),
        (b"{not json".to_vec(), "is not a result"),
    ] {
        let f = fixture("10");
        f.ctx.job_index.apply(completed_job());
        f.result(&body);
        reconcile(hash_task("report.pdf"), f.ctx.clone()).await.unwrap();
        let status = f.status();
        assert_eq!(status["phase"], "Failed");
        assert_eq!(status["conditions"][0]["reason"], "InvalidResult");
        assert!(
            status["conditions"][0]["message"].as_str().unwrap().contains(want),
            "{status}"
        );
    }
}

#[tokio::test]
async fn a_status_the_api_server_refuses_fails_the_task_with_one_it_takes() {
    let f = fixture("10");
    {
        let mut model = f.model.lock().unwrap();
        model.status_limit = Some(64 << 10);
    }
    f.ctx.job_index.apply(completed_job());
    // A result whose message no status can hold.
    let now = jiff::Timestamp::now();
    let result = taskyard_api::TaskResult {
        kind: TaskKind::HashTask,
        identity: taskyard_api::TaskIdentity {
            namespace: "team-a".into(),
            name: "report".into(),
            uid: "uid-1".into(),
            generation: 1,
        },
        outcome: taskyard_api::Outcome::Failed,
        reason: taskyard_api::Reason::FetchFailed,
        message: "x".repeat(1 << 20),
        started_at: now,
        finished_at: now,
        output: None,
        attempts: None,
    };
    f.result(&serde_json::to_vec(&result).unwrap());
    reconcile(hash_task("report.pdf"), f.ctx.clone()).await.unwrap();
    let status = f.status();
    assert_eq!(status["phase"], "Failed");
    assert_eq!(status["conditions"][0]["reason"], "StatusRejected");
}

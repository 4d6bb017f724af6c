//! Shared setup of the end-to-end tests: the chart installed with Helm into the local
//! cluster, a fixture web server pods can reach, kubectl, and the store.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use futures::TryStreamExt;
use serde_json::Value;
use taskyard_common::hashlog;

use crate::cluster::{ClusterEnv, repo_root};
use crate::files::write_pattern;
use crate::http::FixtureServer;
use crate::kubectl::Kubectl;

pub const WAIT: Duration = Duration::from_secs(180);

pub struct Setup {
    pub env: ClusterEnv,
    pub kubectl: Kubectl,
    pub files: PathBuf,
    pub server: FixtureServer,
    pub runtime: tokio::runtime::Runtime,
}

/// Installs (or upgrades) the chart and starts the fixture web server, once per test binary.
pub fn setup() -> &'static Setup {
    setup_with(serde_json::json!({}))
}

/// Like `setup`, with some chart values changed (top-level keys replaced) for this test binary.
pub fn setup_with(overrides: Value) -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let env = ClusterEnv::load();
        let kubectl = Kubectl::new(&env);
        let mut values = helm_values(&env);
        for (k, v) in overrides.as_object().into_iter().flatten() {
            values[k] = v.clone();
        }
        helm_apply_values(&env, &values);
        let files = std::env::temp_dir().join(format!("taskyard-e2e-{}", std::process::id()));
        std::fs::create_dir_all(&files).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(FixtureServer::start(env.host_ip(), files.clone()));
        Setup {
            env,
            kubectl,
            files,
            server,
            runtime,
        }
    })
}

/// The chart values the local cluster needs: its store, its images, its test network.
pub fn helm_values(env: &ClusterEnv) -> Value {
    serde_json::json!({
        "store": {
            "endpoint": env.get("TASKYARD_S3_ENDPOINT"),
            "bucket": env.get("TASKYARD_S3_BUCKET"),
            "forcePathStyle": true,
            "credentialsSecret": env.get("TASKYARD_S3_SECRET"),
        },
        "image": env.get("TASKYARD_OPERATOR_IMAGE"),
        "imagePullPolicy": "Never",
        // Each reconcile's outcome, for the report of a test that times out.
        "operator": {"logLevel": "info,taskyard_operator=debug"},
        "runner": {
            "image": env.get("TASKYARD_RUNNER_IMAGE"),
            "allowedNetworks": [env.get("TASKYARD_POD_CIDR")],
            "readTimeoutSeconds": 10,
        },
    })
}

pub fn helm_apply(env: &ClusterEnv) {
    helm_apply_values(env, &helm_values(env));
}

/// Installs or upgrades the release with these values (the helm wrapper waits for the
/// operator to be ready).
pub fn helm_apply_values(env: &ClusterEnv, values: &Value) {
    let root = repo_root();
    let out = Command::new("python3")
        .arg(root.join("tests/helm/helm.py"))
        .args([
            "apply",
            root.join("charts/taskyard").to_str().unwrap(),
            "taskyard",
            "--namespace",
            "taskyard-system",
        ])
        .args(["--values", &values.to_string()])
        .env("KUBECONFIG", env.get("KUBECONFIG"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "helm install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A namespace of this test run, so runs on a reused cluster do not meet each other's tasks.
pub fn namespace(s: &Setup, name: &str) -> String {
    let ns = format!("e2e-{name}-{}", std::process::id());
    s.kubectl.namespace(&ns);
    ns
}

pub fn hash_task(namespace: &str, name: &str, url: &str) -> String {
    format!(
        "apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  source: {{url: \"{url}\"}}\n"
    )
}

pub fn file(name: &str, size: u64, seed: u64) -> PathBuf {
    let path = setup().files.join(name);
    write_pattern(&path, size, seed);
    path
}

/// The operator's namespace, where every runner Job runs.
pub const OPERATOR_NAMESPACE: &str = "taskyard-system";

/// The runner Jobs of a task (they run in the operator's namespace, not the task's).
pub fn jobs_of(s: &Setup, uid: &str) -> Vec<Value> {
    let jobs = s.kubectl.get_json(&[
        "jobs",
        "-n",
        OPERATOR_NAMESPACE,
        "-l",
        &format!("taskyard.dev/uid={uid}"),
    ]);
    jobs["items"].as_array().unwrap().clone()
}

/// The runner Pods of a task, in the operator's namespace.
pub fn runner_pods(s: &Setup, uid: &str) -> Vec<Value> {
    let pods = s.kubectl.get_json(&[
        "pods",
        "-n",
        OPERATOR_NAMESPACE,
        "-l",
        &format!("taskyard.dev/uid={uid}"),
    ]);
    pods["items"].as_array().unwrap().clone()
}

pub fn wait_succeeded(s: &Setup, namespace: &str, what: &[&str]) {
    let timeout = format!("--timeout={}s", WAIT.as_secs());
    let mut args = vec!["-n", namespace, "--for=condition=Succeeded", &timeout];
    args.extend_from_slice(what);
    s.kubectl.wait(&args);
}

/// Waits until `what` (e.g. `hashtask/x`) has failed: its Succeeded condition is False.
pub fn wait_failed(s: &Setup, namespace: &str, what: &str) {
    let timeout = format!("--timeout={}s", WAIT.as_secs());
    s.kubectl
        .wait(&["-n", namespace, "--for=condition=Succeeded=False", what, &timeout]);
}

/// The HashTask results log of `date` (YYYY-MM-DD) as a reader sees it: the day's segments
/// in order, a repeated uid+generation dropped; one line per entry, each ending in a newline.
pub fn results_log(s: &Setup, date: &str) -> String {
    let date: jiff::civil::Date = date
        .parse()
        .unwrap_or_else(|e| panic!("{date:?} is not a YYYY-MM-DD date: {e}"));
    let store = s.runtime.block_on(s.env.store());
    let lines: Vec<String> = s
        .runtime
        .block_on(hashlog::read_day(&store, date).try_collect())
        .unwrap();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

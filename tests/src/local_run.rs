//! Running one task file with `job-runner run`, as the runner integration tests do.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use crate::cluster::ClusterEnv;

/// What `job-runner run` returned and printed.
pub struct LocalRun {
    pub code: i32,
    /// The printed status (null if it printed none).
    pub status: Value,
    pub stdout_len: usize,
    pub stderr: String,
}

/// Writes `yaml` to a task file beside `store` and runs `runner run --store STORE` on it,
/// allowed to fetch from the test network's host address, with `extra` flags.
pub async fn run_task(runner: &str, store: &Path, yaml: &str, extra: &[&str]) -> LocalRun {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let task = store.with_extension(format!(
        "{}-{}.yaml",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&task, yaml).unwrap();
    let allow = format!("{}/32", ClusterEnv::load().host_ip());
    let out = tokio::process::Command::new(runner)
        .args(["run", "--store", store.to_str().unwrap(), "--allow-network", &allow])
        .args(extra)
        .arg(&task)
        .output()
        .await
        .expect("the runner starts");
    LocalRun {
        code: out.status.code().unwrap_or(-1),
        status: serde_yaml::from_slice(&out.stdout).unwrap_or(Value::Null),
        stdout_len: out.stdout.len(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

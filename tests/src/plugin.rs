//! `kubectl taskyard` as a user runs it: the plugin binary with a kubeconfig of their own.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The plugin binary of this target directory (built by tests/cluster/up.sh and by
/// `cargo test --workspace --bins`); a test binary lives in `<target>/debug/deps/`.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let debug = exe
        .parent()
        .and_then(Path::parent)
        .expect("a test binary is in <target>/debug/deps");
    let plugin = debug.join("kubectl-taskyard");
    assert!(
        plugin.exists(),
        "no {}: build it with `cargo build -p kubectl-taskyard` (tests/cluster/up.sh does)",
        plugin.display()
    );
    plugin
}

/// What a run of the plugin printed.
#[derive(Debug)]
pub struct Outcome {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `kubectl-taskyard ARGS` with `kubeconfig` and nothing else of the test's
/// environment that could speak for the user (no TASKYARD_TOKEN, no admin KUBECONFIG).
pub fn run(kubeconfig: &Path, args: &[&str]) -> Outcome {
    run_in(Path::new("."), kubeconfig, args)
}

/// As `run`, in the working directory `cwd` (where `fetch` writes by default).
pub fn run_in(cwd: &Path, kubeconfig: &Path, args: &[&str]) -> Outcome {
    let out = Command::new(binary())
        .current_dir(cwd)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("TASKYARD_TOKEN")
        .env_remove("TASKYARD_GATEWAY")
        .env_remove("TASKYARD_GATEWAY_SERVICE")
        .output()
        .expect("the plugin runs");
    Outcome {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// A kubeconfig for a token user of the local cluster, whose context's namespace is
/// `namespace`.
pub fn token_kubeconfig(path: &Path, server: &str, ca_file: &str, token: &str, namespace: &str) {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {server}\n    certificate-authority: {ca_file}\n\
         users:\n- name: user\n  user:\n    token: {token}\ncontexts:\n- name: user\n  context: {{cluster: local, user: user, namespace: {namespace}}}\n\
         current-context: user\n"
    );
    std::fs::write(path, text).unwrap();
}

//! Helm for the tests, through `tests/helm/helm.py` (Helm's Go SDK; no helm binary can be
//! installed on the test machines).

use std::process::Command;

use serde_json::Value;

use crate::cluster::{ClusterEnv, repo_root};

/// Runs `helm.py ARGS --values VALUES`; returns success, stdout and stderr. Rendering and
/// linting need no cluster, so the kubeconfig is passed only when the cluster is up.
pub fn helm(args: &[&str], values: &Value) -> (bool, String, String) {
    let mut command = Command::new("python3");
    command
        .arg(repo_root().join("tests/helm/helm.py"))
        .args(args)
        .args(["--values", &values.to_string()]);
    if repo_root().join("tests/cluster/.state/env").exists() {
        command.env("KUBECONFIG", ClusterEnv::load().get("KUBECONFIG"));
    }
    let out = command.output().expect("python3 runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The chart's directory.
pub fn chart() -> String {
    repo_root().join("charts/taskyard").to_string_lossy().into_owned()
}

/// Renders the chart into namespace taskyard-system; returns every object.
pub fn render(values: &Value) -> Vec<Value> {
    let (ok, stdout, stderr) = helm(&["render", &chart(), "--namespace", "taskyard-system"], values);
    assert!(ok, "render failed for {values}: {stderr}");
    serde_yaml::Deserializer::from_str(&stdout)
        .filter_map(|doc| {
            let v: Value = serde::Deserialize::deserialize(doc).ok()?;
            (!v.is_null()).then_some(v)
        })
        .collect()
}

/// The rendered objects of one kind.
pub fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// The literal environment (`value`, not `valueFrom`) of the operator container.
pub fn operator_env(objects: &[Value]) -> Vec<(String, String)> {
    let deployment = of_kind(objects, "Deployment")
        .into_iter()
        .next()
        .expect("the chart renders the operator Deployment");
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("the operator container has an environment")
        .iter()
        .filter_map(|e| Some((e["name"].as_str()?.to_string(), e["value"].as_str()?.to_string())))
        .collect()
}

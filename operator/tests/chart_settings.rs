//! Every value the chart passes to the operator is accepted, in its default and in its empty
//! form: the chart is rendered with those values and the real operator binary checks the
//! rendered environment (`--check-settings`), as the Pod would start with it.

use std::process::Command;

use serde_json::{Value, json};
use taskyard_tests::helm::{helm, operator_env, render};

/// Runs `taskyard-operator --check-settings` with exactly the rendered environment.
fn check_settings(env: &[(String, String)]) -> Result<Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_taskyard-operator"))
        .arg("--check-settings")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("the operator binary runs");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("--check-settings prints JSON"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn settings_for(values: &Value) -> Value {
    let (linted, report, _) = helm(&["lint", &taskyard_tests::helm::chart()], values);
    assert!(linted, "the chart's schema refused {values}:\n{report}");
    let env = operator_env(&render(values));
    check_settings(&env).unwrap_or_else(|e| panic!("the operator refused the chart's rendering of {values}: {e}"))
}

#[test]
fn the_chart_defaults_start_the_operator() {
    let settings = settings_for(&json!({"store": {"bucket": "my-bucket"}}));
    assert_eq!(settings["storeBucket"], "my-bucket");
    assert_eq!(settings["allowedNetworks"], json!([]));
    assert_eq!(settings["runnerImage"], "taskyard/job-runner:0.1.0");
    assert_eq!(settings["imagePullPolicy"], "IfNotPresent");
    assert_eq!(settings["runnerMemoryLimit"], "512Mi");
    assert_eq!(settings["maxRunningJobs"], 10);
    assert_eq!(settings["maxTasksPerJob"], 20);
    assert_eq!(settings["imageSharing"], "cluster");
}

#[test]
fn empty_and_null_values_mean_the_defaults() {
    let defaults = settings_for(&json!({"store": {"bucket": "my-bucket"}}));
    let empty = json!({
        "store": {"bucket": "my-bucket", "endpoint": "", "region": "", "credentialsSecret": ""},
        "image": "",
        "imagePullPolicy": "",
        "runner": {"image": "", "allowedNetworks": [], "resources": {}},
        "operator": {"resources": {}},
        "metrics": {"serviceMonitor": {"interval": ""}},
        "images": {"sharing": ""},
    });
    assert_eq!(settings_for(&empty), defaults, "empty values");
    let null = json!({
        "store": {"bucket": "my-bucket"},
        "runner": {"allowedNetworks": null, "resources": null},
        "operator": {"resources": null},
    });
    assert_eq!(settings_for(&null), defaults, "null values");
}

#[test]
fn set_values_reach_the_operator() {
    let settings = settings_for(&json!({
        "store": {"bucket": "b", "region": "eu-west-3", "endpoint": "http://minio.storage:9000"},
        "runner": {"allowedNetworks": ["10.0.0.0/8", "fd00::/8"], "resources": {"limits": {"memory": "1Gi"}}},
        "maxRunningJobs": 3,
        "maxTasksPerJob": 7,
    }));
    assert_eq!(settings["storeRegion"], "eu-west-3");
    assert_eq!(settings["allowedNetworks"], json!(["10.0.0.0/8", "fd00::/8"]));
    assert_eq!(settings["runnerMemoryLimit"], "1Gi");
    // Helm merges maps: the limit set replaces one key, the other defaults stay.
    assert_eq!(settings["runnerCpuLimit"], "1");
    assert_eq!(settings["maxRunningJobs"], 3);
    assert_eq!(settings["maxTasksPerJob"], 7);
}

#[test]
fn an_environment_the_operator_cannot_use_is_refused_with_the_fix() {
    let mut env = operator_env(&render(&json!({"store": {"bucket": "b"}})));
    env.retain(|(k, _)| k != "TASKYARD_STORE_BUCKET");
    let error = check_settings(&env).unwrap_err();
    assert!(error.contains("store.bucket"), "{error}");
    env.push(("TASKYARD_STORE_BUCKET".into(), "b".into()));
    env.push(("TASKYARD_ALLOWED_NETWORKS".into(), "intranet".into()));
    let error = check_settings(&env).unwrap_err();
    assert!(error.contains("CIDR"), "{error}");
}

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
    assert_eq!(settings["maxTasksPerJob"], 50);
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

#[test]
fn a_web_identity_role_reaches_the_operator_and_mounts_a_token_for_sts() {
    let values = json!({"store": {"bucket": "b", "webIdentity": {"roleArn": "arn:aws:iam::1:role/t", "stsEndpoint": "http://10.0.0.1:9000"}}});
    let settings = settings_for(&values);
    assert_eq!(settings["storeWebIdentityRoleArn"], "arn:aws:iam::1:role/t");
    assert_eq!(settings["storeWebIdentityAudience"], "sts.amazonaws.com");
    assert_eq!(settings["storeStsEndpoint"], "http://10.0.0.1:9000");
    assert_eq!(settings["runnerServiceAccount"], "taskyard-runner");
    let objects = render(&values);
    let env: std::collections::BTreeMap<_, _> = operator_env(&objects).into_iter().collect();
    assert_eq!(env["AWS_ROLE_ARN"], "arn:aws:iam::1:role/t");
    assert_eq!(
        env["AWS_WEB_IDENTITY_TOKEN_FILE"],
        "/var/run/secrets/taskyard/web-identity/token"
    );
    assert_eq!(env["AWS_ENDPOINT_URL_STS"], "http://10.0.0.1:9000");
    let pod = &taskyard_tests::helm::of_kind(&objects, "Deployment")[0]["spec"]["template"]["spec"];
    let token = &pod["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"];
    assert_eq!(token["audience"], "sts.amazonaws.com");
    assert_eq!(token["path"], "token");
    // The runners' ServiceAccount: its API token never mounted, and bound to no Role.
    let accounts = taskyard_tests::helm::of_kind(&objects, "ServiceAccount");
    let runner = accounts
        .iter()
        .find(|a| a["metadata"]["name"] == "taskyard-runner")
        .expect("the chart creates the runners' ServiceAccount");
    assert_eq!(runner["automountServiceAccountToken"], false);
    for kind in ["RoleBinding", "ClusterRoleBinding"] {
        for binding in taskyard_tests::helm::of_kind(&objects, kind) {
            let subjects = binding["subjects"].as_array().unwrap();
            assert!(subjects.iter().all(|s| s["name"] != "taskyard-runner"), "{binding}");
        }
    }
}

#[test]
fn without_a_web_identity_role_no_token_is_mounted() {
    let objects = render(&json!({"store": {"bucket": "b"}}));
    let env = operator_env(&objects);
    assert!(!env.iter().any(|(k, _)| k.starts_with("AWS_")), "{env:?}");
    let pod = &taskyard_tests::helm::of_kind(&objects, "Deployment")[0]["spec"]["template"]["spec"];
    assert!(pod["volumes"].is_null(), "{pod}");
}

#[test]
fn a_credentials_secret_and_a_web_identity_role_together_are_refused() {
    let values = json!({"store": {"bucket": "b", "credentialsSecret": "c", "webIdentity": {"roleArn": "arn:aws:iam::1:role/t"}}});
    let (ok, _, stderr) = taskyard_tests::helm::helm(
        &[
            "render",
            &taskyard_tests::helm::chart(),
            "--namespace",
            "taskyard-system",
        ],
        &values,
    );
    assert!(!ok && stderr.contains("keep one"), "{stderr}");
}

//! End to end on the local cluster, with no credentials Secret: the chart installed with
//! `store.webIdentity`, so the operator and the runners take the store's keys from STS in
//! exchange for their projected ServiceAccount tokens, as on EKS. STS is a stand-in on the
//! host (taskyard_tests::sts), reachable from pods at TASKYARD_HOST_IP, handing out the
//! cluster store's keys and recording every token it got.

use serde_json::json;
use taskyard_tests::cluster::ClusterEnv;
use taskyard_tests::e2e::{
    OPERATOR_NAMESPACE, file, hash_task, helm_values, jobs_of, namespace, results_log, setup_with, wait_succeeded,
};
use taskyard_tests::sts::{IssuedKeys, StsServer, jwt_claims};

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/taskyard-e2e";

/// Puts the release back as the other e2e tests install it (with the credentials Secret),
/// passed or failed: the STS stand-in ends with this test.
struct RestoreRelease<'a>(&'a ClusterEnv);

impl Drop for RestoreRelease<'_> {
    fn drop(&mut self) {
        taskyard_tests::e2e::helm_apply(self.0);
    }
}

#[test]
fn a_hash_task_succeeds_with_keys_from_sts_for_service_account_tokens() {
    let env = ClusterEnv::load();
    // Its own runtime: the stand-in must answer before the chart is installed (the operator
    // reads the store as it starts) and while the test blocks on kubectl.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sts = runtime.block_on(StsServer::start(
        env.host_ip(),
        IssuedKeys {
            access_key_id: env.get("AWS_ACCESS_KEY_ID").into(),
            secret_access_key: env.get("AWS_SECRET_ACCESS_KEY").into(),
            session_token: format!("e2e-session-{}", std::process::id()),
        },
    ));
    let mut store = helm_values(&env)["store"].clone();
    store["credentialsSecret"] = json!("");
    store["webIdentity"] = json!({"roleArn": ROLE_ARN, "stsEndpoint": sts.url()});
    let _restore = RestoreRelease(&env);
    let s = setup_with(json!({"store": store}));

    let ns = &namespace(s, "credentials");
    file("credentials.bin", 100_000, 14);
    s.kubectl
        .apply(&hash_task(ns, "report", &s.server.url("/files/credentials.bin")));
    wait_succeeded(s, ns, &["hashtask/report"]);
    let task = s.kubectl.get_json(&["hashtask", "report", "-n", ns]);
    let uid = task["metadata"]["uid"].as_str().unwrap();

    // The runner Pod: its own ServiceAccount, no API token, the STS token and the role.
    let jobs = jobs_of(s, uid);
    assert_eq!(jobs.len(), 1);
    let pod = &jobs[0]["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "taskyard-runner");
    assert_eq!(pod["automountServiceAccountToken"], false);
    let env_of = |name: &str| {
        pod["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(env_of("AWS_ROLE_ARN"), Some(json!(ROLE_ARN)));
    assert_eq!(env_of("AWS_ACCESS_KEY_ID"), None);

    // Both the runner and the operator (which read result.json to set the status above)
    // called STS, each with a token for STS's audience naming its own ServiceAccount.
    let calls = sts.calls();
    let mut subjects: Vec<String> = calls
        .iter()
        .map(|call| {
            assert_eq!(call.role_arn, ROLE_ARN);
            let claims = jwt_claims(&call.token).unwrap_or_else(|| panic!("not a JWT: {}", call.token));
            assert_eq!(claims["aud"], json!(["sts.amazonaws.com"]), "{claims}");
            claims["sub"].as_str().unwrap().to_string()
        })
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(
        subjects,
        [
            format!("system:serviceaccount:{OPERATOR_NAMESPACE}:taskyard-operator"),
            format!("system:serviceaccount:{OPERATOR_NAMESPACE}:taskyard-runner"),
        ]
    );

    // The runners' ServiceAccount may do nothing at all with the API.
    let runner = format!("--as=system:serviceaccount:{OPERATOR_NAMESPACE}:taskyard-runner");
    let (allowed, out, _) = s
        .kubectl
        .try_run(&["auth", "can-i", "--list", "-n", OPERATOR_NAMESPACE, &runner]);
    assert!(allowed, "kubectl auth can-i --list ran");
    for line in out.lines().skip(1) {
        // Only what every authenticated identity may do (self reviews, discovery).
        assert!(
            line.contains("selfsubject") || line.contains("[/") || line.trim().is_empty(),
            "the runners' ServiceAccount may {line}"
        );
    }
    let (allowed, _, _) = s
        .kubectl
        .try_run(&["auth", "can-i", "get", "pods", "-n", OPERATOR_NAMESPACE, &runner]);
    assert!(!allowed, "the runners' ServiceAccount can read Pods");

    // The operator appended the results log with its STS keys too.
    let day = task["status"]["completionTime"].as_str().unwrap()[..10].to_string();
    assert!(results_log(s, &day).contains(uid), "no results-log line for {uid}");
}

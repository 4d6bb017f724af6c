//! The chart-installed gateway of the end-to-end tests: the chart values that enable it (cluster
//! mode, two replicas, its own namespace for the legacy APIs' tasks) and its Service's URL.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::json;

use crate::cluster::ClusterEnv;
use crate::e2e::{OPERATOR_NAMESPACE, Setup, setup_with};
use crate::kubectl::Kubectl;

/// The gateway's Deployment, Service and ServiceAccount.
pub const GATEWAY: &str = "taskyard-gateway";
pub const REPLICAS: u64 = 2;
/// gateway.maxUploadBytes here.
pub const LIMIT: usize = 24 << 20;

/// The namespace the gateway's anonymous APIs create tasks in: made before the chart is
/// installed, since the gateway's Role lives there. One per test binary.
pub fn gateway_namespace() -> String {
    format!("e2e-gateway-{}", std::process::id())
}

/// Installs the chart with the gateway enabled, once per test binary, and waits until the
/// gateway's rollout has settled.
pub fn gw() -> &'static Setup {
    static SETTLED: OnceLock<()> = OnceLock::new();
    let env = ClusterEnv::load();
    let s = setup_with_namespace(&env);
    SETTLED.get_or_init(|| settle(s));
    s
}

fn setup_with_namespace(env: &ClusterEnv) -> &'static Setup {
    // The tests of one binary call `gw` at once; one of them makes the namespace.
    static NAMESPACE: OnceLock<()> = OnceLock::new();
    NAMESPACE.get_or_init(|| Kubectl::new(env).namespace(&gateway_namespace()));
    setup_with(json!({"gateway": {
        "enabled": true,
        "image": env.get("TASKYARD_GATEWAY_IMAGE"),
        "replicas": REPLICAS,
        "namespace": gateway_namespace(),
        "maxUploadBytes": LIMIT,
    }}))
}

/// Each test binary names its own namespace, so installing the chart rolls the gateway's
/// Pods. The install waits for the new Pods to be ready, not for the old ones to be gone;
/// a request the node still routes to an old one fails with "no route to host". So: only
/// the new Pods left, every one of them in the Service's endpoints, then a moment for
/// kube-proxy to write its rules.
fn settle(s: &Setup) {
    let deployment = s.kubectl.get_json(&["deployment", GATEWAY, "-n", OPERATOR_NAMESPACE]);
    let selector = deployment["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("the gateway's selector")
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(",");
    s.kubectl
        .eventually("the gateway's rollout to settle", Duration::from_secs(180), || {
            let pods = s.kubectl.get_json(&["pods", "-n", OPERATOR_NAMESPACE, "-l", &selector]);
            let pods = pods["items"].as_array()?.clone();
            let all_ready = pods.iter().all(|p| {
                p["metadata"]["deletionTimestamp"].is_null()
                    && p["status"]["conditions"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
            });
            let endpoints = s.kubectl.get_json(&["endpoints", GATEWAY, "-n", OPERATOR_NAMESPACE]);
            let addresses: usize = endpoints["subsets"]
                .as_array()
                .map(|subsets| {
                    subsets
                        .iter()
                        .map(|s| s["addresses"].as_array().map_or(0, Vec::len))
                        .sum()
                })
                .unwrap_or(0);
            let not_ready = endpoints["subsets"]
                .as_array()
                .is_some_and(|subsets| subsets.iter().any(|s| s["notReadyAddresses"].is_array()));
            (pods.len() as u64 == REPLICAS && all_ready && addresses as u64 == REPLICAS && !not_ready).then_some(())
        });
    std::thread::sleep(Duration::from_secs(3));
}

/// The gateway's Service, as the host (and any Pod) reaches it.
pub fn base(s: &Setup) -> String {
    let svc = s.kubectl.get_json(&["service", GATEWAY, "-n", OPERATOR_NAMESPACE]);
    let ip = svc["spec"]["clusterIP"].as_str().unwrap();
    assert_eq!(svc["spec"]["ports"][0]["port"], 9000, "the MD5 clients' port");
    format!("http://{ip}:9000")
}

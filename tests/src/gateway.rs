//! The chart-installed gateway of the end-to-end tests: the chart values that enable it (cluster
//! mode, two replicas, its own namespace for the legacy APIs' tasks) and its Service's URL.

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

/// Installs the chart with the gateway enabled, once per test binary.
pub fn gw() -> &'static Setup {
    let env = ClusterEnv::load();
    Kubectl::new(&env).namespace(&gateway_namespace());
    setup_with(json!({"gateway": {
        "enabled": true,
        "image": env.get("TASKYARD_GATEWAY_IMAGE"),
        "replicas": REPLICAS,
        "namespace": gateway_namespace(),
        "maxUploadBytes": LIMIT,
    }}))
}

/// The gateway's Service, as the host (and any Pod) reaches it.
pub fn base(s: &Setup) -> String {
    let svc = s.kubectl.get_json(&["service", GATEWAY, "-n", OPERATOR_NAMESPACE]);
    let ip = svc["spec"]["clusterIP"].as_str().unwrap();
    assert_eq!(svc["spec"]["ports"][0]["port"], 9000, "the MD5 clients' port");
    format!("http://{ip}:9000")
}

//! The environment `tests/cluster/up.sh` writes to `tests/cluster/.state/env`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use taskyard_common::store::{S3Settings, S3Store, Store};

/// The running local cluster and object store.
#[derive(Clone, Debug)]
pub struct ClusterEnv {
    vars: BTreeMap<String, String>,
}

/// The checkout under test. Read when the test runs, not when it is compiled: test binaries
/// in a target directory shared by several checkouts may have been compiled in another one.
pub fn repo_root() -> PathBuf {
    let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("run the tests with cargo test");
    PathBuf::from(crate_dir).join("..")
}

impl ClusterEnv {
    /// Loads the environment, or fails the test saying how to start the cluster: a test
    /// that needs the cluster never skips itself.
    pub fn load() -> Self {
        let path = repo_root().join("tests/cluster/.state/env");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the local cluster is not up ({}: {e}); start it with tests/cluster/up.sh, or run everything with tests/run-all.sh",
                path.display()
            )
        });
        let vars = text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self { vars }
    }

    pub fn get(&self, key: &str) -> &str {
        self.vars
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{key} is missing from tests/cluster/.state/env"))
    }

    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// The address pods (and the host) reach test servers at.
    pub fn host_ip(&self) -> std::net::IpAddr {
        self.get("TASKYARD_HOST_IP")
            .parse()
            .expect("TASKYARD_HOST_IP is an IP address")
    }

    pub fn s3_settings(&self) -> S3Settings {
        S3Settings {
            endpoint: Some(self.get("TASKYARD_S3_ENDPOINT").to_string()),
            region: "us-east-1".into(),
            bucket: self.get("TASKYARD_S3_BUCKET").to_string(),
            force_path_style: true,
            credentials: Some((
                self.get("AWS_ACCESS_KEY_ID").to_string(),
                self.get("AWS_SECRET_ACCESS_KEY").to_string(),
            )),
        }
    }

    pub async fn store(&self) -> Store {
        Store::S3(S3Store::connect(&self.s3_settings()).await)
    }
}

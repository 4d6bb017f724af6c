//! The environment `tests/cluster/up.sh` writes to `tests/cluster/.state/env`, and the
//! store-only one `tests/store/rgw-up.sh` writes (RGW), which the store-facing tests use
//! instead when `TASKYARD_STORE_ENV` names it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use taskyard_api::{TaskIdentity, TaskKind, TaskResult};
use taskyard_common::keys::result_key;
use taskyard_common::store::{S3Settings, S3Store, Store};

/// Names the env file of a store other than the local cluster's (see `load_store`).
pub const STORE_ENV: &str = "TASKYARD_STORE_ENV";

/// The S3 server behind the store-facing tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// s3s-fs, the file-backed test server the local cluster runs.
    S3sFs,
    /// Ceph's RADOS Gateway (16.2), started by tests/store/rgw-up.sh.
    Rgw,
}

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
    /// that needs the cluster never skips itself. When `TASKYARD_STORE_ENV` names a store
    /// started for the cluster (`rgw-up.sh --for-cluster`), that store replaces s3s-fs: the
    /// chart's values, and the tests' own store client, name it.
    pub fn load() -> Self {
        let path = repo_root().join("tests/cluster/.state/env");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the local cluster is not up ({}: {e}); start it with tests/cluster/up.sh, or run everything with tests/run-all.sh",
                path.display()
            )
        });
        let mut env = Self::parse(&text);
        if std::env::var_os(STORE_ENV).is_some() {
            let store = Self::load_store();
            if let Some(endpoint) = store.vars.get("TASKYARD_CLUSTER_S3_ENDPOINT") {
                env.use_store(&store, endpoint.clone());
            }
        }
        env
    }

    /// Points this cluster environment at `store`, which Pods reach at `endpoint`.
    fn use_store(&mut self, store: &ClusterEnv, endpoint: String) {
        self.vars.remove("TASKYARD_S3_ROOT");
        for key in [
            "TASKYARD_STORE_KIND",
            "TASKYARD_S3_BUCKET",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
        ] {
            self.vars.insert(key.into(), store.get(key).into());
        }
        self.vars.insert("TASKYARD_S3_ENDPOINT".into(), endpoint);
        self.vars.insert(
            "TASKYARD_S3_SECRET".into(),
            store.get("TASKYARD_CLUSTER_S3_SECRET").into(),
        );
    }

    /// The environment of the store-facing tests: the env file `TASKYARD_STORE_ENV` names
    /// (a store started without the cluster, e.g. by tests/store/rgw-up.sh), else the local
    /// cluster's, whose S3 server is s3s-fs. The same test binaries run against either.
    pub fn load_store() -> Self {
        let Some(path) = std::env::var_os(STORE_ENV) else {
            return Self::load();
        };
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{STORE_ENV} names {} but it cannot be read ({e}); start that store (tests/store/rgw-up.sh for RGW) \
                 or unset {STORE_ENV} to use the local cluster's S3 server",
                std::path::Path::new(&path).display()
            )
        });
        Self::parse(&text)
    }

    fn parse(text: &str) -> Self {
        let vars = text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self { vars }
    }

    /// Which S3 server the store is: `s3s-fs` (the local cluster's) or `rgw`. Tests assert
    /// the stronger guarantees where the server gives them (see the README's RGW section).
    pub fn store_kind(&self) -> StoreKind {
        match self.vars.get("TASKYARD_STORE_KIND").map(String::as_str) {
            None | Some("s3s-fs") => StoreKind::S3sFs,
            Some("rgw") => StoreKind::Rgw,
            Some(other) => panic!("TASKYARD_STORE_KIND={other} is not a known store; expected s3s-fs or rgw"),
        }
    }

    /// The directory the S3 server keeps the bucket's objects in as files, when it does
    /// (s3s-fs); `None` for a server whose objects are not files (RGW).
    pub fn s3_root(&self) -> Option<&str> {
        self.vars.get("TASKYARD_S3_ROOT").map(String::as_str)
    }

    pub fn get(&self, key: &str) -> &str {
        self.vars.get(key).map(String::as_str).unwrap_or_else(|| {
            panic!(
                "{key} is missing from the test environment (tests/cluster/.state/env, or the file {STORE_ENV} names)"
            )
        })
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
            ..Default::default()
        }
    }

    pub async fn store(&self) -> Store {
        Store::S3(S3Store::connect(&self.s3_settings()).await)
    }

    /// The `result.json` a runner wrote for a task generation; fails the test if there is none.
    pub async fn runner_result(&self, kind: TaskKind, id: &TaskIdentity) -> TaskResult {
        let key = result_key(kind, id);
        let body = self
            .store()
            .await
            .get(&key, 1 << 20)
            .await
            .unwrap_or_else(|e| panic!("cannot read {key}: {e}"))
            .unwrap_or_else(|| panic!("{key} was not written"));
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{key} is not a runner result: {e}"))
    }
}

//! The gateway's command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use taskyard_common::setting::{number_in, or_default};
use taskyard_runner::settings::RunnerArgs;

#[derive(Debug, clap::Parser)]
#[command(
    name = "taskyard-gateway",
    version,
    about = "The Taskyard gateway: the replaced services' REST APIs"
)]
pub struct Settings {
    /// Run without a cluster: tasks run in this process with the runner's code, and the
    /// directory given by --store is the object store.
    #[arg(long)]
    pub local: bool,
    /// Local mode's object store directory (the bucket's key layout); created if missing.
    #[arg(long, env = "TASKYARD_GATEWAY_STORE", default_value = "taskyard-store")]
    pub store: PathBuf,
    /// Address to listen on. Port 9000 is the MD5 service's, which its clients hard-code.
    #[arg(long, env = "TASKYARD_GATEWAY_LISTEN", default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// The namespace the anonymous legacy APIs create their tasks in (uploads go to
    /// uploads/<namespace>/).
    #[arg(long, env = "TASKYARD_GATEWAY_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Largest upload accepted by the file APIs, in bytes (images are further limited by
    /// --max-image-bytes).
    #[arg(long, env = "TASKYARD_GATEWAY_MAX_UPLOAD_BYTES", default_value_t = 10 << 30)]
    pub max_upload_bytes: u64,
    /// Cluster mode: the bucket the operator uses (Helm: store.bucket).
    #[arg(long, env = "TASKYARD_STORE_BUCKET", default_value = "")]
    pub store_bucket: String,
    /// Cluster mode: the S3 endpoint URL; empty means AWS (Helm: store.endpoint).
    #[arg(long, env = "TASKYARD_STORE_ENDPOINT", default_value = "")]
    pub store_endpoint: String,
    /// Cluster mode: the bucket's region (Helm: store.region).
    #[arg(long, env = "TASKYARD_STORE_REGION", default_value = "us-east-1",
          value_parser = or_default::<String>("us-east-1"))]
    pub store_region: String,
    /// Cluster mode: path-style addressing, which most self-hosted S3 servers need
    /// (Helm: store.forcePathStyle).
    #[arg(long, env = "TASKYARD_STORE_FORCE_PATH_STYLE", default_value_t = false,
          action = clap::ArgAction::Set, value_parser = or_default::<bool>("false"))]
    pub store_force_path_style: bool,
    /// Cluster mode: seconds a store request may wait for its answer before it is tried again
    /// (Helm: store.stallTimeoutSeconds).
    #[arg(long, env = "TASKYARD_STORE_STALL_TIMEOUT_SECONDS", default_value_t = 30,
          value_parser = number_in::<u64>("30", 1, 3600))]
    pub store_stall_timeout_seconds: u64,
    /// Local mode: how many tasks run at once (default: one per core).
    #[arg(long, env = "TASKYARD_GATEWAY_TASK_SLOTS")]
    pub task_slots: Option<usize>,
    #[command(flatten)]
    pub runner: RunnerArgs,
}

/// Limits the HTTP layer applies before any task runs.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_upload_bytes: u64,
    pub max_image_bytes: u64,
}

impl Settings {
    /// Refuses settings the chosen mode cannot run with, saying what to set.
    pub fn validate(&self) -> Result<(), String> {
        let ns = &self.namespace;
        let label = ns.len() <= 63
            && ns
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !ns.starts_with('-')
            && !ns.ends_with('-');
        if ns.is_empty() || !label {
            return Err(format!(
                "--namespace {ns:?} is not a Kubernetes namespace name: use lower-case letters, digits and '-', at most 63"
            ));
        }
        if self.local {
            return Ok(());
        }
        if self.store_bucket.trim().is_empty() {
            return Err("cluster mode needs the operator's bucket: set --store-bucket / TASKYARD_STORE_BUCKET (Helm: store.bucket), or run with --local".into());
        }
        let http = url::Url::parse(&self.store_endpoint).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !self.store_endpoint.is_empty() && !http {
            return Err(format!(
                "--store-endpoint {:?} is not an http(s) URL: use e.g. http://minio.storage:9000 (Helm: store.endpoint)",
                self.store_endpoint
            ));
        }
        Ok(())
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_upload_bytes: self.max_upload_bytes,
            max_image_bytes: self.runner.max_image_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Settings;

    fn parse(args: &[&str]) -> Settings {
        Settings::try_parse_from(std::iter::once("taskyard-gateway").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn cluster_mode_needs_a_bucket_and_says_where_to_set_it() {
        let e = parse(&[]).validate().unwrap_err();
        assert!(e.contains("TASKYARD_STORE_BUCKET") && e.contains("--local"), "{e}");
        assert!(parse(&["--store-bucket", "b"]).validate().is_ok());
        assert!(parse(&["--local"]).validate().is_ok());
    }

    #[test]
    fn a_bad_endpoint_or_namespace_is_refused() {
        let e = parse(&["--store-bucket", "b", "--store-endpoint", "minio:9000"])
            .validate()
            .unwrap_err();
        assert!(e.contains("not an http(s) URL"), "{e}");
        let e = parse(&["--local", "--namespace", "Team_A"]).validate().unwrap_err();
        assert!(e.contains("namespace name"), "{e}");
    }

    #[test]
    fn an_empty_chart_value_means_the_default() {
        let s = parse(&[
            "--store-bucket",
            "b",
            "--store-region",
            "",
            "--store-force-path-style",
            "",
        ]);
        assert_eq!(s.store_region, "us-east-1");
        assert!(!s.store_force_path_style);
    }
}

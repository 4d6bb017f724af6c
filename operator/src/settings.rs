//! The operator's settings: one typed struct from flags and environment variables, mapped
//! one to one onto the Helm values (API.md, "Operator settings").

use clap::Parser;
use ipnet::IpNet;

#[derive(Clone, Debug, Parser)]
#[command(
    name = "taskyard-operator",
    version,
    about = "Runs Taskyard tasks as Kubernetes Jobs"
)]
pub struct Settings {
    /// S3 endpoint URL; empty means AWS (Helm: store.endpoint).
    #[arg(long, env = "TASKYARD_STORE_ENDPOINT", default_value = "")]
    pub store_endpoint: String,
    /// Region of the bucket (Helm: store.region).
    #[arg(long, env = "TASKYARD_STORE_REGION", default_value = "us-east-1")]
    pub store_region: String,
    /// The one bucket Taskyard uses (Helm: store.bucket).
    #[arg(long, env = "TASKYARD_STORE_BUCKET")]
    pub store_bucket: String,
    /// Path-style addressing, which most self-hosted S3 servers need (Helm: store.forcePathStyle).
    #[arg(long, env = "TASKYARD_STORE_FORCE_PATH_STYLE", default_value_t = false, action = clap::ArgAction::Set)]
    pub store_force_path_style: bool,
    /// Secret in the operator's namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY;
    /// empty means the default credential chain (Helm: store.credentialsSecret).
    #[arg(long, env = "TASKYARD_STORE_CREDENTIALS_SECRET", default_value = "")]
    pub store_credentials_secret: String,
    /// The namespace the operator runs in (set from the Pod by the chart).
    #[arg(long, env = "TASKYARD_NAMESPACE", default_value = "taskyard-system")]
    pub namespace: String,
    /// Runner image reference (Helm: runner.image).
    #[arg(long, env = "TASKYARD_RUNNER_IMAGE")]
    pub runner_image: String,
    /// Pull policy for runner Pods (Helm: imagePullPolicy).
    #[arg(long, env = "TASKYARD_IMAGE_PULL_POLICY", default_value = "IfNotPresent",
          value_parser = ["Always", "IfNotPresent", "Never"])]
    pub image_pull_policy: String,
    /// CIDRs runners may fetch from although private or loopback, comma-separated
    /// (Helm: runner.allowedNetworks).
    #[arg(long, env = "TASKYARD_ALLOWED_NETWORKS", value_delimiter = ',')]
    pub allowed_networks: Vec<IpNet>,
    /// Runner CPU request (Helm: runner.resources.requests.cpu).
    #[arg(long, env = "TASKYARD_RUNNER_CPU_REQUEST", default_value = "100m")]
    pub runner_cpu_request: String,
    /// Runner memory request (Helm: runner.resources.requests.memory).
    #[arg(long, env = "TASKYARD_RUNNER_MEMORY_REQUEST", default_value = "64Mi")]
    pub runner_memory_request: String,
    /// Runner CPU limit (Helm: runner.resources.limits.cpu).
    #[arg(long, env = "TASKYARD_RUNNER_CPU_LIMIT", default_value = "1")]
    pub runner_cpu_limit: String,
    /// Runner memory limit (Helm: runner.resources.limits.memory).
    #[arg(long, env = "TASKYARD_RUNNER_MEMORY_LIMIT", default_value = "512Mi")]
    pub runner_memory_limit: String,
    /// Seconds a download may go without data before it fails (runner setting).
    #[arg(long, env = "TASKYARD_RUNNER_READ_TIMEOUT_SECONDS", default_value_t = 60)]
    pub runner_read_timeout_seconds: u64,
    /// Cluster-wide cap on runner Jobs that exist at once (Helm: maxRunningJobs).
    #[arg(long, env = "TASKYARD_MAX_RUNNING_JOBS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub max_running_jobs: u32,
    /// Finished runner Jobs are deleted after this many seconds (Helm: jobTtlSeconds).
    #[arg(long, env = "TASKYARD_JOB_TTL_SECONDS", default_value_t = 3600)]
    pub job_ttl_seconds: u64,
    /// Deleting a task also deletes its task-specific store objects (Helm: cleanupOnDelete).
    #[arg(long, env = "TASKYARD_CLEANUP_ON_DELETE", default_value_t = false, action = clap::ArgAction::Set)]
    pub cleanup_on_delete: bool,
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, env = "TASKYARD_METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: std::net::SocketAddr,
    /// Elect one leader among replicas with a Lease in the operator's namespace.
    #[arg(long, env = "TASKYARD_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "TASKYARD_LEASE_NAME", default_value = "taskyard-operator")]
    pub lease_name: String,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "TASKYARD_LOG_JSON", default_value_t = false, action = clap::ArgAction::Set)]
    pub log_json: bool,
}

impl Settings {
    /// Checks what clap cannot, with messages that say how to fix it.
    pub fn validate(&self) -> Result<(), String> {
        if self.store_bucket.trim().is_empty() {
            return Err(
                "store bucket is empty: set --store-bucket / TASKYARD_STORE_BUCKET (Helm: store.bucket)".into(),
            );
        }
        if self.runner_image.trim().is_empty() {
            return Err(
                "runner image is empty: set --runner-image / TASKYARD_RUNNER_IMAGE (Helm: runner.image)".into(),
            );
        }
        if !self.store_endpoint.is_empty() && url::Url::parse(&self.store_endpoint).is_err() {
            return Err(format!(
                "store endpoint {:?} is not a URL: use e.g. http://minio.storage:9000 (Helm: store.endpoint)",
                self.store_endpoint
            ));
        }
        Ok(())
    }
}

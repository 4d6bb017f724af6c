//! The operator's settings: one typed struct from flags and environment variables, mapped
//! one to one onto the Helm values (API.md, "Operator settings").

use clap::Parser;
use taskyard_common::setting::{NetworkList, number_in, one_of, or_default, quantity};
use taskyard_common::store::S3Settings;

/// `maxTasksPerJob` when not set (see the README for the measurements behind it).
pub const DEFAULT_MAX_TASKS_PER_JOB: u32 = 50;

/// Every setting comes from a flag or an environment variable (the chart sets the latter).
/// An empty value means the setting's default, because the chart renders empty values
/// (`""`, `[]`, `{}`) as empty strings; see `taskyard_common::setting`.
#[derive(Clone, Debug, Parser, serde::Serialize)]
#[serde(rename_all = "camelCase")]
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
    #[arg(long, env = "TASKYARD_STORE_REGION", default_value = "us-east-1",
          value_parser = or_default::<String>("us-east-1"))]
    pub store_region: String,
    /// The one bucket Taskyard uses (Helm: store.bucket).
    #[arg(long, env = "TASKYARD_STORE_BUCKET", default_value = "")]
    pub store_bucket: String,
    /// Path-style addressing, which most self-hosted S3 servers need (Helm: store.forcePathStyle).
    #[arg(long, env = "TASKYARD_STORE_FORCE_PATH_STYLE", default_value_t = false,
          action = clap::ArgAction::Set, value_parser = or_default::<bool>("false"))]
    pub store_force_path_style: bool,
    /// Seconds a store request may wait for its answer before it is tried again (plus 4 s
    /// per MiB it sends); the operator, its runners and the gateway (Helm: store.stallTimeoutSeconds).
    #[arg(long, env = "TASKYARD_STORE_STALL_TIMEOUT_SECONDS", default_value_t = 30,
          value_parser = number_in::<u64>("30", 1, 3600))]
    pub store_stall_timeout_seconds: u64,
    /// Secret in the operator's namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY;
    /// empty means the default credential chain (Helm: store.credentialsSecret).
    #[arg(long, env = "TASKYARD_STORE_CREDENTIALS_SECRET", default_value = "")]
    pub store_credentials_secret: String,
    /// IAM role the operator and runners assume with a projected ServiceAccount token (web
    /// identity, as EKS's IRSA); empty means none. Only without a credentials Secret
    /// (Helm: store.webIdentity.roleArn).
    #[arg(long, env = "TASKYARD_STORE_WEB_IDENTITY_ROLE_ARN", default_value = "")]
    pub store_web_identity_role_arn: String,
    /// Audience of that token: whom STS expects it for, never the API server's
    /// (Helm: store.webIdentity.audience).
    #[arg(long, env = "TASKYARD_STORE_WEB_IDENTITY_AUDIENCE", default_value = "sts.amazonaws.com",
          value_parser = or_default::<String>("sts.amazonaws.com"))]
    pub store_web_identity_audience: String,
    /// STS endpoint URL the token is exchanged at; empty means the SDK's default
    /// (Helm: store.webIdentity.stsEndpoint).
    #[arg(long, env = "TASKYARD_STORE_STS_ENDPOINT", default_value = "")]
    pub store_sts_endpoint: String,
    /// ServiceAccount of runner Pods; empty means the namespace's default. The chart creates
    /// one with no RBAC permission (Helm: runner.serviceAccount).
    #[arg(long, env = "TASKYARD_RUNNER_SERVICE_ACCOUNT", default_value = "")]
    pub runner_service_account: String,
    /// The namespace the operator runs in (set from the Pod by the chart).
    #[arg(long, env = "TASKYARD_NAMESPACE", default_value = "taskyard-system",
          value_parser = or_default::<String>("taskyard-system"))]
    pub namespace: String,
    /// Runner image reference (Helm: runner.image).
    #[arg(long, env = "TASKYARD_RUNNER_IMAGE", default_value = "")]
    pub runner_image: String,
    /// Pull policy for runner Pods (Helm: imagePullPolicy).
    #[arg(long, env = "TASKYARD_IMAGE_PULL_POLICY", default_value = "IfNotPresent",
          value_parser = one_of("IfNotPresent", &["Always", "IfNotPresent", "Never"]))]
    pub image_pull_policy: String,
    /// CIDRs runners may fetch from although private or loopback, comma-separated
    /// (Helm: runner.allowedNetworks).
    #[arg(long, env = "TASKYARD_ALLOWED_NETWORKS", default_value = "", value_parser = NetworkList::parse)]
    pub allowed_networks: NetworkList,
    /// Runner CPU request (Helm: runner.resources.requests.cpu).
    #[arg(long, env = "TASKYARD_RUNNER_CPU_REQUEST", default_value = "100m", value_parser = quantity("100m"))]
    pub runner_cpu_request: String,
    /// Runner memory request (Helm: runner.resources.requests.memory).
    #[arg(long, env = "TASKYARD_RUNNER_MEMORY_REQUEST", default_value = "64Mi", value_parser = quantity("64Mi"))]
    pub runner_memory_request: String,
    /// Runner CPU limit (Helm: runner.resources.limits.cpu).
    #[arg(long, env = "TASKYARD_RUNNER_CPU_LIMIT", default_value = "1", value_parser = quantity("1"))]
    pub runner_cpu_limit: String,
    /// Runner memory limit (Helm: runner.resources.limits.memory).
    #[arg(long, env = "TASKYARD_RUNNER_MEMORY_LIMIT", default_value = "512Mi", value_parser = quantity("512Mi"))]
    pub runner_memory_limit: String,
    /// Seconds a download may go without data before it fails (runner setting).
    #[arg(long, env = "TASKYARD_RUNNER_READ_TIMEOUT_SECONDS", default_value_t = 60,
          value_parser = number_in::<u64>("60", 1, 3600))]
    pub runner_read_timeout_seconds: u64,
    /// Where stored images are shared: cluster (every task, by source URL) or namespace
    /// (Helm: images.sharing).
    #[arg(long, env = "TASKYARD_IMAGE_SHARING", default_value = "cluster",
          value_parser = one_of("cluster", &["cluster", "namespace"]))]
    pub image_sharing: String,
    /// Cluster-wide cap on runner Jobs that exist at once (Helm: maxRunningJobs).
    #[arg(long, env = "TASKYARD_MAX_RUNNING_JOBS", default_value_t = 10,
          value_parser = number_in::<u32>("10", 1, 10000))]
    pub max_running_jobs: u32,
    /// Most waiting tasks one runner Job carries under a burst (Helm: maxTasksPerJob); 1
    /// gives every task a Job of its own.
    #[arg(long, env = "TASKYARD_MAX_TASKS_PER_JOB", default_value_t = DEFAULT_MAX_TASKS_PER_JOB,
          value_parser = number_in::<u32>("50", 1, 200))]
    pub max_tasks_per_job: u32,
    /// Finished runner Jobs are deleted after this many seconds (Helm: jobTtlSeconds).
    #[arg(long, env = "TASKYARD_JOB_TTL_SECONDS", default_value_t = 3600,
          value_parser = or_default::<u64>("3600"))]
    pub job_ttl_seconds: u64,
    /// Deleting a task also deletes its task-specific store objects (Helm: cleanupOnDelete).
    #[arg(long, env = "TASKYARD_CLEANUP_ON_DELETE", default_value_t = false,
          action = clap::ArgAction::Set, value_parser = or_default::<bool>("false"))]
    pub cleanup_on_delete: bool,
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, env = "TASKYARD_METRICS_ADDRESS", default_value = "0.0.0.0:8080",
          value_parser = or_default::<std::net::SocketAddr>("0.0.0.0:8080"))]
    pub metrics_address: std::net::SocketAddr,
    /// Elect one leader among replicas with a Lease in the operator's namespace.
    #[arg(long, env = "TASKYARD_LEADER_ELECTION", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = or_default::<bool>("true"))]
    pub leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "TASKYARD_LEASE_NAME", default_value = "taskyard-operator",
          value_parser = or_default::<String>("taskyard-operator"))]
    pub lease_name: String,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "TASKYARD_LOG_JSON", default_value_t = false,
          action = clap::ArgAction::Set, value_parser = or_default::<bool>("false"))]
    pub log_json: bool,
    /// Check the settings, print them as JSON and exit (0 when valid, 2 when not).
    #[arg(long)]
    #[serde(skip)]
    pub check_settings: bool,
    /// Connect to the object store as the operator would, list the bucket once, and exit (0
    /// when the store answered, 1 when not): checks the endpoint, bucket and credentials
    /// without a Kubernetes cluster.
    #[arg(long)]
    #[serde(skip)]
    pub check_store: bool,
}

impl Settings {
    /// How the operator reaches the bucket. No keys of its own: with a credentials Secret the
    /// chart puts its keys in the environment, and otherwise AWS's default chain finds them
    /// (a web-identity token file, an instance role).
    pub fn s3_settings(&self) -> S3Settings {
        S3Settings {
            endpoint: (!self.store_endpoint.is_empty()).then(|| self.store_endpoint.clone()),
            region: self.store_region.clone(),
            bucket: self.store_bucket.clone(),
            force_path_style: self.store_force_path_style,
            credentials: None,
            stall_timeout: std::time::Duration::from_secs(self.store_stall_timeout_seconds),
        }
    }

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
        if !self.store_web_identity_role_arn.is_empty() && !self.store_credentials_secret.is_empty() {
            return Err(format!(
                "both a credentials Secret ({:?}) and a web-identity role ({:?}) are set: keep one \
                 (Helm: store.credentialsSecret or store.webIdentity.roleArn)",
                self.store_credentials_secret, self.store_web_identity_role_arn
            ));
        }
        if !self.store_web_identity_role_arn.is_empty() && !self.store_web_identity_role_arn.starts_with("arn:") {
            return Err(format!(
                "web-identity role {:?} is not an ARN: use e.g. arn:aws:iam::123456789012:role/taskyard \
                 (Helm: store.webIdentity.roleArn)",
                self.store_web_identity_role_arn
            ));
        }
        if !self.store_sts_endpoint.is_empty() && url::Url::parse(&self.store_sts_endpoint).is_err() {
            return Err(format!(
                "STS endpoint {:?} is not a URL: use e.g. https://sts.eu-west-1.amazonaws.com \
                 (Helm: store.webIdentity.stsEndpoint)",
                self.store_sts_endpoint
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUIRED: [&str; 4] = ["--store-bucket", "b", "--runner-image", "runner:1"];

    fn parse(extra: &[&str]) -> Settings {
        let args = ["taskyard-operator"].iter().chain(&REQUIRED).chain(extra);
        Settings::try_parse_from(args).unwrap_or_else(|e| panic!("{extra:?}: {e}"))
    }

    /// Every flag that has an environment variable (the chart's way in), as `--flag`.
    fn flags_with_env() -> Vec<String> {
        use clap::CommandFactory;
        Settings::command()
            .get_arguments()
            .filter(|a| a.get_env().is_some())
            .map(|a| format!("--{}", a.get_long().expect("every setting has a long flag")))
            .collect()
    }

    #[test]
    fn every_setting_given_empty_takes_its_default() {
        let defaults = serde_json::to_value(parse(&[])).unwrap();
        let flags = flags_with_env();
        assert!(flags.len() >= 20, "{flags:?}");
        for flag in flags.iter().filter(|f| !REQUIRED.contains(&f.as_str())) {
            let parsed = serde_json::to_value(parse(&[flag, ""])).unwrap();
            assert_eq!(parsed, defaults, "{flag} \"\" did not give the defaults");
        }
        assert_eq!(defaults["allowedNetworks"], serde_json::json!([]));
        assert_eq!(defaults["storeRegion"], "us-east-1");
        assert_eq!(defaults["runnerMemoryLimit"], "512Mi");
        assert_eq!(defaults["maxRunningJobs"], 10);
    }

    #[test]
    fn empty_required_settings_fail_validation_with_the_fix() {
        let none = Settings::try_parse_from(["taskyard-operator"]).unwrap();
        let message = none.validate().unwrap_err();
        assert!(
            message.contains("TASKYARD_STORE_BUCKET") && message.contains("store.bucket"),
            "{message}"
        );
        let no_image = Settings::try_parse_from(["taskyard-operator", "--store-bucket", "b"]).unwrap();
        assert!(no_image.validate().unwrap_err().contains("runner.image"));
        assert_eq!(parse(&[]).validate(), Ok(()));
    }

    #[test]
    fn bad_values_are_refused_with_what_to_use() {
        for (flag, value, want) in [
            ("--allowed-networks", "10.0.0.0/8,intranet", "CIDR"),
            ("--runner-memory-limit", "512MB", "resource quantity"),
            ("--max-running-jobs", "0", "from 1 to 10000"),
            ("--store-stall-timeout-seconds", "0", "from 1 to 3600"),
            ("--image-pull-policy", "Sometimes", "Always, IfNotPresent, Never"),
            ("--cleanup-on-delete", "yes", "\"yes\""),
        ] {
            let pair = [flag, value];
            let args = ["taskyard-operator"].iter().chain(&REQUIRED).chain(&pair);
            let err = Settings::try_parse_from(args).unwrap_err().to_string();
            assert!(err.contains(want), "{flag} {value}: {err}");
        }
        assert_eq!(
            parse(&["--allowed-networks", "10.0.0.0/8, fd00::/8"])
                .allowed_networks
                .0
                .len(),
            2
        );
    }

    #[test]
    fn web_identity_settings_that_cannot_work_are_refused_with_the_fix() {
        let role = ["--store-web-identity-role-arn", "arn:aws:iam::1:role/r"];
        let both = parse(&[&role[..], &["--store-credentials-secret", "creds"]].concat());
        assert!(
            both.validate().unwrap_err().contains("keep one"),
            "{:?}",
            both.validate()
        );
        let not_arn = parse(&["--store-web-identity-role-arn", "taskyard-role"]);
        assert!(not_arn.validate().unwrap_err().contains("not an ARN"));
        let bad_sts = parse(&[&role[..], &["--store-sts-endpoint", "sts.local"]].concat());
        assert!(
            bad_sts
                .validate()
                .unwrap_err()
                .contains("store.webIdentity.stsEndpoint")
        );
        let good = parse(&role);
        assert_eq!(good.validate(), Ok(()));
        assert_eq!(good.store_web_identity_audience, "sts.amazonaws.com");
    }
}

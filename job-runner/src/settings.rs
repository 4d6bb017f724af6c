//! The runner's settings: safety limits and the network allow-list. Flags and environment
//! variables, with the defaults of API.md.

use std::time::Duration;

use taskyard_common::keys::ImageScope;
use taskyard_common::netpolicy::NetworkPolicy;
use taskyard_common::setting::{NetworkList, at_least, number_in, one_of, or_default};

/// Flags shared by `run` and `exec`. An empty value means the default (the operator passes
/// its settings as environment variables, and an unset one arrives empty).
#[derive(Clone, Debug, clap::Args)]
pub struct RunnerArgs {
    /// CIDRs the runner may fetch from although private or loopback (repeatable, or
    /// comma-separated).
    #[arg(long = "allow-network", env = "TASKYARD_ALLOWED_NETWORKS", action = clap::ArgAction::Append,
          value_parser = NetworkList::parse)]
    pub allow_networks: Vec<NetworkList>,
    /// Largest web page fetched, in bytes.
    #[arg(long, env = "TASKYARD_MAX_PAGE_BYTES", default_value_t = 10 << 20,
          value_parser = or_default::<u64>("10485760"))]
    pub max_page_bytes: u64,
    /// Largest image fetched, in bytes.
    #[arg(long, env = "TASKYARD_MAX_IMAGE_BYTES", default_value_t = 50 << 20,
          value_parser = or_default::<u64>("52428800"))]
    pub max_image_bytes: u64,
    /// Largest decoded image, in pixels.
    #[arg(long, env = "TASKYARD_MAX_IMAGE_PIXELS", default_value_t = 50_000_000,
          value_parser = or_default::<u64>("50000000"))]
    pub max_image_pixels: u64,
    /// Largest file hashed, in bytes.
    #[arg(long, env = "TASKYARD_MAX_HASH_BYTES", default_value_t = 10 << 30,
          value_parser = or_default::<u64>("10737418240"))]
    pub max_hash_bytes: u64,
    /// Images fetched at once by one ImageTask.
    #[arg(long, env = "TASKYARD_IMAGE_CONCURRENCY", default_value_t = 8,
          value_parser = number_in::<u32>("8", 1, 64))]
    pub image_concurrency: u32,
    /// Seconds to wait for a TCP/TLS connection.
    #[arg(long, env = "TASKYARD_CONNECT_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = or_default::<u64>("10"))]
    pub connect_timeout_seconds: u64,
    /// Seconds a download may go without receiving a byte before it fails.
    #[arg(long, env = "TASKYARD_READ_TIMEOUT_SECONDS", default_value_t = 60,
          value_parser = or_default::<u64>("60"))]
    pub read_timeout_seconds: u64,
    /// Seconds one download of a page or image may take, however slowly bytes arrive: the
    /// response headers, then the body, each within it (waiting for memory in between does
    /// not count). Files to hash are bounded by the task's timeoutSeconds instead.
    #[arg(long, env = "TASKYARD_DOWNLOAD_TIMEOUT_SECONDS", default_value_t = 120,
          value_parser = at_least("120", 1))]
    pub download_timeout_seconds: u64,
    /// Largest resized image written, in pixels.
    #[arg(long, env = "TASKYARD_MAX_OUTPUT_PIXELS", default_value_t = 50_000_000,
          value_parser = at_least("50000000", 1))]
    pub max_output_pixels: u64,
    /// Bytes of fetched images held in memory at once (downloads in flight and images
    /// waiting for or in processing); one image may take all of it, and then runs alone.
    #[arg(long, env = "TASKYARD_IMAGE_DOWNLOAD_BYTES", default_value_t = 64 << 20,
          value_parser = at_least("67108864", 1 << 20))]
    pub image_download_bytes: u64,
    /// Memory images being decoded, resized and encoded may use at once, in bytes. An image
    /// that needs more by itself fails with LimitExceeded.
    #[arg(long, env = "TASKYARD_IMAGE_WORK_BYTES", default_value_t = 160 << 20,
          value_parser = at_least("167772160", 1 << 20))]
    pub image_work_bytes: u64,
    /// Most HTML elements a page may build when parsed (unclosed tags multiply them).
    #[arg(long, env = "TASKYARD_MAX_HTML_ELEMENTS", default_value_t = 200_000,
          value_parser = at_least("200000", 1))]
    pub max_html_elements: u64,
    /// Where stored images are shared: `cluster` (every task, by source URL) or `namespace`
    /// (only tasks of the same namespace) (Helm: images.sharing).
    #[arg(long, env = "TASKYARD_IMAGE_SHARING", default_value = "cluster",
          value_parser = one_of("cluster", &["cluster", "namespace"]))]
    pub image_sharing: String,
    /// Tasks of a batch Job run at once (they share the memory budgets above).
    #[arg(long, env = "TASKYARD_BATCH_CONCURRENCY", default_value_t = 4,
          value_parser = number_in::<u32>("4", 1, 64))]
    pub batch_concurrency: u32,
}

impl Default for RunnerArgs {
    fn default() -> Self {
        Self {
            allow_networks: Vec::new(),
            max_page_bytes: 10 << 20,
            max_image_bytes: 50 << 20,
            max_image_pixels: 50_000_000,
            max_hash_bytes: 10 << 30,
            image_concurrency: 8,
            connect_timeout_seconds: 10,
            read_timeout_seconds: 60,
            download_timeout_seconds: 120,
            max_output_pixels: 50_000_000,
            image_download_bytes: 64 << 20,
            image_work_bytes: 160 << 20,
            max_html_elements: 200_000,
            image_sharing: "cluster".into(),
            batch_concurrency: 4,
        }
    }
}

impl RunnerArgs {
    pub fn network_policy(&self) -> NetworkPolicy {
        NetworkPolicy::new(NetworkList::flatten(&self.allow_networks))
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_seconds)
    }

    pub fn read_timeout(&self) -> Duration {
        Duration::from_secs(self.read_timeout_seconds)
    }

    /// The image scope of a task in `namespace`.
    pub fn image_scope<'a>(&self, namespace: &'a str) -> ImageScope<'a> {
        if self.image_sharing == "namespace" {
            ImageScope::Namespace(namespace)
        } else {
            ImageScope::Cluster
        }
    }

    pub fn download_timeout(&self) -> Duration {
        Duration::from_secs(self.download_timeout_seconds)
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        runner: RunnerArgs,
    }

    fn parse(args: &[&str]) -> RunnerArgs {
        Cli::try_parse_from(["job-runner"].iter().chain(args))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .runner
    }

    #[test]
    fn every_setting_given_empty_takes_its_default() {
        let defaults = format!("{:?}", RunnerArgs::default());
        assert_eq!(format!("{:?}", parse(&[])), defaults);
        let flags: Vec<String> = Cli::command()
            .get_arguments()
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect();
        assert!(flags.len() >= 8, "{flags:?}");
        for flag in &flags {
            let mut parsed = parse(&[flag, ""]);
            // An empty allow-list flag is an empty list, the same as no flag.
            if parsed.allow_networks == [NetworkList::default()] {
                parsed.allow_networks.clear();
            }
            assert_eq!(format!("{parsed:?}"), defaults, "{flag} \"\"");
        }
    }

    #[test]
    fn allowed_networks_come_repeated_or_comma_separated() {
        let args = parse(&["--allow-network", "10.0.0.0/8,127.0.0.1", "--allow-network", "fd00::/8"]);
        assert_eq!(NetworkList::flatten(&args.allow_networks).len(), 3);
        let err = Cli::try_parse_from(["job-runner", "--allow-network", "lan"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("CIDR"), "{err}");
    }
}

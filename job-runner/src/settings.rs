//! The runner's settings: safety limits and the network allow-list. Flags and environment
//! variables, with the defaults of API.md.

use std::time::Duration;

use ipnet::IpNet;
use taskyard_common::netpolicy::NetworkPolicy;

/// Flags shared by `run` and `exec`.
#[derive(Clone, Debug, clap::Args)]
pub struct RunnerArgs {
    /// A CIDR the runner may fetch from although it is private or loopback (repeatable).
    #[arg(long = "allow-network", env = "TASKYARD_ALLOWED_NETWORKS", value_delimiter = ',')]
    pub allow_networks: Vec<IpNet>,
    /// Largest web page fetched, in bytes.
    #[arg(long, env = "TASKYARD_MAX_PAGE_BYTES", default_value_t = 10 << 20)]
    pub max_page_bytes: u64,
    /// Largest image fetched, in bytes.
    #[arg(long, env = "TASKYARD_MAX_IMAGE_BYTES", default_value_t = 50 << 20)]
    pub max_image_bytes: u64,
    /// Largest decoded image, in pixels.
    #[arg(long, env = "TASKYARD_MAX_IMAGE_PIXELS", default_value_t = 50_000_000)]
    pub max_image_pixels: u64,
    /// Largest file hashed, in bytes.
    #[arg(long, env = "TASKYARD_MAX_HASH_BYTES", default_value_t = 10 << 30)]
    pub max_hash_bytes: u64,
    /// Images fetched at once by one ImageTask.
    #[arg(long, env = "TASKYARD_IMAGE_CONCURRENCY", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub image_concurrency: u32,
    /// Seconds to wait for a TCP/TLS connection.
    #[arg(long, env = "TASKYARD_CONNECT_TIMEOUT_SECONDS", default_value_t = 10)]
    pub connect_timeout_seconds: u64,
    /// Seconds a download may go without receiving a byte before it fails.
    #[arg(long, env = "TASKYARD_READ_TIMEOUT_SECONDS", default_value_t = 60)]
    pub read_timeout_seconds: u64,
    /// Seconds one download of a page or image may take, however slowly bytes arrive: the
    /// response headers, then the body, each within it (waiting for memory in between does
    /// not count). Files to hash are bounded by the task's timeoutSeconds instead.
    #[arg(long, env = "TASKYARD_DOWNLOAD_TIMEOUT_SECONDS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub download_timeout_seconds: u64,
    /// Largest resized image written, in pixels.
    #[arg(long, env = "TASKYARD_MAX_OUTPUT_PIXELS", default_value_t = 50_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_output_pixels: u64,
    /// Bytes of fetched images held in memory at once (downloads in flight and images
    /// waiting for or in processing); one image may take all of it, and then runs alone.
    #[arg(long, env = "TASKYARD_IMAGE_DOWNLOAD_BYTES", default_value_t = 64 << 20,
          value_parser = clap::value_parser!(u64).range(1 << 20..))]
    pub image_download_bytes: u64,
    /// Memory images being decoded, resized and encoded may use at once, in bytes. An image
    /// that needs more by itself fails with LimitExceeded.
    #[arg(long, env = "TASKYARD_IMAGE_WORK_BYTES", default_value_t = 160 << 20,
          value_parser = clap::value_parser!(u64).range(1 << 20..))]
    pub image_work_bytes: u64,
    /// Most HTML elements a page may build when parsed (unclosed tags multiply them).
    #[arg(long, env = "TASKYARD_MAX_HTML_ELEMENTS", default_value_t = 200_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_html_elements: u64,
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
        }
    }
}

impl RunnerArgs {
    pub fn network_policy(&self) -> NetworkPolicy {
        NetworkPolicy::new(self.allow_networks.clone())
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_seconds)
    }

    pub fn read_timeout(&self) -> Duration {
        Duration::from_secs(self.read_timeout_seconds)
    }

    pub fn download_timeout(&self) -> Duration {
        Duration::from_secs(self.download_timeout_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: RunnerArgs,
    }

    #[test]
    fn default_matches_the_flags_defaults() {
        let parsed = Cli::try_parse_from(["job-runner"]).unwrap().args;
        assert_eq!(format!("{parsed:?}"), format!("{:?}", RunnerArgs::default()));
    }
}

//! The gateway's command line.

use std::net::SocketAddr;
use std::path::PathBuf;

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
    pub fn limits(&self) -> Limits {
        Limits {
            max_upload_bytes: self.max_upload_bytes,
            max_image_bytes: self.runner.max_image_bytes,
        }
    }
}

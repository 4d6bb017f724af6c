//! The Taskyard runner: fetches a task's input, processes it into the object store and
//! writes a `result.json` the operator turns into status.
//!
//! `job-runner exec` runs the tasks of a runner Job (cluster mode); `job-runner run --store DIR
//! TASK.yaml` runs one task resource on this machine with a directory as the store, and
//! `job-runner log --store DIR` prints a day's HashTask results log from it.

pub mod allocator;
pub mod batch;
pub mod body;
pub mod bounds;
pub mod budget;
pub mod daylog;
pub mod digest;
pub mod error;
pub mod exec;
pub mod fetch;
pub mod html;
pub mod images;
pub mod local;
pub mod schema;
pub mod settings;
pub mod tasks;
pub mod text;

/// rustls needs one process-wide crypto provider; both our HTTP stacks use aws-lc-rs.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

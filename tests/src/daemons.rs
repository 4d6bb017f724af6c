//! The local cluster's daemons taken away and given back by the fault drills, through
//! `tests/cluster/daemon.sh` (by recorded PID, never by name). A stopped daemon is a guard
//! that starts it again when dropped, so a failing drill never leaves the cluster broken.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::cluster::repo_root;

/// A daemon a drill may stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Daemon {
    ApiServer,
    Kubelet,
    S3,
}

impl Daemon {
    fn name(self) -> &'static str {
        match self {
            Daemon::ApiServer => "kube-apiserver",
            Daemon::Kubelet => "kubelet",
            Daemon::S3 => "s3",
        }
    }

    /// Stops it (SIGTERM by PID); it starts again when the guard is dropped or `start`ed.
    pub fn stop(self) -> Stopped {
        script("stop", self).unwrap_or_else(|e| panic!("{e}"));
        Stopped {
            daemon: self,
            since: Instant::now(),
            started: false,
        }
    }

    /// Stops it, waits `down`, starts it and waits until it serves; returns the time from the
    /// stop to serving again.
    pub fn restart(self, down: Duration) -> Duration {
        let stopped = self.stop();
        std::thread::sleep(down);
        stopped.start()
    }
}

/// A stopped daemon.
pub struct Stopped {
    daemon: Daemon,
    since: Instant,
    started: bool,
}

impl Stopped {
    /// Starts it again and waits until it serves; returns how long it was away.
    pub fn start(mut self) -> Duration {
        self.started = true;
        script("start", self.daemon).unwrap_or_else(|e| panic!("{e}"));
        let away = self.since.elapsed();
        eprintln!("{} was away for {:.1} s", self.daemon.name(), away.as_secs_f64());
        away
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // No panic here: this may run while a failed drill unwinds.
        if !self.started
            && let Err(e) = script("start", self.daemon)
        {
            eprintln!("{e}; run tests/cluster/up.sh");
        }
    }
}

fn script(action: &str, daemon: Daemon) -> Result<(), String> {
    let out = Command::new(repo_root().join("tests/cluster/daemon.sh"))
        .args([action, daemon.name()])
        .output()
        .map_err(|e| format!("tests/cluster/daemon.sh cannot run: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "tests/cluster/daemon.sh {action} {} failed: {}",
            daemon.name(),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

//! The processes behind the local cluster's containers, for tests that freeze or kill one.

use std::process::Command;

use crate::cluster::ClusterEnv;

/// The host PID of a container's main process, from its Pod's `containerID`.
pub fn main_pid(env: &ClusterEnv, container_id: &str) -> u32 {
    let id = container_id.strip_prefix("containerd://").unwrap_or(container_id);
    let out = Command::new("ctr")
        .args(["-a", env.get("TASKYARD_CONTAINERD_SOCK"), "-n", "k8s.io", "tasks", "ls"])
        .output()
        .expect("ctr runs");
    assert!(
        out.status.success(),
        "ctr tasks ls: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tasks = String::from_utf8_lossy(&out.stdout);
    tasks
        .lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some(id)).then(|| fields.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("container {id} has no running task:\n{tasks}"))
}

/// A process stopped (SIGSTOP) until this is dropped (SIGCONT), so that a failing test never
/// leaves it frozen.
pub struct Frozen(u32);

impl Frozen {
    pub fn stop(pid: u32) -> Self {
        signal(pid, "STOP");
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

/// Kills a container's process at once (SIGKILL): no shutdown code runs.
pub fn kill(pid: u32) {
    signal(pid, "KILL");
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid} failed");
}

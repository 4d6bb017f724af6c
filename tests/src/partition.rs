//! A container cut off from the API server, and from nothing else (the store stays in
//! reach), by DROP rules in its own network namespace: the other Pods, and the host, keep
//! their paths. For the fault drills.

use std::process::Command;

use crate::cluster::ClusterEnv;

/// The rules that cut a Pod off: the `kubernetes` Service (what in-cluster clients dial,
/// before the host rewrites it) and the API server's own address.
fn rules(env: &ClusterEnv) -> Vec<Vec<String>> {
    let apiserver = env.host_ip().to_string();
    [("10.214.0.1", "443"), (apiserver.as_str(), "6443")]
        .iter()
        .map(|(ip, port)| {
            ["OUTPUT", "-d", ip, "-p", "tcp", "--dport", port, "-j", "DROP"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        })
        .collect()
}

/// The Pod whose process is `pid` cannot reach the API server until this is dropped. The
/// rules are in the Pod's network namespace, not the process's: they hold while its
/// container restarts.
pub struct Partitioned {
    netns: String,
    rules: Vec<Vec<String>>,
}

impl Partitioned {
    pub fn from_api_server(env: &ClusterEnv, pid: u32) -> Self {
        let out = Command::new("ip")
            .args(["netns", "identify", &pid.to_string()])
            .output()
            .expect("ip runs");
        let netns = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success() && !netns.is_empty(),
            "the Pod network namespace of process {pid}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rules = rules(env);
        for rule in &rules {
            iptables(&netns, "-I", rule).unwrap_or_else(|e| panic!("{e}"));
        }
        Partitioned { netns, rules }
    }
}

impl Drop for Partitioned {
    fn drop(&mut self) {
        // No panic: this may run while a failed drill unwinds. A Pod that is gone took its
        // namespace, and the rules, with it.
        for rule in &self.rules {
            if let Err(e) = iptables(&self.netns, "-D", rule) {
                eprintln!("healing the partition: {e}");
            }
        }
    }
}

fn iptables(netns: &str, op: &str, rule: &[String]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "iptables", op])
        .args(rule)
        .output()
        .map_err(|e| format!("ip netns exec cannot run: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "iptables {op} {} in network namespace {netns}: {}",
            rule.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

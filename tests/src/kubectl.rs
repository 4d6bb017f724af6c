//! kubectl against the local cluster, as a user would run it.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::ClusterEnv;

pub struct Kubectl {
    kubeconfig: String,
    /// A discovery cache of this test process: one left by an earlier cluster at the same
    /// address would name resources this one does not have yet.
    cache_dir: std::path::PathBuf,
}

impl Kubectl {
    pub fn new(env: &ClusterEnv) -> Self {
        Self {
            kubeconfig: env.get("KUBECONFIG").to_string(),
            cache_dir: std::env::temp_dir().join(format!("taskyard-kubectl-cache-{}", std::process::id())),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .args(args);
        cmd
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    pub fn try_run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.command(args).output().expect("kubectl is installed");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// Runs kubectl and returns stdout, failing the test with kubectl's message otherwise.
    pub fn run(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.try_run(args);
        assert!(ok, "kubectl {} failed: {stderr}", args.join(" "));
        stdout
    }

    /// `kubectl wait` with these arguments. A wait that ends unmet fails the test with
    /// kubectl's message and the cluster's state (see `cluster_report`).
    pub fn wait(&self, args: &[&str]) {
        let all: Vec<&str> = std::iter::once("wait").chain(args.iter().copied()).collect();
        let (ok, _, stderr) = self.try_run(&all);
        if !ok {
            panic!("kubectl {} failed: {stderr}\n{}", all.join(" "), self.cluster_report());
        }
    }

    /// `kubectl apply -f -` with the given YAML.
    pub fn apply(&self, yaml: &str) -> String {
        let mut child = self
            .command(&["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl is installed");
        child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl apply failed: {}\n{yaml}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into()
    }

    /// `kubectl get ... -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.run(&all)).expect("kubectl prints JSON")
    }

    /// Polls `check` every half second until it returns Some, or fails after `timeout`.
    pub fn eventually<T>(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check() {
                return v;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n{}",
                    self.cluster_report()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// What a failed wait leaves for whoever reads the test's output: the operator's
    /// Pods, Jobs and Lease, every task that has not finished, recent events of the
    /// operator's namespace, and the tail of each operator Pod's log (and of its previous
    /// container's). The Pods and their logs are gone once the next test binary reinstalls
    /// the chart.
    pub fn cluster_report(&self) -> String {
        let section = |title: &str, args: &[&str]| {
            let (_, out, err) = self.try_run(args);
            format!("## {title}\n{out}{err}")
        };
        let mut report = String::from("---- cluster at the time of the failure ----\n");
        report += &section(
            "operator namespace",
            &["get", "pods,jobs,leases", "-n", "taskyard-system", "-o", "wide"],
        );
        report += &self.unfinished_tasks();
        report += &section(
            "events of the operator's namespace",
            &["get", "events", "-n", "taskyard-system", "--sort-by=.lastTimestamp"],
        );
        let (_, names, _) = self.try_run(&[
            "get",
            "pods",
            "-n",
            "taskyard-system",
            "-l",
            "app.kubernetes.io/component=operator",
            "-o",
            "name",
        ]);
        for pod in names.lines() {
            report += &section(
                &format!("log of {pod}"),
                &["logs", "-n", "taskyard-system", pod, "--timestamps", "--tail=150"],
            );
            report += &section(
                &format!("previous log of {pod}"),
                &[
                    "logs",
                    "-n",
                    "taskyard-system",
                    pod,
                    "--timestamps",
                    "--tail=60",
                    "--previous",
                ],
            );
        }
        report
    }

    /// One line per task that has not finished, of every kind and namespace.
    fn unfinished_tasks(&self) -> String {
        let (ok, out, err) = self.try_run(&["get", "hashtasks,imagetasks,texttasks", "-A", "-o", "json"]);
        let tasks: serde_json::Value = match serde_json::from_str(&out) {
            Ok(tasks) if ok => tasks,
            _ => return format!("## tasks\n{err}"),
        };
        let items = tasks["items"].as_array().cloned().unwrap_or_default();
        let finished = |t: &serde_json::Value| matches!(t["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
        let mut lines = format!(
            "## tasks not finished ({} of {})\n",
            items.iter().filter(|t| !finished(t)).count(),
            items.len()
        );
        for t in items.iter().filter(|t| !finished(t)) {
            let (meta, status) = (&t["metadata"], &t["status"]);
            lines.push_str(&format!(
                "{} {}/{} generation {} observed {} phase {} queue {} job {} deleting {}\n",
                t["kind"],
                meta["namespace"],
                meta["name"],
                meta["generation"],
                status["observedGeneration"],
                status["phase"],
                status["queuePosition"],
                status["jobName"],
                meta["deletionTimestamp"]
            ));
        }
        lines
    }

    /// The operator's Pods that are not being deleted.
    pub fn operator_pods(&self) -> Vec<serde_json::Value> {
        let pods = self.get_json(&[
            "pods",
            "-n",
            "taskyard-system",
            "-l",
            "app.kubernetes.io/component=operator",
        ]);
        pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .cloned()
            .collect()
    }

    /// Waits until the operator Deployment has finished rolling out.
    pub fn operator_rolled_out(&self) {
        self.run(&[
            "rollout",
            "status",
            "deploy/taskyard-operator",
            "-n",
            "taskyard-system",
            "--timeout=180s",
        ]);
    }

    /// The replica holding the operator's leader Lease, if one does.
    pub fn lease_holder(&self) -> Option<String> {
        let (ok, out, _) = self.try_run(&[
            "get",
            "lease",
            "taskyard-operator",
            "-n",
            "taskyard-system",
            "-o",
            "json",
        ]);
        let lease: serde_json::Value = serde_json::from_str(&out).ok().filter(|_| ok)?;
        lease["spec"]["holderIdentity"]
            .as_str()
            .filter(|h| !h.is_empty())
            .map(str::to_string)
    }

    /// Applies the committed CRDs as the README's upgrade path does (server-side), and waits
    /// until the API server serves them.
    pub fn apply_crds(&self) {
        let crds = crate::cluster::repo_root().join("crds/taskyard.yaml");
        self.run(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            crds.to_str().unwrap(),
        ]);
        self.run(&[
            "wait",
            "--for=condition=established",
            "--timeout=60s",
            "crd/hashtasks.taskyard.dev",
            "crd/imagetasks.taskyard.dev",
            "crd/texttasks.taskyard.dev",
        ]);
    }

    /// Creates a namespace (idempotent).
    pub fn namespace(&self, name: &str) {
        self.apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n"
        ));
    }
}

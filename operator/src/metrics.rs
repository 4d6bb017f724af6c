//! Prometheus metrics in the text exposition format, kept by hand: a few counters and
//! histograms with labels need no metrics library.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

const RECONCILE_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
const JOB_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, buckets: &[f64], v: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; buckets.len()];
        }
        for (i, le) in buckets.iter().enumerate() {
            if v <= *le {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }
}

#[derive(Default)]
struct Families {
    /// The last phase seen of every task, by uid: (kind, phase).
    phases: BTreeMap<String, (String, String)>,
    queue_length: u64,
    reconciles: BTreeMap<Labels, u64>,
    errors: BTreeMap<Labels, u64>,
    finished: BTreeMap<Labels, u64>,
    reconcile_seconds: BTreeMap<Labels, Histogram>,
    job_seconds: BTreeMap<Labels, Histogram>,
}

/// The operator's metrics.
#[derive(Default)]
pub struct Metrics {
    families: Mutex<Families>,
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

impl Metrics {
    pub fn reconciled(&self, kind: &str, took: Duration) {
        let mut f = self.families.lock().unwrap();
        *f.reconciles.entry(labels(&[("kind", kind)])).or_default() += 1;
        f.reconcile_seconds
            .entry(labels(&[("kind", kind)]))
            .or_default()
            .observe(RECONCILE_BUCKETS, took.as_secs_f64());
    }

    pub fn reconcile_failed(&self, kind: &str, reason: &str) {
        *self
            .families
            .lock()
            .unwrap()
            .errors
            .entry(labels(&[("kind", kind), ("reason", reason)]))
            .or_default() += 1;
    }

    /// A task generation finished; `job_seconds` is its runner Job's run time, if it had one.
    pub fn task_finished(&self, kind: &str, phase: &str, reason: &str, job_seconds: Option<f64>) {
        let mut f = self.families.lock().unwrap();
        *f.finished
            .entry(labels(&[("kind", kind), ("phase", phase), ("reason", reason)]))
            .or_default() += 1;
        if let Some(s) = job_seconds {
            f.job_seconds
                .entry(labels(&[("kind", kind)]))
                .or_default()
                .observe(JOB_BUCKETS, s);
        }
    }

    /// Records a task's current phase (for the tasks-by-phase gauge).
    pub fn task_phase(&self, uid: &str, kind: &str, phase: &str) {
        self.families
            .lock()
            .unwrap()
            .phases
            .insert(uid.to_string(), (kind.to_string(), phase.to_string()));
    }

    /// Forgets a deleted task.
    pub fn task_gone(&self, uid: &str) {
        self.families.lock().unwrap().phases.remove(uid);
    }

    pub fn set_queue_length(&self, n: usize) {
        self.families.lock().unwrap().queue_length = n as u64;
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let f = self.families.lock().unwrap();
        let mut out = String::new();
        let mut by_phase: BTreeMap<Labels, u64> = BTreeMap::new();
        for (kind, phase) in f.phases.values() {
            *by_phase.entry(labels(&[("kind", kind), ("phase", phase)])).or_default() += 1;
        }
        gauge(&mut out, "taskyard_tasks", "Tasks by kind and phase.", &by_phase);
        gauge(
            &mut out,
            "taskyard_queue_length",
            "Tasks waiting for a runner slot (maxRunningJobs).",
            &BTreeMap::from([(Labels::new(), f.queue_length)]),
        );
        counter(
            &mut out,
            "taskyard_reconciles_total",
            "Reconciles by task kind.",
            &f.reconciles,
        );
        counter(
            &mut out,
            "taskyard_reconcile_errors_total",
            "Failed reconciles by task kind and reason.",
            &f.errors,
        );
        counter(
            &mut out,
            "taskyard_tasks_finished_total",
            "Task generations finished, by kind, phase and reason.",
            &f.finished,
        );
        histogram(
            &mut out,
            "taskyard_reconcile_duration_seconds",
            "Reconcile duration.",
            RECONCILE_BUCKETS,
            &f.reconcile_seconds,
        );
        histogram(
            &mut out,
            "taskyard_runner_job_duration_seconds",
            "Runner Job run time.",
            JOB_BUCKETS,
            &f.job_seconds,
        );
        out
    }
}

fn label_text(labels: &Labels, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('"', "\\\"")))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn gauge(out: &mut String, name: &str, help: &str, values: &BTreeMap<Labels, u64>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (l, v) in values {
        let _ = writeln!(out, "{name}{} {v}", label_text(l, None));
    }
}

fn counter(out: &mut String, name: &str, help: &str, values: &BTreeMap<Labels, u64>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (l, v) in values {
        let _ = writeln!(out, "{name}{} {v}", label_text(l, None));
    }
}

fn histogram(out: &mut String, name: &str, help: &str, buckets: &[f64], values: &BTreeMap<Labels, Histogram>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (l, h) in values {
        for (i, le) in buckets.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{} {}",
                label_text(l, Some(("le", le.to_string()))),
                h.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{} {}",
            label_text(l, Some(("le", "+Inf".into()))),
            h.count
        );
        let _ = writeln!(out, "{name}_sum{} {}", label_text(l, None), h.sum);
        let _ = writeln!(out, "{name}_count{} {}", label_text(l, None), h.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.reconciled("HashTask", Duration::from_millis(20));
        m.reconciled("HashTask", Duration::from_millis(700));
        m.reconcile_failed("HashTask", "StoreError");
        m.task_finished("HashTask", "Succeeded", "Completed", Some(3.0));
        m.task_phase("u1", "HashTask", "Succeeded");
        m.task_phase("u2", "HashTask", "Pending");
        m.task_phase("u3", "HashTask", "Succeeded");
        m.task_phase("u2", "HashTask", "Running");
        m.task_gone("u3");
        m.set_queue_length(4);
        let text = m.render();
        assert!(
            text.contains("taskyard_tasks{kind=\"HashTask\",phase=\"Succeeded\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("taskyard_tasks{kind=\"HashTask\",phase=\"Running\"} 1"),
            "{text}"
        );
        assert!(!text.contains("phase=\"Pending\"} "), "{text}");
        assert!(text.contains("taskyard_queue_length 4"), "{text}");
        assert!(
            text.contains("taskyard_reconciles_total{kind=\"HashTask\"} 2"),
            "{text}"
        );
        assert!(text.contains("taskyard_reconcile_errors_total{kind=\"HashTask\",reason=\"StoreError\"} 1"));
        assert!(
            text.contains(
                "taskyard_tasks_finished_total{kind=\"HashTask\",phase=\"Succeeded\",reason=\"Completed\"} 1"
            )
        );
        assert!(text.contains("taskyard_reconcile_duration_seconds_bucket{kind=\"HashTask\",le=\"0.025\"} 1"));
        assert!(text.contains("taskyard_reconcile_duration_seconds_bucket{kind=\"HashTask\",le=\"+Inf\"} 2"));
        assert!(text.contains("taskyard_runner_job_duration_seconds_bucket{kind=\"HashTask\",le=\"5\"} 1"));
        assert!(text.contains("# TYPE taskyard_runner_job_duration_seconds histogram"));
    }
}

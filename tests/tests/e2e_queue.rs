//! End to end on the local cluster: with maxRunningJobs 3, fifteen tasks at once never have
//! more than three unfinished runner Jobs; the others wait with a queue position that goes
//! down, and all of them succeed. Namespaces take turns, and Jobs a tenant labels as
//! Taskyard's do not count. These tests measure the line of Jobs, so every task has a Job of
//! its own here (`maxTasksPerJob: 1`); batches take their tasks in the same fair order
//! (`queue::tests::a_batch_takes_the_next_validated_tasks_of_its_kind_in_fair_order`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use taskyard_tests::e2e::{file, hash_task, namespace, setup_with};

const MAX_RUNNING: usize = 3;
const TASKS: usize = 15;

/// The tests measure the queue; one at a time.
static QUEUE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn unfinished(job: &Value) -> bool {
    !job["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["status"] == "True" && (c["type"] == "Complete" || c["type"] == "Failed"))
    })
}

#[test]
fn fifteen_tasks_with_three_slots_queue_first_come_first_served() {
    let _queue = QUEUE.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup_with(json!({"maxRunningJobs": MAX_RUNNING, "maxTasksPerJob": 1}));
    let ns = namespace(s, "queue");
    let mut yaml = String::new();
    for i in 0..TASKS {
        file(&format!("queue-{i}.bin"), 20_000, 300 + i as u64);
        let url = s.server.url(&format!("/slow/queue-{i}.bin?ms=2500"));
        yaml.push_str(&hash_task(&ns, &format!("q{i:02}"), &url));
        yaml.push_str("---\n");
    }

    // A watcher samples the cluster's runner Jobs and the tasks' queue positions.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let ns = ns.clone();
        let env = s.env.clone();
        std::thread::spawn(move || {
            let k = taskyard_tests::kubectl::Kubectl::new(&env);
            let started = Instant::now();
            let mut most = 0;
            let mut positions: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(300) {
                // The operator's runner Jobs (a tenant's look-alikes elsewhere do not count).
                let jobs = k.get_json(&[
                    "jobs",
                    "-n",
                    "taskyard-system",
                    "-l",
                    "app.kubernetes.io/managed-by=taskyard",
                ]);
                most = most.max(
                    jobs["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|j| unfinished(j))
                        .count(),
                );
                let tasks = k.get_json(&["hashtasks", "-n", &ns]);
                for t in tasks["items"].as_array().unwrap() {
                    if let Some(p) = t["status"]["queuePosition"].as_u64() {
                        let seen = positions
                            .entry(t["metadata"]["name"].as_str().unwrap().to_string())
                            .or_default();
                        if seen.last() != Some(&p) {
                            seen.push(p);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            (most, positions)
        })
    };
    s.kubectl.apply(&yaml);
    let wide = s
        .kubectl
        .eventually("a queued task in the wide listing", Duration::from_secs(60), || {
            let table = s.kubectl.run(&["get", "hashtasks", "-n", &ns, "-o", "wide"]);
            table
                .lines()
                .skip(1)
                .any(|l| l.split_whitespace().nth(1) == Some("Pending"))
                .then_some(table)
        });
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "PHASE", "MD5", "SIZE", "QUEUE", "AGE"], "{wide}");
    s.kubectl.wait(&[
        "-n",
        &ns,
        "--for=condition=Succeeded",
        "hashtasks",
        "--all",
        "--timeout=300s",
    ]);
    stop.store(true, Ordering::Relaxed);
    let (most, positions) = sampler.join().unwrap();

    assert!(
        most <= MAX_RUNNING,
        "the watcher saw {most} unfinished runner Jobs at once"
    );
    assert!(most >= 1, "the watcher saw no runner Job at all");
    let tasks = s.kubectl.get_json(&["hashtasks", "-n", &ns]);
    for t in tasks["items"].as_array().unwrap() {
        assert_eq!(t["status"]["phase"], "Succeeded");
        assert!(
            t["status"]["queuePosition"].is_null(),
            "a finished task has no queue position"
        );
    }
    // The last tasks waited, and their positions went down while they did.
    let waited: Vec<_> = positions.iter().filter(|(_, seen)| seen.len() >= 2).collect();
    assert!(
        !waited.is_empty(),
        "no task was seen moving up the queue: {positions:?}"
    );
    for (name, seen) in &positions {
        assert!(
            seen.windows(2).all(|w| w[1] < w[0]),
            "{name}'s position went up: {seen:?}"
        );
    }
    let longest = positions.values().map(|seen| seen[0]).max().unwrap();
    assert!(
        longest as usize >= TASKS - MAX_RUNNING - 2,
        "the deepest queue position seen was {longest}"
    );
}

/// A Job in a tenant's namespace, labelled as Taskyard's, whose Pod never starts.
fn foreign_job(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}, namespace: {ns}, labels: {{app.kubernetes.io/managed-by: taskyard}}}}\nspec:\n  template:\n    metadata: {{labels: {{app.kubernetes.io/managed-by: taskyard}}}}\n    spec:\n      restartPolicy: Never\n      containers: [{{name: c, image: taskyard.local/never-pulled:0, imagePullPolicy: Never}}]\n---\n"
    )
}

#[test]
fn a_burst_in_one_namespace_does_not_starve_another_and_tenants_jobs_do_not_count() {
    let _queue = QUEUE.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup_with(json!({"maxRunningJobs": MAX_RUNNING, "maxTasksPerJob": 1}));
    // As many never-finishing "taskyard" Jobs as there are slots, in a tenant's namespace.
    let squatter = namespace(s, "squatter");
    let jobs: String = (0..MAX_RUNNING)
        .map(|i| foreign_job(&squatter, &format!("fake-{i}")))
        .collect();
    s.kubectl.apply(&jobs);

    let busy = namespace(s, "busy");
    let quiet = namespace(s, "quiet");
    let mut burst = String::new();
    for i in 0..12 {
        file(&format!("burst-{i}.bin"), 10_000, 700 + i as u64);
        let url = s.server.url(&format!("/slow/burst-{i}.bin?ms=2500"));
        burst.push_str(&hash_task(&busy, &format!("b{i:02}"), &url));
        burst.push_str("---\n");
    }
    s.kubectl.apply(&burst);
    // Jobs started for the busy namespace's tasks, ever (names, as Jobs go after their TTL).
    let mut started_busy = std::collections::BTreeSet::new();
    let look = |started: &mut std::collections::BTreeSet<String>| {
        let jobs = s.kubectl.get_json(&[
            "jobs",
            "-n",
            "taskyard-system",
            "-l",
            "app.kubernetes.io/managed-by=taskyard",
        ]);
        let mut quiet_started = false;
        for job in jobs["items"].as_array().unwrap() {
            let job_ns = job["metadata"]["labels"]["taskyard.dev/namespace"]
                .as_str()
                .unwrap_or("");
            if job_ns == busy {
                started.insert(job["metadata"]["name"].as_str().unwrap().to_string());
            }
            quiet_started |= job_ns == quiet;
        }
        quiet_started
    };
    // The squatter's Jobs do not hold the slots: the burst starts.
    s.kubectl
        .eventually("the burst to get its Jobs", Duration::from_secs(60), || {
            look(&mut started_busy);
            (started_busy.len() >= MAX_RUNNING).then_some(())
        });
    file("quiet.bin", 10_000, 799);
    s.kubectl
        .apply(&hash_task(&quiet, "lone", &s.server.url("/files/quiet.bin")));
    look(&mut started_busy);
    let before = started_busy.len();
    s.kubectl.eventually(
        "the quiet namespace's task to get a Job",
        Duration::from_secs(120),
        || look(&mut started_busy).then_some(()),
    );
    assert!(
        started_busy.len() <= before + 2,
        "the busy namespace started {} more Jobs before the quiet one got its turn",
        started_busy.len() - before
    );
    s.kubectl.wait(&[
        "-n",
        &busy,
        "--for=condition=Succeeded",
        "hashtasks",
        "--all",
        "--timeout=300s",
    ]);
    s.kubectl.wait(&[
        "-n",
        &quiet,
        "--for=condition=Succeeded",
        "hashtask/lone",
        "--timeout=60s",
    ]);
    s.kubectl
        .run(&["delete", "jobs", "--all", "-n", &squatter, "--wait=true"]);
}

//! End to end on the local cluster: the operator installed with its Helm chart, HashTasks
//! applied and read with kubectl, as a user would.

use taskyard_tests::e2e::{
    OPERATOR_NAMESPACE, WAIT, file, hash_task, jobs_of, namespace, results_log, runner_pods, setup, wait_failed,
    wait_succeeded,
};
use taskyard_tests::files::coreutils_digest;

/// Keeps apart the tests that look at their task's own Job and Pods (labelled with its uid)
/// and the burst test: a task that arrives while the burst's tasks wait may ride in one of
/// their batch Jobs, which carry no one task's uid (two CI runs met this). The restart test
/// also must not restart the operator while the deletion test times it.
static OWN_JOB: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_hash_task_applied_with_kubectl_succeeds_with_the_right_md5() {
    let _own_job = OWN_JOB.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup();
    let ns = &namespace(s, "basic");
    let path = file("basic.bin", 1_234_567, 1);
    s.kubectl
        .apply(&hash_task(ns, "report", &s.server.url("/files/basic.bin")));
    wait_succeeded(s, ns, &["hashtask/report"]);

    let task = s.kubectl.get_json(&["hashtask", "report", "-n", ns]);
    let status = &task["status"];
    assert_eq!(status["phase"], "Succeeded");
    assert_eq!(
        status["digests"]["md5"].as_str().unwrap(),
        coreutils_digest("md5", &path)
    );
    assert_eq!(status["size"].as_u64(), Some(1_234_567));
    assert_eq!(status["observedGeneration"].as_i64(), Some(1));
    let condition = &status["conditions"][0];
    assert_eq!(
        (condition["type"].as_str(), condition["reason"].as_str()),
        (Some("Succeeded"), Some("Completed"))
    );

    // The printer columns a user sees.
    let table = s.kubectl.run(&["get", "hashtasks", "-n", ns]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "PHASE", "MD5", "SIZE", "AGE"]);
    assert!(table.contains(&coreutils_digest("md5", &path)), "{table}");

    // One locked-down Job in the operator's namespace, and the events of its life.
    let uid = task["metadata"]["uid"].as_str().unwrap();
    let jobs = jobs_of(s, uid);
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job["metadata"]["name"], status["jobName"]);
    assert_eq!(job["metadata"]["namespace"], OPERATOR_NAMESPACE);
    assert!(job["metadata"]["ownerReferences"].is_null());
    assert_eq!(job["metadata"]["labels"]["app.kubernetes.io/managed-by"], "taskyard");
    assert_eq!(job["metadata"]["labels"]["taskyard.dev/namespace"], ns.as_str());
    assert_eq!(job["metadata"]["annotations"]["taskyard.dev/task"], "report");
    // Nothing but Events is created in the tenant's namespace: no Job, no Pod, no Secret.
    let created = s.kubectl.get_json(&["jobs,pods,secrets", "-n", ns]);
    let names: Vec<&str> = created["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] != "kubernetes.io/service-account-token")
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert!(names.is_empty(), "created in the task's namespace: {names:?}");
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"], true);
    // The runner Pod as it really ran: no API credentials, unprivileged, read-only.
    let job_name = job["metadata"]["name"].as_str().unwrap();
    let pods = s
        .kubectl
        .get_json(&["pods", "-n", OPERATOR_NAMESPACE, "-l", &format!("job-name={job_name}")]);
    let live = &pods["items"][0]["spec"];
    assert_eq!(live["automountServiceAccountToken"], false);
    let volumes = live["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .all(|v| v["projected"].is_null() && v["secret"].is_null()),
        "no token volume: {volumes:?}"
    );
    assert!(
        live["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["mountPath"] == "/tmp")
    );
    assert_eq!(live["securityContext"]["runAsNonRoot"], true);
    assert_eq!(live["securityContext"]["runAsUser"], 65532);
    assert_eq!(live["containers"][0]["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        live["containers"][0]["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    events_of(s, ns, "report", &["JobCreated", "Succeeded"]);
}

/// The events about task `name`, once they include every one of `words` (the operator
/// creates them in the background, just after the status they tell of); fails after 10 s.
fn events_of(s: &taskyard_tests::e2e::Setup, ns: &str, name: &str, words: &[&str]) {
    let selector = format!("involvedObject.name={name}");
    let what = format!("the events of {name} to say {}", words.join(", "));
    s.kubectl.eventually(&what, std::time::Duration::from_secs(10), || {
        let events = s
            .kubectl
            .run(&["get", "events", "-n", ns, "--field-selector", &selector]);
        words.iter().all(|w| events.contains(w)).then_some(())
    })
}

#[test]
fn twenty_tasks_at_once_all_succeed_with_twenty_log_lines() {
    let _burst = OWN_JOB.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup();
    let ns = &namespace(s, "burst");
    let mut yaml = String::new();
    let mut paths = Vec::new();
    for i in 0..20 {
        let name = format!("burst-{i}.bin");
        paths.push(file(&name, 1000 + i * 4099, 100 + i));
        yaml.push_str(&hash_task(
            ns,
            &format!("burst-{i}"),
            &s.server.url(&format!("/files/{name}")),
        ));
        yaml.push_str("---\n");
    }
    s.kubectl.apply(&yaml);
    wait_succeeded(s, ns, &["hashtasks", "--all"]);

    let tasks = s.kubectl.get_json(&["hashtasks", "-n", ns]);
    let items = tasks["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    let mut dates = std::collections::BTreeSet::new();
    for task in items {
        let i: usize = task["metadata"]["name"]
            .as_str()
            .unwrap()
            .trim_start_matches("burst-")
            .parse()
            .unwrap();
        assert_eq!(
            task["status"]["digests"]["md5"].as_str().unwrap(),
            coreutils_digest("md5", &paths[i])
        );
        dates.insert(task["status"]["completionTime"].as_str().unwrap()[..10].to_string());
    }
    let log: String = dates.iter().map(|d| results_log(s, d)).collect();
    let ours: Vec<&str> = log
        .lines()
        .filter(|l| l.split(' ').nth(1).is_some_and(|n| n.starts_with(&format!("{ns}/"))))
        .collect();
    assert_eq!(ours.len(), 20, "{log}");
    for task in items {
        let uid = task["metadata"]["uid"].as_str().unwrap();
        let line = ours
            .iter()
            .find(|l| l.split(' ').nth(2) == Some(uid))
            .expect("a line per task");
        assert!(
            line.contains(" 1 Succeeded ") && line.contains(task["status"]["digests"]["md5"].as_str().unwrap()),
            "{line}"
        );
    }
}

#[test]
fn an_invalid_spec_fails_with_invalid_spec_and_creates_no_job() {
    let s = setup();
    let ns = &namespace(s, "invalid");
    s.kubectl
        .apply(&hash_task(ns, "loopback", "http://127.0.0.1:8080/file"));
    s.kubectl.apply(&format!(
        "apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {{name: missing, namespace: {ns}}}\nspec:\n  source: {{object: does-not-exist.bin}}\n"
    ));
    // Another namespace's results, named from this one: outside its upload area.
    s.kubectl.apply(&format!(
        "apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {{name: escape, namespace: {ns}}}\nspec:\n  source: {{object: ../../tasks/other/hashtask/t/u/1/result.json}}\n"
    ));
    let area = format!("uploads/{ns}/");
    for (name, needle) in [
        ("loopback", "loopback"),
        ("missing", "does not exist"),
        ("escape", area.as_str()),
    ] {
        wait_failed(s, ns, &format!("hashtask/{name}"));
        let task = s.kubectl.get_json(&["hashtask", name, "-n", ns]);
        let condition = &task["status"]["conditions"][0];
        assert_eq!(task["status"]["phase"], "Failed");
        assert_eq!(condition["reason"], "InvalidSpec");
        assert!(condition["message"].as_str().unwrap().contains(needle), "{condition}");
        assert!(jobs_of(s, task["metadata"]["uid"].as_str().unwrap()).is_empty());
        events_of(s, ns, name, &["Warning", "InvalidSpec"]);
    }
    // The API server's schema rejects what it can, before the operator sees it.
    let (ok, _, stderr) = {
        let yaml = hash_task(ns, "ftp", "ftp://example.com/file");
        let path = s.files.join("ftp.yaml");
        std::fs::write(&path, yaml).unwrap();
        s.kubectl.try_run(&["apply", "-f", path.to_str().unwrap()])
    };
    assert!(!ok && stderr.contains("spec.source.url"), "{stderr}");
}

#[test]
fn deleting_a_task_garbage_collects_its_job_and_pods() {
    let _own_job = OWN_JOB.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup();
    let ns = &namespace(s, "delete");
    file("slow-delete.bin", 200_000, 5);
    s.kubectl.apply(&hash_task(
        ns,
        "doomed",
        &s.server.url("/slow/slow-delete.bin?ms=60000"),
    ));
    let uid = s.kubectl.eventually("the task's uid", WAIT, || {
        let task = s.kubectl.get_json(&["hashtask", "doomed", "-n", ns]);
        task["metadata"]["uid"].as_str().map(str::to_string)
    });
    let runner_pods = || runner_pods(s, &uid);
    // Running: a kubelet finishes creating a container before it stops it.
    s.kubectl.eventually("the runner Pod to run", WAIT, || {
        runner_pods()
            .iter()
            .any(|p| p["status"]["phase"] == "Running")
            .then_some(())
    });
    s.kubectl
        .run(&["delete", "hashtask", "doomed", "-n", ns, "--wait=true"]);
    // The operator deletes them itself (no owner reference crosses namespaces), promptly:
    // within 10 s the Job is gone and its Pods are being deleted. (Stopping the container and
    // removing the Pod's object is the kubelet's, seconds later, slower on a busy node.)
    let deleting = |pod: &serde_json::Value| pod["metadata"]["deletionTimestamp"].is_string();
    s.kubectl.eventually(
        "the Job to be deleted and its Pods to be deleting within 10 s",
        std::time::Duration::from_secs(10),
        || (jobs_of(s, &uid).is_empty() && runner_pods().iter().all(deleting)).then_some(()),
    );
    s.kubectl
        .eventually("the Pods to be gone", WAIT, || runner_pods().is_empty().then_some(()));
}

#[test]
fn an_operator_restarted_mid_run_keeps_the_same_job_and_the_task_completes() {
    let _own_job = OWN_JOB.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup();
    let ns = &namespace(s, "restart");
    let path = file("slow-restart.bin", 300_000, 9);
    s.kubectl.apply(&hash_task(
        ns,
        "survivor",
        &s.server.url("/slow/slow-restart.bin?ms=12000"),
    ));
    let uid = s.kubectl.eventually("the runner Job", WAIT, || {
        let task = s.kubectl.get_json(&["hashtask", "survivor", "-n", ns]);
        let uid = task["metadata"]["uid"].as_str()?.to_string();
        (!jobs_of(s, &uid).is_empty()).then_some(uid)
    });
    s.kubectl.run(&[
        "delete",
        "pod",
        "-n",
        "taskyard-system",
        "-l",
        "app.kubernetes.io/component=operator",
        "--wait=true",
    ]);
    wait_succeeded(s, ns, &["hashtask/survivor"]);
    let task = s.kubectl.get_json(&["hashtask", "survivor", "-n", ns]);
    assert_eq!(
        task["status"]["digests"]["md5"].as_str().unwrap(),
        coreutils_digest("md5", &path)
    );
    assert_eq!(jobs_of(s, &uid).len(), 1, "the restarted operator created a second Job");
    let date = &task["status"]["completionTime"].as_str().unwrap()[..10];
    let log = results_log(s, date);
    assert_eq!(
        log.lines()
            .filter(|l| l.split(' ').nth(2) == Some(uid.as_str()))
            .count(),
        1,
        "{log}"
    );
}

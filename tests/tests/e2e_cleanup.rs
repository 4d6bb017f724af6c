//! End to end on the local cluster, with cleanupOnDelete: deleting tasks deletes their own
//! store objects (results, manifest, text) and never the shared images, without holding the
//! deletion (no finalizer); the finalizer of earlier versions is removed.

use std::time::Duration;

use serde_json::json;
use taskyard_tests::cluster::repo_root;
use taskyard_tests::e2e::{OPERATOR_NAMESPACE, file, hash_task, jobs_of, namespace, setup_with, wait_succeeded};
use taskyard_tests::images::write_site;

/// One test at a time: one of them stops the operator.
static OPERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn deleting_tasks_deletes_their_objects_but_not_shared_images() {
    let _operator = OPERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup_with(json!({"cleanupOnDelete": true}));
    let ns = &namespace(s, "cleanup");
    write_site(&s.files);
    std::fs::write(s.files.join("cleanup.html"), "<img src=\"a.png\"><img src=\"b.jpg\">").unwrap();
    let fixtures = repo_root().join("job-runner/tests/fixtures/text");
    std::fs::copy(fixtures.join("article.html"), s.files.join("cleanup-article.html")).unwrap();
    let page = s.server.url("/files/cleanup.html");
    let article = s.server.url("/files/cleanup-article.html?type=text/html");
    s.kubectl.apply(&format!(
        "apiVersion: taskyard.dev/v1alpha1\nkind: ImageTask\nmetadata: {{name: pics, namespace: {ns}}}\nspec:\n  source: {{page: \"{page}\"}}\n---\napiVersion: taskyard.dev/v1alpha1\nkind: TextTask\nmetadata: {{name: words, namespace: {ns}}}\nspec:\n  source: {{page: \"{article}\"}}\n"
    ));
    wait_succeeded(s, ns, &["imagetask/pics", "texttask/words"]);
    let image = s.kubectl.get_json(&["imagetask", "pics", "-n", ns]);
    let text = s.kubectl.get_json(&["texttask", "words", "-n", ns]);
    assert!(image["metadata"]["finalizers"].is_null(), "{}", image["metadata"]);

    let store = s.runtime.block_on(s.env.store());
    let exists = |key: &str| s.runtime.block_on(store.size(key)).unwrap().is_some();
    let result_key = |kind: &str, task: &serde_json::Value| {
        let m = &task["metadata"];
        format!(
            "tasks/{ns}/{kind}/{}/{}/1/result.json",
            m["name"].as_str().unwrap(),
            m["uid"].as_str().unwrap()
        )
    };
    let own = [
        result_key("imagetask", &image),
        image["status"]["manifest"].as_str().unwrap().to_string(),
        result_key("texttask", &text),
        text["status"]["text"]["key"].as_str().unwrap().to_string(),
    ];
    let shared: Vec<String> = image["status"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(shared.len(), 2);
    for key in own.iter().chain(&shared) {
        assert!(exists(key), "{key} exists before the deletion");
    }

    s.kubectl.run(&[
        "delete",
        "imagetask/pics",
        "texttask/words",
        "-n",
        ns,
        "--wait=true",
        "--timeout=120s",
    ]);
    s.kubectl
        .eventually("the tasks' own objects to be deleted", Duration::from_secs(10), || {
            own.iter().all(|key| !exists(key)).then_some(())
        });
    for key in &shared {
        assert!(exists(key), "shared image {key} was deleted");
    }
}

#[test]
fn the_finalizer_of_earlier_versions_is_removed() {
    let _operator = OPERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup_with(json!({"cleanupOnDelete": true}));
    let ns = &namespace(s, "old-finalizer");
    s.kubectl.apply(&format!(
        "apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {{name: old, namespace: {ns}, finalizers: [taskyard.dev/cleanup]}}\nspec:\n  source: {{object: nothing-here.bin}}\n"
    ));
    s.kubectl
        .eventually("the old finalizer to go", Duration::from_secs(60), || {
            let task = s.kubectl.get_json(&["hashtask", "old", "-n", ns]);
            task["metadata"]["finalizers"].is_null().then_some(())
        });
    s.kubectl.run(&["delete", "hashtask", "old", "-n", ns, "--timeout=30s"]);
}

#[test]
fn a_task_deleted_while_no_operator_runs_is_cleaned_up_when_one_starts() {
    let _operator = OPERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup_with(json!({"cleanupOnDelete": true}));
    let ns = &namespace(s, "no-operator");
    file("no-operator.bin", 1000, 77);
    s.kubectl
        .apply(&hash_task(ns, "orphan", &s.server.url("/files/no-operator.bin")));
    wait_succeeded(s, ns, &["hashtask/orphan"]);
    let task = s.kubectl.get_json(&["hashtask", "orphan", "-n", ns]);
    let uid = task["metadata"]["uid"].as_str().unwrap().to_string();
    let result = format!("tasks/{ns}/hashtask/orphan/{uid}/1/result.json");
    let store = s.runtime.block_on(s.env.store());
    let exists = |key: &str| s.runtime.block_on(store.size(key)).unwrap().is_some();
    assert!(exists(&result) && !jobs_of(s, &uid).is_empty());

    let scale = |replicas: &str| {
        s.kubectl.run(&[
            "scale",
            "deployment/taskyard-operator",
            "-n",
            OPERATOR_NAMESPACE,
            &format!("--replicas={replicas}"),
        ])
    };
    scale("0");
    s.kubectl
        .eventually("the operator to stop", Duration::from_secs(120), || {
            s.kubectl.operator_pods().is_empty().then_some(())
        });
    // Nothing holds the deletion while no operator runs.
    s.kubectl
        .run(&["delete", "hashtask", "orphan", "-n", ns, "--timeout=30s"]);
    assert!(exists(&result), "nothing deleted it without an operator");
    scale("1");
    s.kubectl.eventually(
        "the new operator to delete the task's Job and objects",
        Duration::from_secs(120),
        || (jobs_of(s, &uid).is_empty() && !exists(&result)).then_some(()),
    );
    s.kubectl.operator_rolled_out();
}

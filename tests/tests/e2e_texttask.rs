//! End to end on the local cluster: a TextTask applied with kubectl, its text in the store.

use taskyard_tests::cluster::repo_root;
use taskyard_tests::e2e::{namespace, setup, wait_succeeded};

#[test]
fn a_text_task_applied_with_kubectl_stores_the_pages_text() {
    let s = setup();
    let ns = &namespace(s, "text");
    let fixtures = repo_root().join("job-runner/tests/fixtures/text");
    std::fs::copy(fixtures.join("article.html"), s.files.join("article.html")).unwrap();
    let golden = std::fs::read_to_string(fixtures.join("article.txt")).unwrap();
    let url = s.server.url("/files/article.html?type=text/html");
    s.kubectl.apply(&format!(
        "apiVersion: taskyard.dev/v1alpha1\nkind: TextTask\nmetadata: {{name: article, namespace: {ns}}}\nspec:\n  source: {{page: \"{url}\"}}\n"
    ));
    wait_succeeded(s, ns, &["texttask/article"]);

    let task = s.kubectl.get_json(&["texttask", "article", "-n", ns]);
    let status = &task["status"];
    assert_eq!(status["title"], "Field notes & sketches");
    assert_eq!(
        status["text"]["words"].as_u64(),
        Some(golden.split_whitespace().count() as u64)
    );
    assert_eq!(status["text"]["lines"].as_u64(), Some(golden.lines().count() as u64));
    assert!(
        status["preview"]
            .as_str()
            .unwrap()
            .starts_with("Home | About\nField notes")
    );
    let key = status["text"]["key"].as_str().unwrap();
    let uid = task["metadata"]["uid"].as_str().unwrap();
    assert_eq!(key, format!("texts/{ns}/article/{uid}/1.txt"));
    let store = s.runtime.block_on(s.env.store());
    let stored = s
        .runtime
        .block_on(store.get(key, 1 << 20))
        .unwrap()
        .expect("the text is in the store");
    assert_eq!(String::from_utf8(stored.to_vec()).unwrap(), golden);

    let table = s.kubectl.run(&["get", "texttasks", "-n", ns]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "PHASE", "WORDS", "AGE"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..3],
        ["article", "Succeeded", &golden.split_whitespace().count().to_string()]
    );
}

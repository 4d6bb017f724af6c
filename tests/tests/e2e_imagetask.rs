//! End to end on the local cluster: ImageTasks applied with kubectl, images in the store,
//! shared between tasks, and the columns `kubectl get imagetasks` shows.

use taskyard_tests::e2e::{namespace, setup, wait_succeeded};
use taskyard_tests::images::write_site;

fn image_task(ns: &str, name: &str, page: &str) -> String {
    format!(
        "apiVersion: taskyard.dev/v1alpha1\nkind: ImageTask\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  source: {{page: \"{page}\"}}\n  resize: {{width: 64, height: 64, fit: cover, format: jpeg}}\n"
    )
}

#[test]
fn image_tasks_store_shared_images_and_show_their_counts() {
    let s = setup();
    let ns = &namespace(s, "images");
    write_site(&s.files);
    let page = concat!(
        "<html><body><img src=\"a.png\"><img src=\"b.jpg\"><img src=\"a.png\">",
        "<img src=\"missing.png\"><img src=\"data:image/gif;base64,R0lGOD\">",
        "<picture><source srcset=\"hero.webp 1x, hero-2x.png 2x\"></picture></body></html>",
    );
    std::fs::write(s.files.join("e2e-gallery.html"), page).unwrap();
    let url = s.server.url("/files/e2e-gallery.html");

    s.kubectl.apply(&image_task(ns, "first", &url));
    wait_succeeded(s, ns, &["imagetask/first"]);
    let first = s.kubectl.get_json(&["imagetask", "first", "-n", ns]);
    let counts = &first["status"]["images"];
    assert_eq!(
        ["found", "stored", "reused", "failed", "skipped"].map(|k| counts[k].as_u64().unwrap()),
        [4, 3, 0, 1, 1],
        "{}",
        first["status"]
    );

    // The second task finds everything stored by the first.
    s.kubectl.apply(&image_task(ns, "second", &url));
    wait_succeeded(s, ns, &["imagetask/second"]);
    let second = s.kubectl.get_json(&["imagetask", "second", "-n", ns]);
    assert_eq!(
        second["status"]["images"]["reused"].as_u64(),
        Some(3),
        "{}",
        second["status"]
    );
    assert_eq!(second["status"]["images"]["stored"].as_u64(), Some(0));
    // Reused from the S3 store, an image is described as fully as when it was stored.
    let geometry = |task: &serde_json::Value, state: &str| {
        let items = task["status"]["items"].as_array().unwrap();
        let mut described: Vec<_> = items
            .iter()
            .filter(|i| i["state"] == state)
            .map(|i| {
                (
                    i["source"].clone(),
                    i["width"].clone(),
                    i["height"].clone(),
                    i["bytes"].clone(),
                )
            })
            .collect();
        described.sort_by_key(|d| d.0.to_string());
        described
    };
    assert_eq!(geometry(&second, "Reused"), geometry(&first, "Stored"));
    assert!(geometry(&second, "Reused").iter().all(|d| d.1.is_u64() && d.2.is_u64()));

    let store = s.runtime.block_on(s.env.store());
    for item in first["status"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["state"] == "Stored")
    {
        for key in [&item["key"], &item["originalKey"]] {
            let key = key.as_str().unwrap();
            assert!(
                s.runtime.block_on(store.size(key)).unwrap().is_some(),
                "{key} is in the store"
            );
        }
        assert_eq!((item["width"].as_u64(), item["height"].as_u64()), (Some(64), Some(64)));
    }
    let manifest = first["status"]["manifest"].as_str().unwrap();
    assert!(s.runtime.block_on(store.size(manifest)).unwrap().is_some());

    let table = s.kubectl.run(&["get", "imagetasks", "-n", ns]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "PHASE", "FOUND", "STORED", "FAILED", "AGE"]);
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("first "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&row[..5], ["first", "Succeeded", "4", "3", "1"]);

    let all = s.kubectl.run(&["get", "taskyard", "-n", ns]);
    assert!(
        all.contains("imagetask.taskyard.dev/first") && all.contains("imagetask.taskyard.dev/second"),
        "{all}"
    );
}

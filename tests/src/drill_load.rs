//! The load of the fault drills: HashTasks of store objects and of files the fixture server
//! serves slowly, each with the md5 it must end with.

use std::collections::BTreeMap;

use bytes::Bytes;
use taskyard_common::store::Store;

use crate::drill::hash_tasks;
use crate::e2e::{Setup, hash_task};
use crate::files::{coreutils_digest, write_pattern};

/// A file the fixture server serves, `size` bytes; its md5.
pub fn served_file(s: &Setup, name: &str, size: u64, seed: u64) -> String {
    let path = s.files.join(name);
    write_pattern(&path, size, seed);
    coreutils_digest("md5", &path)
}

/// An object of `size` bytes in the namespace's upload area; its md5.
pub fn upload(s: &Setup, ns: &str, name: &str, size: u64, seed: u64) -> String {
    let store = s.runtime.block_on(s.env.store());
    put(s, &store, ns, name, size, seed)
}

fn put(s: &Setup, store: &Store, ns: &str, name: &str, size: u64, seed: u64) -> String {
    let path = s.files.join(format!("{ns}-{name}"));
    write_pattern(&path, size, seed);
    let body = Bytes::from(std::fs::read(&path).unwrap());
    s.runtime
        .block_on(store.put(&format!("uploads/{ns}/{name}"), body, "application/octet-stream"))
        .unwrap();
    coreutils_digest("md5", &path)
}

pub fn object_task(ns: &str, name: &str, object: &str) -> String {
    format!(
        "apiVersion: taskyard.dev/v1alpha1\nkind: HashTask\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  source: {{object: {object}}}\n---\n"
    )
}

/// `n` HashTasks `<prefix>-<i>` of small distinct store objects, applied at once.
pub fn object_burst(s: &Setup, ns: &str, prefix: &str, n: usize, md5: &mut BTreeMap<String, String>) {
    let store = s.runtime.block_on(s.env.store());
    let mut yaml = String::new();
    for i in 0..n {
        let name = format!("{prefix}-{i:03}");
        md5.insert(
            name.clone(),
            put(s, &store, ns, &format!("{name}.bin"), 4096 + i as u64, i as u64),
        );
        yaml.push_str(&object_task(ns, &name, &format!("{name}.bin")));
    }
    s.kubectl.apply(&yaml);
}

/// HashTasks of files the fixture server spreads over `ms` milliseconds.
pub fn slow_tasks(s: &Setup, ns: &str, names: &[&str], ms: u64, md5: &mut BTreeMap<String, String>) {
    for (i, name) in names.iter().enumerate() {
        let file = format!("{ns}-{name}.bin");
        md5.insert(name.to_string(), served_file(s, &file, 150_000, 7 + i as u64));
        let url = s.server.url(&format!("/slow/{file}?ms={ms}"));
        s.kubectl.apply(&hash_task(ns, name, &url));
    }
}

/// `n` HashTasks `<prefix>-<i>` of files the fixture server serves slowly, applied at once:
/// task `i` takes 3 to 5 s to download. With the drills' two runner Jobs at a time, each
/// running 4 tasks at once, 200 of them take about 110 s, finishing one after another all
/// along: a burst that outlasts the operator's outages.
pub fn slow_burst(s: &Setup, ns: &str, prefix: &str, n: usize, md5: &mut BTreeMap<String, String>) {
    let mut yaml = String::new();
    for i in 0..n {
        let name = format!("{prefix}-{i:03}");
        let file = format!("{ns}-{name}.bin");
        md5.insert(name.clone(), served_file(s, &file, 8192 + i as u64, 100 + i as u64));
        let ms = 3_000 + (i as u64 % 5) * 500;
        yaml.push_str(&hash_task(ns, &name, &s.server.url(&format!("/slow/{file}?ms={ms}"))));
        yaml.push_str("---\n");
    }
    s.kubectl.apply(&yaml);
}

/// How many tasks of `ns` have succeeded.
pub fn succeeded(s: &Setup, ns: &str) -> usize {
    hash_tasks(s, ns)
        .iter()
        .filter(|t| t["status"]["phase"] == "Succeeded")
        .count()
}

//! The README, followed as a user would: its commands run as written, with only what names
//! this machine's parts substituted (image names and the store endpoint). When the README's
//! commands change, these tests change with them.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use taskyard_common::store::{S3Store, Store};
use taskyard_tests::cluster::{ClusterEnv, repo_root};
use taskyard_tests::helm::helm;
use taskyard_tests::images::{encoded, gradient};
use taskyard_tests::kubectl::Kubectl;

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).expect("README.md is readable")
}

/// The first fenced block of `lang` after the heading line `heading`.
fn block_after(readme: &str, heading: &str, lang: &str) -> String {
    let start = readme
        .lines()
        .position(|l| l == heading)
        .unwrap_or_else(|| panic!("the README has no heading {heading:?}"));
    let mut lines = readme
        .lines()
        .skip(start + 1)
        .skip_while(|l| *l != format!("```{lang}"));
    lines
        .next()
        .unwrap_or_else(|| panic!("no ```{lang} block after {heading:?}"));
    let block: Vec<&str> = lines.take_while(|l| *l != "```").collect();
    block.join("\n") + "\n"
}

/// Replaces `from` with `to`, failing if the README no longer says `from`.
fn substitute(script: &str, from: &str, to: &str) -> String {
    assert!(
        script.contains(from),
        "the README's commands no longer contain {from:?}:\n{script}"
    );
    script.replace(from, to)
}

/// Runs a README block with bash, from the checkout, with the helm command on PATH.
fn run_script(script: &str, env: &[(&str, &str)]) -> String {
    let path = format!(
        "{}:{}",
        repo_root().join("tests/helm/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(repo_root())
        .env("PATH", path)
        .envs(env.iter().copied())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the README's commands failed:\n{script}\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(bytes))
}

/// The examples that need no internet: those that read a store object.
fn object_examples() -> Vec<(String, Value)> {
    let mut examples: Vec<(String, Value)> = std::fs::read_dir(repo_root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let doc: Value = serde_yaml::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (format!("examples/{}", p.file_name().unwrap().to_string_lossy()), doc)
        })
        .filter(|(_, doc)| doc["spec"]["source"]["object"].is_string())
        .collect();
    examples.sort_by(|a, b| a.0.cmp(&b.0));
    examples
}

/// The input each object example reads, as a user would upload it.
fn input_for(kind: &str) -> Vec<u8> {
    match kind {
        "HashTask" => b"hello taskyard\n".to_vec(),
        "ImageTask" => encoded(&gradient(1600, 1200), image::ImageFormat::Png),
        "TextTask" => {
            b"<html><head><title>Stored</title></head><body><p>Hello from the store.</p></body></html>".to_vec()
        }
        other => panic!("no input for {other}"),
    }
}

#[test]
fn try_it_without_a_cluster_works_as_written() {
    let readme = readme();
    let script = block_after(&readme, "## Try it without a cluster (the run command)", "sh");
    let expected: Value = serde_yaml::from_str(
        &block_after(&readme, "## Try it without a cluster (the run command)", "yaml").replace("...\n", ""),
    )
    .unwrap();
    let store = repo_root().join("store");
    let _ = std::fs::remove_dir_all(&store);
    let printed = run_script(&script, &[]);
    let _ = std::fs::remove_dir_all(&store);
    let status: Value = serde_yaml::from_str(&printed).expect("the run prints the status as YAML");
    for (field, want) in expected.as_object().unwrap() {
        assert_eq!(
            &status[field], want,
            "status.{field} differs from the README:\n{printed}"
        );
    }
}

#[test]
fn every_example_that_needs_no_internet_runs_with_job_runner() {
    let examples = object_examples();
    assert_eq!(examples.len(), 3, "one store-object example per kind");
    let store = tempfile::tempdir().unwrap();
    for (path, doc) in examples {
        let kind = doc["kind"].as_str().unwrap();
        let object = doc["spec"]["source"]["object"].as_str().unwrap();
        let key = store.path().join("uploads/default").join(object);
        std::fs::create_dir_all(key.parent().unwrap()).unwrap();
        std::fs::write(&key, input_for(kind)).unwrap();
        let out = Command::new("cargo")
            .args(["run", "-q", "-p", "job-runner", "--", "run", "--store"])
            .arg(store.path())
            .arg(&path)
            .current_dir(repo_root())
            .output()
            .expect("cargo runs");
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{path}: exit {:?}\n{printed}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        let status: Value = serde_yaml::from_str(&printed).unwrap();
        assert_eq!(status["phase"], "Succeeded", "{path}:\n{printed}");
        match kind {
            "HashTask" => assert_eq!(status["digests"]["md5"], md5_hex(&input_for(kind)).as_str()),
            "ImageTask" => {
                // Fitted inside 800x600 with the 4:3 aspect kept.
                assert_eq!(
                    (&status["items"][0]["width"], &status["items"][0]["height"]),
                    (&800.into(), &600.into())
                );
            }
            _ => assert_eq!(status["title"], "Stored", "{path}:\n{printed}"),
        }
    }
}

/// The README's install (release, namespace and Secret as written) replaces the release the
/// other tests installed, from a namespace that does not exist yet, as on a new cluster.
fn remove_the_installed_release(k: &Kubectl) {
    let (ok, _, stderr) = helm(
        &["uninstall", "taskyard", "--namespace", "taskyard-system"],
        &serde_json::json!({}),
    );
    assert!(ok, "uninstall failed: {stderr}");
    k.run(&[
        "delete",
        "namespace",
        "taskyard-system",
        "--ignore-not-found",
        "--timeout=180s",
    ]);
}

#[test]
fn the_helm_install_and_first_task_work_as_written() {
    let env = ClusterEnv::load();
    let k = Kubectl::new(&env);
    let readme = readme();
    let install = block_after(&readme, "## Install with Helm", "sh");
    let install = substitute(
        &install,
        "REGISTRY/taskyard-operator:0.1.0",
        env.get("TASKYARD_OPERATOR_IMAGE"),
    );
    let install = substitute(&install, "REGISTRY/job-runner:0.1.0", env.get("TASKYARD_RUNNER_IMAGE"));
    let install = substitute(&install, "http://minio.storage:9000", env.get("TASKYARD_S3_ENDPOINT"));
    // The README's bucket, created in the local store as an administrator would.
    assert!(install.contains("store.bucket=my-bucket"), "{install}");
    std::fs::create_dir_all(Path::new(env.get("TASKYARD_S3_ROOT")).join("my-bucket")).unwrap();

    remove_the_installed_release(&k);
    let credentials = [
        ("KUBECONFIG", env.get("KUBECONFIG")),
        ("AWS_ACCESS_KEY_ID", env.get("AWS_ACCESS_KEY_ID")),
        ("AWS_SECRET_ACCESS_KEY", env.get("AWS_SECRET_ACCESS_KEY")),
    ];
    run_script(&install, &credentials);
    let ready = k.run(&[
        "-n",
        "taskyard-system",
        "get",
        "deployment",
        "taskyard-operator",
        "-o",
        "jsonpath={.status.readyReplicas}",
    ]);
    assert_eq!(ready, "1", "the operator is not Ready after the README's install");

    // "First task", with the store-object example (the cluster has no internet).
    let (example, doc) = object_examples()
        .into_iter()
        .find(|(_, d)| d["kind"] == "HashTask")
        .unwrap();
    let name = doc["metadata"]["name"].as_str().unwrap();
    let object = doc["spec"]["source"]["object"].as_str().unwrap();
    let input = input_for("HashTask");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut s3 = env.s3_settings();
        s3.bucket = "my-bucket".into();
        let store = Store::S3(S3Store::connect(&s3).await);
        store
            .put(&format!("uploads/default/{object}"), input.clone().into(), "text/plain")
            .await
            .unwrap();
    });
    k.run(&["delete", "hashtask", name, "-n", "default", "--ignore-not-found"]);
    let first = block_after(&readme, "### First task", "sh");
    let first = substitute(&first, "examples/hashtask-url.yaml", &example);
    let first = substitute(&first, "report-digest", name);
    let printed = run_script(&first, &credentials[..1]);
    assert!(
        printed.contains("condition met"),
        "kubectl wait did not succeed:\n{printed}"
    );
    let task = k.get_json(&["hashtask", name, "-n", "default"]);
    assert_eq!(task["status"]["digests"]["md5"], md5_hex(&input).as_str(), "{task}");
    k.run(&["delete", "hashtask", name, "-n", "default", "--wait=true"]);
}

#[test]
fn the_upgrade_from_0_1_command_deletes_only_the_old_credentials_copies() {
    let env = ClusterEnv::load();
    let k = Kubectl::new(&env);
    let readme = readme();
    let heading = readme
        .lines()
        .find(|l| l.starts_with("**From 0.1.**"))
        .expect("the README has upgrade notes from 0.1");
    let command = block_after(&readme, heading, "sh");
    // What 0.1 left in a tenant's namespace, and a Secret of the same name a user made.
    for ns in ["readme-old-a", "readme-old-b"] {
        k.namespace(ns);
    }
    k.apply(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: taskyard-store-credentials, namespace: readme-old-a, labels: {app.kubernetes.io/managed-by: taskyard}}\nstringData: {AWS_ACCESS_KEY_ID: old}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: taskyard-store-credentials, namespace: readme-old-b}\nstringData: {mine: keep}\n",
    );
    run_script(&command, &[("KUBECONFIG", env.get("KUBECONFIG"))]);
    let (copy_left, _, _) = k.try_run(&["get", "secret", "taskyard-store-credentials", "-n", "readme-old-a"]);
    assert!(!copy_left, "the 0.1 copy is still there");
    k.run(&["get", "secret", "taskyard-store-credentials", "-n", "readme-old-b"]);
    k.run(&["get", "secret", env.get("TASKYARD_S3_SECRET"), "-n", "taskyard-system"]);
}

#[test]
fn the_readme_names_every_condition_reason() {
    let readme = readme();
    let missing: Vec<&str> = taskyard_api::Reason::ALL
        .iter()
        .map(|r| r.as_str())
        .filter(|r| !readme.contains(&format!("`{r}`")))
        .collect();
    assert!(missing.is_empty(), "the README does not explain {missing:?}");
}

//! `fetch` (and `get -o DIR`): a finished task's outputs, downloaded into a directory. The
//! task is read as the user with their kubeconfig; each stored output then comes from the
//! gateway, which checks that the user may `get` that task and that the key is one of its
//! outputs. Files get safe local names chosen here (never a path from the store), and an
//! existing file is kept unless --force.

use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use kube::api::DynamicObject;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::cli::{FetchOptions, Global};
use crate::error::PluginError;
use crate::gateway;
use crate::spec::resource;
use crate::task::{self, TaskRef};
use crate::user::User;

/// The longest manifest read into memory (it is metadata: 5,000 items are well under it).
const MAX_MANIFEST_BYTES: usize = 64 << 20;

/// One file to write: from the store (`key`) or made here from the status (`content`).
#[derive(Debug, PartialEq)]
pub struct Output {
    /// The file's path inside the output directory, made of safe names only.
    pub file: PathBuf,
    pub source: Source,
}

#[derive(Debug, PartialEq)]
pub enum Source {
    Key(String),
    Content(String),
}

pub async fn fetch(user: &User, global: &Global, arg: &str, options: &FetchOptions) -> Result<(), PluginError> {
    let (task, mut object) = task::find(&user.client, &user.namespace, arg).await?;
    if let Some(unfinished) = unfinished(&task, &object) {
        if !options.wait {
            return Err(unfinished);
        }
        object = task::wait(&user.client, &user.namespace, &task, options.timeout).await?;
    }
    let dir = options
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(safe_name(&task.name)));
    let failed = task::finished(&object) == Some("Failed");
    let mut outputs = plan(&task, &object, None, failed)?;
    // An ImageTask's full item list is its manifest: read first, it names the images.
    let manifest_key = outputs.iter().find_map(|o| match &o.source {
        Source::Key(k) if k.ends_with("/manifest.json") && task.kind == "ImageTask" => Some(k.clone()),
        _ => None,
    });
    if let Some(key) = manifest_key {
        let manifest = read_small(user, global, &task, &key).await?;
        outputs = plan(&task, &object, manifest.as_ref(), failed)?;
    }
    if !options.force {
        let existing: Vec<String> = outputs
            .iter()
            .map(|o| dir.join(&o.file))
            .filter(|p| p.symlink_metadata().is_ok())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(PluginError::Usage(format!(
                "{} already exist{}: pass --force to overwrite, or -o another directory",
                existing.join(", "),
                if existing.len() == 1 { "s" } else { "" }
            )));
        }
    }
    let (mut written, mut missing) = (0, Vec::new());
    for output in &outputs {
        let path = dir.join(&output.file);
        let size = match &output.source {
            Source::Content(text) => {
                let chunk = Ok::<_, std::io::Error>(bytes::Bytes::from(text.clone()));
                write_file(&path, options.force, futures::stream::iter([chunk])).await?
            }
            Source::Key(key) => match gateway::output(user, global, &resource(task.kind), &task.name, key).await? {
                Some(response) => {
                    let chunks = response
                        .bytes_stream()
                        .map_err(|e| std::io::Error::other(e.to_string()));
                    write_file(&path, options.force, chunks).await?
                }
                None => {
                    missing.push(key.clone());
                    continue;
                }
            },
        };
        written += 1;
        println!("wrote {} ({size} bytes)", path.display());
    }
    println!("{written} files of {task} in {}", dir.display());
    if failed {
        let message = object.data["status"]["conditions"][0]["message"]
            .as_str()
            .unwrap_or("no message");
        return Err(PluginError::TaskFailed(format!("{task} failed: {message}")));
    }
    if !missing.is_empty() {
        return Err(PluginError::Kube(format!(
            "{} of {task}'s outputs are not in the store (deleted?): {}",
            missing.len(),
            missing.join(", ")
        )));
    }
    Ok(())
}

/// The error for a task still pending or running (its outputs are stored when it finishes).
pub fn unfinished(task: &TaskRef, object: &DynamicObject) -> Option<PluginError> {
    if task::finished(object).is_some() {
        return None;
    }
    let phase = object.data["status"]["phase"].as_str().unwrap_or("Pending");
    Some(PluginError::NotFinished(format!(
        "{task} is {phase}, not finished: its outputs are stored when it finishes. \
         Add --wait to wait for it (`kubectl taskyard fetch {task} --wait`)"
    )))
}

/// A small JSON output (a manifest) read into memory; None when it is not stored.
async fn read_small(user: &User, global: &Global, task: &TaskRef, key: &str) -> Result<Option<Value>, PluginError> {
    let Some(response) = gateway::output(user, global, &resource(task.kind), &task.name, key).await? else {
        return Ok(None);
    };
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.try_next().await.map_err(|e| PluginError::Gateway {
        status: 200,
        message: format!("reading {key}: {e}"),
    })? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_MANIFEST_BYTES {
            return Err(PluginError::Gateway {
                status: 200,
                message: format!("{key} is larger than {MAX_MANIFEST_BYTES} bytes"),
            });
        }
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| PluginError::Gateway {
            status: 200,
            message: format!("{key} is not JSON: {e}"),
        })
}

/// The files a task's status (and an ImageTask's manifest, once read) points to:
/// - every kind: `result.json` (the runner's result), from `tasks/<ns>/<kind>/<name>/<uid>/<generation>/`;
/// - HashTask: `digests.json`, the status's digests and size;
/// - TextTask: `text.txt` (status.text.key) and `manifest.json`;
/// - ImageTask: `manifest.json` (status.manifest) and `images/NNN-<name>.<ext>` for each stored or
///   reused item of the manifest (else of status.items).
///
/// A failed task has its `result.json` only (it says why).
pub fn plan(
    task: &TaskRef,
    object: &DynamicObject,
    manifest: Option<&Value>,
    failed: bool,
) -> Result<Vec<Output>, PluginError> {
    let status = &object.data["status"];
    let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
    let uid = object.metadata.uid.as_deref().unwrap_or_default();
    let generation = status["observedGeneration"]
        .as_i64()
        .or(object.metadata.generation)
        .unwrap_or(1);
    let prefix = format!(
        "tasks/{namespace}/{}/{}/{uid}/{generation}",
        task.kind.to_ascii_lowercase(),
        task.name
    );
    let key = |file: &str, key: String| Output {
        file: PathBuf::from(file),
        source: Source::Key(key),
    };
    let mut outputs = vec![key("result.json", format!("{prefix}/result.json"))];
    if failed {
        return Ok(outputs);
    }
    match task.kind {
        "HashTask" => {
            let digests = json!({"digests": status["digests"], "size": status["size"]});
            outputs.push(Output {
                file: PathBuf::from("digests.json"),
                source: Source::Content(format!(
                    "{}\n",
                    serde_json::to_string_pretty(&digests).unwrap_or_default()
                )),
            });
        }
        "TextTask" => {
            if let Some(text) = status["text"]["key"].as_str() {
                outputs.push(key("text.txt", text.to_string()));
            }
            outputs.push(key("manifest.json", format!("{prefix}/manifest.json")));
        }
        _ => {
            let manifest_key = status["manifest"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{prefix}/manifest.json"));
            outputs.push(key("manifest.json", manifest_key));
            let items = manifest
                .and_then(|m| m["items"].as_array())
                .or(status["items"].as_array())
                .cloned()
                .unwrap_or_default();
            let stored: Vec<&Value> = items
                .iter()
                .filter(|i| matches!(i["state"].as_str(), Some("Stored" | "Reused")) && i["key"].is_string())
                .collect();
            let width = stored.len().to_string().len().max(3);
            for (n, item) in stored.into_iter().enumerate() {
                let store_key = item["key"].as_str().unwrap_or_default();
                let file = image_file_name(n + 1, width, item["source"].as_str().unwrap_or_default(), store_key);
                outputs.push(Output {
                    file: Path::new("images").join(file),
                    source: Source::Key(store_key.to_string()),
                });
            }
        }
    }
    Ok(outputs)
}

/// `NNN-<source's file name>.<stored extension>`: numbered, so that two images of the same
/// name never meet, and named after the source (the store's names are digests).
pub fn image_file_name(n: usize, width: usize, source: &str, key: &str) -> String {
    let last = source.split(['?', '#']).next().unwrap_or_default();
    let last = last.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
    let stem = last.rsplit_once('.').map(|(s, _)| s).unwrap_or(last);
    let stem = safe_name(stem);
    let stem = if stem == "output" { "image".to_string() } else { stem };
    let ext = key
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, e)| safe_name(e))
        .filter(|e| e != "output" && e.len() <= 8)
        .unwrap_or_else(|| "bin".into());
    let stem: String = stem.chars().take(80).collect();
    format!("{n:0width$}-{stem}.{ext}")
}

/// A name that is one plain file name: letters, digits, `.`, `-`, `_` only (anything else
/// becomes `_`, so no `/`, `\` or `:`), no leading dot (no `..`, no hidden files), at most
/// 100 characters; `output` when nothing is left.
pub fn safe_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe: String = safe.trim_start_matches('.').chars().take(100).collect();
    if safe.is_empty() { "output".into() } else { safe }
}

/// Streams `chunks` into `path`: first into a partial file beside it, then moved into place,
/// over an existing file only with `force` (else an existing file, or a symlink, is kept and
/// it is an error). Returns the bytes written.
async fn write_file<S>(path: &Path, force: bool, chunks: S) -> Result<u64, PluginError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, std::io::Error>>,
{
    let failed = |e: std::io::Error| PluginError::File {
        path: path.display().to_string(),
        error: e.to_string(),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir).await.map_err(failed)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("output");
    let partial = dir.join(format!(".{file_name}.taskyard-partial"));
    let _ = tokio::fs::remove_file(&partial).await;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)
        .await
        .map_err(failed)?;
    let mut size = 0u64;
    let mut chunks = std::pin::pin!(chunks);
    let copied: Result<(), std::io::Error> = async {
        while let Some(chunk) = chunks.try_next().await? {
            file.write_all(&chunk).await?;
            size += chunk.len() as u64;
        }
        file.flush().await?;
        file.sync_all().await
    }
    .await;
    drop(file);
    let placed = match copied {
        Err(e) => Err(e),
        Ok(()) if force => tokio::fs::rename(&partial, path).await,
        // A hard link never replaces an existing name: whatever appeared there meanwhile is kept.
        Ok(()) => match tokio::fs::hard_link(&partial, path).await {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(std::io::Error::new(
                e.kind(),
                "it already exists: pass --force to overwrite",
            )),
            // A file system without hard links.
            Err(_) if path.symlink_metadata().is_err() => tokio::fs::rename(&partial, path).await,
            other => other,
        },
    };
    let _ = tokio::fs::remove_file(&partial).await;
    placed.map_err(failed)?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_are_one_plain_file_name() {
        for (given, safe) in [
            ("report", "report"),
            ("../../etc/passwd", "_.._etc_passwd"),
            ("..", "output"),
            ("", "output"),
            (".hidden", "hidden"),
            ("a/b\\c:d", "a_b_c_d"),
            ("cat 1.jpg", "cat_1.jpg"),
            ("é", "_"),
        ] {
            let s = safe_name(given);
            assert_eq!(s, safe, "{given:?}");
            assert!(!s.contains('/') && !s.contains('\\') && !s.starts_with('.'), "{s}");
        }
        assert_eq!(safe_name(&"x".repeat(300)).len(), 100);
    }

    #[test]
    fn image_files_are_numbered_and_named_after_their_source() {
        let key = "images/ab/ab12-cd-100x50-fill-q85.png";
        assert_eq!(image_file_name(1, 3, "https://e.com/a/cat.jpg?x=1", key), "001-cat.png");
        assert_eq!(image_file_name(12, 3, "https://e.com/", key), "012-e.png");
        assert_eq!(image_file_name(2, 4, "plugin/u-1/../../x.gif", key), "0002-x.png");
        assert_eq!(image_file_name(3, 3, "https://e.com/%2e%2e", key), "003-_2e_2e.png");
        assert_eq!(
            image_file_name(4, 3, "https://e.com/..", "images/ab/x/../y"),
            "004-image.bin"
        );
        assert_eq!(
            image_file_name(5, 3, "https://e.com/a.png", "images/ab/x.png/evil"),
            "005-a.bin"
        );
    }

    fn object(kind: &str, status: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "taskyard.dev/v1alpha1", "kind": kind,
            "metadata": {"name": "t", "namespace": "team-a", "uid": "u-1", "generation": 2},
            "status": status,
        }))
        .unwrap()
    }

    fn task(kind: &'static str) -> TaskRef {
        TaskRef { kind, name: "t".into() }
    }

    fn files(outputs: &[Output]) -> Vec<(String, String)> {
        outputs
            .iter()
            .map(|o| {
                let from = match &o.source {
                    Source::Key(k) => k.clone(),
                    Source::Content(_) => "(status)".into(),
                };
                (o.file.display().to_string(), from)
            })
            .collect()
    }

    #[test]
    fn a_hash_task_gives_its_result_and_digests() {
        let status = json!({"phase": "Succeeded", "observedGeneration": 2, "digests": {"md5": "abc"}, "size": 3});
        let outputs = plan(&task("HashTask"), &object("HashTask", status), None, false).unwrap();
        assert_eq!(
            files(&outputs),
            [
                ("result.json".into(), "tasks/team-a/hashtask/t/u-1/2/result.json".into()),
                ("digests.json".into(), "(status)".into()),
            ]
        );
        let Source::Content(digests) = &outputs[1].source else {
            panic!()
        };
        let digests: Value = serde_json::from_str(digests).unwrap();
        assert_eq!(digests, json!({"digests": {"md5": "abc"}, "size": 3}));
    }

    #[test]
    fn a_text_task_gives_its_text() {
        let status =
            json!({"phase": "Succeeded", "observedGeneration": 2, "text": {"key": "texts/team-a/t/u-1/2.txt"}});
        let outputs = plan(&task("TextTask"), &object("TextTask", status), None, false).unwrap();
        assert_eq!(
            files(&outputs),
            [
                ("result.json".into(), "tasks/team-a/texttask/t/u-1/2/result.json".into()),
                ("text.txt".into(), "texts/team-a/t/u-1/2.txt".into()),
                (
                    "manifest.json".into(),
                    "tasks/team-a/texttask/t/u-1/2/manifest.json".into()
                ),
            ]
        );
    }

    #[test]
    fn an_image_task_gives_the_images_its_manifest_lists() {
        let status = json!({
            "phase": "Succeeded", "observedGeneration": 2,
            "manifest": "tasks/team-a/imagetask/t/u-1/2/manifest.json",
            "items": [{"source": "https://e.com/only-in-status.png", "state": "Stored", "key": "images/aa/1.png"}],
        });
        let object = object("ImageTask", status);
        let manifest = json!({"items": [
            {"source": "https://e.com/a.png", "state": "Stored", "key": "images/bb/2-100x100.jpeg"},
            {"source": "https://e.com/b.png", "state": "Reused", "key": "images/cc/3.png"},
            {"source": "https://e.com/c.png", "state": "Failed", "error": "404"},
            {"source": "data:", "state": "Skipped"},
        ]});
        let outputs = plan(&task("ImageTask"), &object, Some(&manifest), false).unwrap();
        assert_eq!(
            files(&outputs),
            [
                (
                    "result.json".into(),
                    "tasks/team-a/imagetask/t/u-1/2/result.json".into()
                ),
                (
                    "manifest.json".into(),
                    "tasks/team-a/imagetask/t/u-1/2/manifest.json".into()
                ),
                ("images/001-a.jpeg".into(), "images/bb/2-100x100.jpeg".into()),
                ("images/002-b.png".into(), "images/cc/3.png".into()),
            ]
        );
        // Before the manifest is read: the status's items.
        let outputs = plan(&task("ImageTask"), &object, None, false).unwrap();
        assert_eq!(
            files(&outputs)[2],
            ("images/001-only-in-status.png".into(), "images/aa/1.png".into())
        );
        // A failed task: its result only, which says why.
        assert_eq!(plan(&task("ImageTask"), &object, None, true).unwrap().len(), 1);
    }

    #[test]
    fn an_unfinished_task_has_no_outputs_yet() {
        let running = object("HashTask", json!({"phase": "Running"}));
        let e = unfinished(&task("HashTask"), &running).unwrap().to_string();
        assert!(
            e.contains("hashtask/t is Running, not finished") && e.contains("--wait"),
            "{e}"
        );
        let new = object("HashTask", Value::Null);
        assert!(
            unfinished(&task("HashTask"), &new)
                .unwrap()
                .to_string()
                .contains("is Pending")
        );
        for phase in ["Succeeded", "Failed"] {
            assert!(unfinished(&task("HashTask"), &object("HashTask", json!({"phase": phase}))).is_none());
        }
    }

    #[tokio::test]
    async fn files_are_not_overwritten_without_force() {
        let dir = std::env::temp_dir().join(format!("kubectl-taskyard-fetch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("images").join("001-a.png");
        let chunks = |s: &'static str| futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(s))]);
        assert_eq!(write_file(&path, false, chunks("first")).await.unwrap(), 5);
        let e = write_file(&path, false, chunks("second"))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("already exists") && e.contains("--force"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first");
        write_file(&path, true, chunks("third")).await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "third");
        // No partial file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.join("images"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["001-a.png"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

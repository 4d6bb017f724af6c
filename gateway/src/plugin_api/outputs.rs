//! A task's outputs for `kubectl taskyard fetch`, authorised as the calling user:
//!
//! `GET /v1/namespaces/{namespace}/{resource}/{name}/outputs/{key}` with the user's bearer
//! token → the stored object `key`, streamed.
//!
//! The user must be allowed to `get` that one task (a SubjectAccessReview with its name), and
//! `key` must be one of that task's outputs in the store layout (API.md):
//! - `tasks/<namespace>/<kind>/<name>/...`: the task's `result.json` and `manifest.json`;
//! - `texts/<namespace>/<name>/...`: a TextTask's extracted text;
//! - `images/...`: an ImageTask's stored image, only when one of that task's manifests
//!   (`tasks/<namespace>/imagetask/<name>/*/*/manifest.json`) lists it, since stored images
//!   are shared across tasks (and namespaces).
//!
//! Anything else (another namespace's or task's keys, uploads, logs, `..`) is refused before
//! the store is read. The checks of the request's shape are pure functions, tested here.

use futures::TryStreamExt;
use serde::Deserialize;
use taskyard_common::store::Store;

use super::request::{RESOURCES, is_namespace_name};
use crate::backend::is_object_name;

/// The longest manifest read to check an image key (5,000 items are well under it).
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// A checked outputs request.
#[derive(Debug, PartialEq)]
pub struct OutputRequest {
    pub namespace: String,
    pub resource: String,
    pub name: String,
    pub key: String,
    pub area: Area,
}

/// Where a key is, for the task asked about.
#[derive(Debug, PartialEq)]
pub enum Area {
    /// In the task's own part of the store: served once the user may get the task.
    Task,
    /// A shared stored image: served only if one of the task's manifests lists it.
    SharedImage,
}

/// Why an outputs request is refused before any store access: 400 (malformed) or 403 (a key
/// that is not this task's).
#[derive(Debug, PartialEq)]
pub enum Refused {
    BadRequest(String),
    NotAnOutput(String),
}

impl OutputRequest {
    pub fn parse(namespace: &str, resource: &str, name: &str, key: &str) -> Result<Self, Refused> {
        let bad = |m: String| Err(Refused::BadRequest(m));
        if !is_namespace_name(namespace) {
            return bad(format!(
                "{namespace:?} is not a namespace name: lower-case letters, digits and '-', at most 63"
            ));
        }
        if !RESOURCES.contains(&resource) {
            return bad(format!(
                "{resource:?} is not a task resource: one of {}",
                RESOURCES.join(", ")
            ));
        }
        if !is_object_name(name) {
            return bad(format!(
                "{name:?} is not a task name: lower-case letters, digits, '-' and '.', at most 253"
            ));
        }
        if let Some(why) = malformed_key(key) {
            return bad(format!("the key {key:?} {why}"));
        }
        let kind = resource.trim_end_matches('s');
        let task_area = format!("tasks/{namespace}/{kind}/{name}/");
        let text_area = format!("texts/{namespace}/{name}/");
        let own_text = resource == "texttasks" && key.starts_with(&text_area);
        let area = if key.starts_with(&task_area) || own_text {
            Area::Task
        } else if resource == "imagetasks" && key.starts_with("images/") {
            Area::SharedImage
        } else {
            let mut areas = vec![task_area];
            match resource {
                "texttasks" => areas.push(text_area),
                "imagetasks" => areas.push("images/ (the images its manifest lists)".into()),
                _ => {}
            }
            return Err(Refused::NotAnOutput(format!(
                "the key {key:?} is not an output of {resource}.taskyard.dev {name:?} in namespace {namespace}: \
                 its outputs are under {}",
                areas.join(" and ")
            )));
        };
        Ok(Self {
            namespace: namespace.into(),
            resource: resource.into(),
            name: name.into(),
            key: key.into(),
            area,
        })
    }

    /// Where the task's manifests are: `tasks/<namespace>/<kind>/<name>/`.
    pub fn task_prefix(&self) -> String {
        format!(
            "tasks/{}/{}/{}/",
            self.namespace,
            self.resource.trim_end_matches('s'),
            self.name
        )
    }
}

/// Why a key cannot be a store key here, if it cannot.
fn malformed_key(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("is empty")
    } else if key.len() > 1024 {
        Some("is longer than 1024 bytes")
    } else if key.chars().any(char::is_control) || key.contains('\\') {
        Some("has a control character or backslash")
    } else if key.split('/').any(|s| matches!(s, "" | "." | "..")) {
        Some("has an empty, \".\" or \"..\" segment (or starts with '/')")
    } else {
        None
    }
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    items: Vec<ManifestItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestItem {
    key: Option<String>,
    original_key: Option<String>,
}

/// Whether one of the ImageTask's manifests lists `key` as an item's output or original.
pub async fn listed_in_manifests(store: &Store, request: &OutputRequest) -> Result<bool, String> {
    let mut keys = store.list(&request.task_prefix());
    while let Some(manifest) = keys.try_next().await.map_err(|e| e.to_string())? {
        if !manifest.ends_with("/manifest.json") {
            continue;
        }
        let Some(body) = store
            .get(&manifest, MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| e.to_string())?
        else {
            continue;
        };
        let Ok(parsed) = serde_json::from_slice::<Manifest>(&body) else {
            continue;
        };
        let listed = parsed
            .items
            .iter()
            .any(|i| i.key.as_deref() == Some(&request.key) || i.original_key.as_deref() == Some(&request.key));
        if listed {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The content type an output is served with, by its extension.
pub fn content_type(key: &str) -> &'static str {
    let ext = key
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(resource: &str, name: &str, key: &str) -> Result<Area, Refused> {
        OutputRequest::parse("team-a", resource, name, key).map(|r| r.area)
    }

    #[test]
    fn a_task_s_own_keys_are_its_outputs() {
        let result = "tasks/team-a/hashtask/report/u-1/1/result.json";
        assert_eq!(parse("hashtasks", "report", result), Ok(Area::Task));
        let text = "texts/team-a/page/u-1/2.txt";
        assert_eq!(parse("texttasks", "page", text), Ok(Area::Task));
        let image = "images/ab/ab12.png";
        assert_eq!(parse("imagetasks", "gallery", image), Ok(Area::SharedImage));
        let manifest = "tasks/team-a/imagetask/gallery/u-1/1/manifest.json";
        assert_eq!(parse("imagetasks", "gallery", manifest), Ok(Area::Task));
    }

    #[test]
    fn keys_of_other_namespaces_tasks_and_areas_are_refused() {
        for (resource, name, key) in [
            // another namespace's task of the same name
            ("hashtasks", "report", "tasks/team-b/hashtask/report/u/1/result.json"),
            // another task, another kind
            ("hashtasks", "report", "tasks/team-a/hashtask/other/u/1/result.json"),
            ("hashtasks", "report", "tasks/team-a/imagetask/report/u/1/result.json"),
            // a name that is a prefix of another's
            ("hashtasks", "rep", "tasks/team-a/hashtask/report/u/1/result.json"),
            // areas that are no task's outputs
            ("hashtasks", "report", "uploads/team-a/plugin/x/report.pdf"),
            ("hashtasks", "report", "logs/hashtasks/2026-01-01/x.log"),
            ("hashtasks", "report", "images/ab/ab12.png"),
            ("texttasks", "page", "texts/team-b/page/u/1.txt"),
            ("imagetasks", "page", "texts/team-a/page/u/1.txt"),
        ] {
            let refused = parse(resource, name, key).unwrap_err();
            let Refused::NotAnOutput(m) = refused else {
                panic!("{key}: {refused:?}");
            };
            assert!(m.contains(key) && m.contains("is not an output of"), "{m}");
        }
    }

    #[test]
    fn malformed_requests_are_bad_requests() {
        for (namespace, resource, name, key) in [
            (
                "team-a",
                "hashtasks",
                "report",
                "tasks/team-a/hashtask/report/../../../team-b/x",
            ),
            ("team-a", "hashtasks", "report", "tasks/team-a/hashtask/report//x"),
            ("team-a", "hashtasks", "report", "/tasks/team-a/hashtask/report/x"),
            ("team-a", "hashtasks", "report", "tasks/team-a/hashtask/report/a\\b"),
            ("team-a", "hashtasks", "report", ""),
            ("team-a", "jobs", "report", "tasks/team-a/job/report/x"),
            ("team-a", "hashtasks", "..", "tasks/team-a/hashtask/../x"),
            ("team-a", "hashtasks", "Report", "tasks/team-a/hashtask/Report/x"),
            ("../b", "hashtasks", "report", "tasks/../b/hashtask/report/x"),
        ] {
            let refused = OutputRequest::parse(namespace, resource, name, key).unwrap_err();
            assert!(matches!(refused, Refused::BadRequest(_)), "{key}: {refused:?}");
        }
        let images = OutputRequest::parse("a", "imagetasks", "g", "images/../tasks/b/x").unwrap_err();
        assert!(matches!(images, Refused::BadRequest(_)), "{images:?}");
    }

    #[test]
    fn outputs_are_served_with_their_type() {
        assert_eq!(content_type("tasks/a/x/result.json"), "application/json");
        assert_eq!(content_type("texts/a/p/u/1.txt"), "text/plain; charset=utf-8");
        assert_eq!(content_type("images/ab/x.JPEG"), "image/jpeg");
        assert_eq!(content_type("images/ab/x"), "application/octet-stream");
    }
}

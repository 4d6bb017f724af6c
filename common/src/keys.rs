//! The object store layout (API.md, "Object store layout"). Every key is built here.

use sha2::{Digest, Sha256};
use taskyard_api::{TaskIdentity, TaskKind};

/// `tasks/<namespace>/<kind>/<name>/<uid>/<generation>/`
fn task_prefix(kind: TaskKind, id: &TaskIdentity) -> String {
    format!(
        "tasks/{}/{}/{}/{}/{}",
        id.namespace,
        kind.lower(),
        id.name,
        id.uid,
        id.generation
    )
}

/// Where the runner writes a task's result.
pub fn result_key(kind: TaskKind, id: &TaskIdentity) -> String {
    format!("{}/result.json", task_prefix(kind, id))
}

/// Where an ImageTask's full item list goes.
pub fn manifest_key(kind: TaskKind, id: &TaskIdentity) -> String {
    format!("{}/manifest.json", task_prefix(kind, id))
}

/// Where the runner of a batch Job reports its finished tasks (see `taskyard_api::Batch`).
pub fn batch_report_key(job_name: &str) -> String {
    format!("batches/{job_name}/done.json")
}

/// Where a TextTask's extracted text goes.
pub fn text_key(id: &TaskIdentity) -> String {
    format!("texts/{}/{}/{}/{}.txt", id.namespace, id.name, id.uid, id.generation)
}

/// The folder of a UTC day's HashTask results log segments, `logs/hashtasks/<YYYY-MM-DD>/`.
pub fn hash_log_day_prefix(date: jiff::civil::Date) -> String {
    format!("logs/hashtasks/{date}/")
}

/// A day's whole results log as it was kept before segments; only read, never written, so a
/// day that spans the upgrade still reads whole.
pub fn legacy_hash_log_key(date: jiff::civil::Date) -> String {
    format!("logs/hashtasks/{date}.log")
}

/// A new segment of a day's results log:
/// `logs/hashtasks/<YYYY-MM-DD>/<YYYYMMDDTHHMMSS.nnnnnnnnnZ>-<nonce>.log`.
/// The write time is fixed width so that key order is time order; `nonce` (random, 128 bits)
/// keeps two writers writing in the same nanosecond apart.
pub fn hash_log_segment_key(date: jiff::civil::Date, written_at: jiff::Timestamp, nonce: &str) -> String {
    let utc = written_at.to_zoned(jiff::tz::TimeZone::UTC);
    format!(
        "{}{}.{:09}Z-{nonce}.log",
        hash_log_day_prefix(date),
        utc.strftime("%Y%m%dT%H%M%S"),
        utc.subsec_nanosecond()
    )
}

/// The upload area of a namespace: the only part of the bucket its tasks may read inputs from.
pub fn upload_area(namespace: &str) -> String {
    format!("uploads/{namespace}/")
}

/// The key `spec.source.object` names: the object is a path inside the task's namespace
/// upload area, so `report.pdf` in namespace `team-a` is `uploads/team-a/report.pdf`.
/// Paths that could leave the area (`..`, `.`, empty segments, absolute paths) or cannot be
/// keys are refused with a message that shows the full key.
pub fn upload_key(namespace: &str, object: &str) -> Result<String, String> {
    let area = upload_area(namespace);
    let key = format!("{area}{object}");
    let how = format!("spec.source.object is a path inside the namespace's upload area {area}");
    if object.is_empty() {
        return Err(format!(
            "spec.source.object is empty: {how}; for example report.pdf reads {area}report.pdf"
        ));
    }
    if let Some(relative) = object.strip_prefix('/') {
        return Err(format!(
            "spec.source.object {object:?} is absolute: {how}; write {relative:?} to read {area}{relative}"
        ));
    }
    if let Some(segment) = object.split('/').find(|s| matches!(*s, "" | "." | "..")) {
        return Err(format!(
            "spec.source.object {object:?} (key {key:?}) has a {segment:?} segment: {how}, named without empty, \".\" or \"..\" segments"
        ));
    }
    if object.chars().any(char::is_control) || object.contains('\\') {
        return Err(format!(
            "spec.source.object {object:?} (key {key:?}) has a control character or backslash: {how}; \
             use a plain path such as reports/2026/report.pdf"
        ));
    }
    if key.len() > 1024 {
        return Err(format!(
            "spec.source.object makes a key of {} bytes ({key:.60}...): S3 keys have at most 1024",
            key.len()
        ));
    }
    Ok(key)
}

/// Lower-case hex SHA-256 of an image's source URL: the shared identity of an image.
pub fn url_digest(source_url: &str) -> String {
    hex::encode(Sha256::digest(source_url.as_bytes()))
}

/// Where stored images are shared: by every task of the cluster (the original services'
/// dedup by source URL), or only within one namespace, so that a tenant cannot learn that
/// another fetched a URL (`images.sharing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageScope<'a> {
    Cluster,
    Namespace(&'a str),
}

impl ImageScope<'_> {
    /// `images/` or `images/ns/<namespace>/`: "ns" is no two-hex-digit shard, so the two
    /// never meet.
    fn root(&self) -> String {
        match self {
            ImageScope::Cluster => "images/".into(),
            ImageScope::Namespace(ns) => format!("images/ns/{ns}/"),
        }
    }
}

/// The key of an original image, `<root><d[0:2]>/<d>.<ext>`, with d = sha256(source URL).
pub fn image_key(scope: ImageScope, source_url: &str, ext: &str) -> String {
    let d = url_digest(source_url);
    format!("{}{}/{d}.{ext}", scope.root(), &d[..2])
}

/// Every output parameter of a resized variant.
#[derive(Clone, Copy, Debug)]
pub struct VariantSpec<'a> {
    pub width: u32,
    pub height: u32,
    pub fit: &'a str,
    /// The output format's file extension.
    pub ext: &'a str,
    pub quality: u8,
}

/// The key of a resized variant: `<root><d[0:2]>/<d>-<c>-<w>x<h>-<fit>-q<quality>.<ext>`, with
/// c the first 32 hex digits of sha256 of the original's bytes. It names every output parameter
/// and the content it came from, so different requests never share a file and changed content
/// (a re-uploaded object) is processed again.
pub fn variant_key(scope: ImageScope, source_url: &str, content_sha256: &str, v: VariantSpec) -> String {
    let d = url_digest(source_url);
    let c = &content_sha256[..content_sha256.len().min(32)];
    format!(
        "{}{}/{d}-{c}-{}x{}-{}-q{}.{}",
        scope.root(),
        &d[..2],
        v.width,
        v.height,
        v.fit,
        v.quality,
        v.ext
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> TaskIdentity {
        TaskIdentity {
            namespace: "default".into(),
            name: "t".into(),
            uid: "u-1".into(),
            generation: 3,
        }
    }

    #[test]
    fn task_keys_follow_the_contract() {
        assert_eq!(
            result_key(TaskKind::HashTask, &id()),
            "tasks/default/hashtask/t/u-1/3/result.json"
        );
        assert_eq!(
            manifest_key(TaskKind::ImageTask, &id()),
            "tasks/default/imagetask/t/u-1/3/manifest.json"
        );
        assert_eq!(text_key(&id()), "texts/default/t/u-1/3.txt");
    }

    #[test]
    fn log_segment_keys_sort_in_time_order() {
        let day = jiff::civil::date(2026, 1, 2);
        assert_eq!(hash_log_day_prefix(day), "logs/hashtasks/2026-01-02/");
        assert_eq!(legacy_hash_log_key(day), "logs/hashtasks/2026-01-02.log");
        let key = |at: &str| hash_log_segment_key(day, at.parse().unwrap(), "0f");
        assert_eq!(
            key("2026-01-02T03:04:05.000000007Z"),
            "logs/hashtasks/2026-01-02/20260102T030405.000000007Z-0f.log"
        );
        // Whole seconds still get nine digits, so 05Z never sorts after 05.5Z.
        let times = [
            "2026-01-02T03:04:05Z",
            "2026-01-02T03:04:05.5Z",
            "2026-01-02T03:04:05.500000001Z",
            "2026-01-02T03:04:06Z",
            "2026-01-02T13:00:00Z",
            "2026-01-03T00:00:00Z",
        ];
        let keys: Vec<String> = times.iter().map(|t| key(t)).collect();
        assert!(keys.is_sorted(), "{keys:#?}");
        assert!(keys.iter().all(|k| k.len() == keys[0].len()), "{keys:#?}");
    }

    #[test]
    fn an_object_is_a_path_inside_its_namespace_upload_area() {
        assert_eq!(upload_key("team-a", "report.pdf").unwrap(), "uploads/team-a/report.pdf");
        assert_eq!(
            upload_key("team-a", "a/b c/ü.png").unwrap(),
            "uploads/team-a/a/b c/ü.png"
        );
        // Another namespace's area is just a folder of this one's.
        assert_eq!(
            upload_key("attacker", "uploads/victim/x.txt").unwrap(),
            "uploads/attacker/uploads/victim/x.txt"
        );
        for (object, want) in [
            ("", "is empty"),
            ("/texts/victim/t/u/1.txt", "is absolute"),
            ("../victim/secret.txt", "\"..\" segment"),
            ("a/../../victim/x", "\"..\" segment"),
            ("./x", "\".\" segment"),
            ("a//b", "\"\" segment"),
            ("dir/", "\"\" segment"),
            ("a\\..\\b", "backslash"),
            ("a\nb", "control character"),
        ] {
            let error = upload_key("team-a", object).unwrap_err();
            assert!(error.contains(want), "{object:?}: {error}");
            assert!(error.contains("uploads/team-a/"), "the message shows the area: {error}");
        }
        assert!(upload_key("n", &"x".repeat(1100)).unwrap_err().contains("1024"));
    }

    #[test]
    fn image_keys_are_sharded_by_url_digest() {
        // sha256("https://example.com/a.png"), computed independently with sha256sum.
        let d = "494a30704d4f32ac0b81739d18a66d3638d440cbc6f5669f6af66f840edee5ab";
        let url = "https://example.com/a.png";
        assert_eq!(image_key(ImageScope::Cluster, url, "png"), format!("images/49/{d}.png"));
        assert_eq!(
            image_key(ImageScope::Namespace("team-a"), url, "png"),
            format!("images/ns/team-a/49/{d}.png")
        );
        let content = "ab".repeat(32);
        let v = VariantSpec {
            width: 100,
            height: 50,
            fit: "fill",
            ext: "jpeg",
            quality: 85,
        };
        assert_eq!(
            variant_key(ImageScope::Cluster, url, &content, v),
            format!("images/49/{d}-{}-100x50-fill-q85.jpeg", "ab".repeat(16))
        );
    }

    #[test]
    fn variants_differ_in_every_output_parameter_and_the_content() {
        let url = "https://example.com/a.png";
        let base = VariantSpec {
            width: 100,
            height: 100,
            fit: "fill",
            ext: "jpeg",
            quality: 100,
        };
        let content = "0".repeat(64);
        let key = |v: VariantSpec, c: &str| variant_key(ImageScope::Cluster, url, c, v);
        let all = [
            key(base, &content),
            key(VariantSpec { quality: 1, ..base }, &content),
            key(VariantSpec { width: 101, ..base }, &content),
            key(VariantSpec { height: 99, ..base }, &content),
            key(VariantSpec { fit: "cover", ..base }, &content),
            key(VariantSpec { ext: "png", ..base }, &content),
            key(base, &"1".repeat(64)),
            variant_key(ImageScope::Namespace("b"), url, &content, base),
        ];
        let distinct: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "{all:#?}");
    }
}

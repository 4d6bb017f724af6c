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

/// Where a TextTask's extracted text goes.
pub fn text_key(id: &TaskIdentity) -> String {
    format!("texts/{}/{}/{}/{}.txt", id.namespace, id.name, id.uid, id.generation)
}

/// The daily HashTask results log, for a UTC date.
pub fn hash_log_key(date: jiff::civil::Date) -> String {
    format!("logs/hashtasks/{date}.log")
}

/// Lower-case hex SHA-256 of an image's source URL: the shared identity of an image.
pub fn url_digest(source_url: &str) -> String {
    hex::encode(Sha256::digest(source_url.as_bytes()))
}

/// The shared key of an original image, `images/<d[0:2]>/<d>.<ext>`.
pub fn image_key(source_url: &str, ext: &str) -> String {
    let d = url_digest(source_url);
    format!("images/{}/{d}.{ext}", &d[..2])
}

/// The shared key of a resized variant, `images/<d[0:2]>/<d>-<w>x<h>-<fit>.<ext>`.
pub fn variant_key(source_url: &str, width: u32, height: u32, fit: &str, ext: &str) -> String {
    let d = url_digest(source_url);
    format!("images/{}/{d}-{width}x{height}-{fit}.{ext}", &d[..2])
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
        assert_eq!(
            hash_log_key(jiff::civil::date(2026, 1, 2)),
            "logs/hashtasks/2026-01-02.log"
        );
    }

    #[test]
    fn image_keys_are_sharded_by_url_digest() {
        // sha256("https://example.com/a.png"), computed independently with sha256sum.
        let d = "494a30704d4f32ac0b81739d18a66d3638d440cbc6f5669f6af66f840edee5ab";
        assert_eq!(
            image_key("https://example.com/a.png", "png"),
            format!("images/49/{d}.png")
        );
        assert_eq!(
            variant_key("https://example.com/a.png", 100, 50, "fill", "jpeg"),
            format!("images/49/{d}-100x50-fill.jpeg")
        );
    }
}

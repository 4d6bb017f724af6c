//! The original's documents: a task as returned by POST and single GETs, the Extended JSON
//! of lists (`{"$oid"}`, `{"$date"}`), and image documents.

use serde_json::{Map, Value, json};
use taskyard_api::ImageItem;

use super::{Collect, id_of, page_of, status_word};
use crate::backend::TaskView;

/// `Tue, 24 Nov 2026 01:13:42 GMT`, as Flask wrote dates.
fn http_date(t: jiff::Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn ext_date(t: jiff::Timestamp) -> Value {
    json!({ "$date": t.as_millisecond() })
}

/// A task document; `images` holds the ids of the page's images (image tasks), `text` the
/// text once extracted (text tasks).
pub fn task_doc(view: &TaskView, what: Collect, images: &[String], text: Option<String>) -> Value {
    let mut doc = Map::new();
    doc.insert("_id".into(), json!(id_of(view)));
    doc.insert("_cls".into(), json!(what.class()));
    doc.insert("url".into(), json!(page_of(view)));
    doc.insert("status".into(), json!(status_word(view)));
    doc.insert("date_created".into(), json!(http_date(view.created)));
    // New: why a task ended in error (the original kept it to its worker's log).
    if status_word(view) == "error" {
        doc.insert("error".into(), json!(view.message()));
    }
    match what {
        Collect::Images => {
            doc.insert("images".into(), json!(images));
        }
        Collect::Text => {
            if let Some(text) = text {
                doc.insert("text".into(), json!(text));
            }
        }
    }
    Value::Object(doc)
}

/// A list item: Extended JSON, no `images`.
pub fn list_item(view: &TaskView, what: Collect, text: Option<String>) -> Value {
    let mut doc = Map::new();
    doc.insert("_id".into(), json!({ "$oid": id_of(view) }));
    doc.insert("_cls".into(), json!(what.class()));
    doc.insert("url".into(), json!(page_of(view)));
    doc.insert("status".into(), json!(status_word(view)));
    doc.insert("date_created".into(), ext_date(view.created));
    if let Some(text) = text {
        doc.insert("text".into(), json!(text));
    }
    Value::Object(doc)
}

/// An image's id: the first 24 hex digits of SHA-256 of its source URL, so one URL is one
/// image across all tasks, as the original's records were.
pub fn image_id(src: &str) -> String {
    taskyard_common::keys::url_digest(src)[..24].to_string()
}

/// Where an image is served: `/media/<file name of its stored original>`.
pub fn storage_url(key: &str) -> String {
    format!("/media/{}", key.rsplit('/').next().unwrap_or(key))
}

/// An image document. `tasks` are the ids of every image task that found it, `first_seen`
/// the creation of the first; `stored` is the stored original's key, if any task stored it.
pub fn image_doc(item: &ImageItem, stored: Option<&str>, tasks: &[String], first_seen: jiff::Timestamp) -> Value {
    let status = match (stored, item.state) {
        (Some(_), _) => "success",
        (None, taskyard_api::ItemState::Failed) => "error",
        (None, _) => "waiting",
    };
    let mut doc = Map::new();
    doc.insert("_id".into(), json!({ "$oid": image_id(&item.source) }));
    doc.insert("src".into(), json!(item.source));
    doc.insert("status".into(), json!(status));
    if let Some(key) = stored {
        doc.insert("storage_url".into(), json!(storage_url(key)));
    }
    if let Some(error) = &item.error {
        doc.insert("error".into(), json!(error));
    }
    doc.insert("date_created".into(), ext_date(first_seen));
    let tasks: Vec<Value> = tasks.iter().map(|t| json!({ "$oid": t })).collect();
    doc.insert("tasks".into(), Value::Array(tasks));
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_ids_and_media_names() {
        let t: jiff::Timestamp = "2026-11-24T01:13:42.5Z".parse().unwrap();
        assert_eq!(http_date(t), "Tue, 24 Nov 2026 01:13:42 GMT");
        assert_eq!(ext_date(t), json!({"$date": 1_795_482_822_500i64}));
        let id = image_id("https://example.com/a.png");
        assert_eq!(id.len(), 24);
        assert_eq!(id, image_id("https://example.com/a.png"));
        assert_ne!(id, image_id("https://example.com/b.png"));
        assert_eq!(storage_url("images/ab/abcd.png"), "/media/abcd.png");
    }
}

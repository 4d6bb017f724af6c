//! A task as the own API shows it: its phase and why it failed, its spec and status as the
//! resource has them, and its outputs as links.

use serde_json::{Value, json};
use taskyard_api::TaskKind;

use crate::backend::{Status, TaskView};

/// Where the API shows the task `kind`/`name`.
pub fn url(kind: TaskKind, name: &str) -> String {
    format!("/v1/tasks/{}/{name}", kind.as_str())
}

/// One stored output of a task.
pub struct Output {
    pub key: String,
    pub content_type: String,
    /// What the document says of it beside its link (source, size).
    pub about: Value,
}

/// The task's stored outputs, in the order `/outputs/{n}` numbers them: an ImageTask's
/// stored images, a TextTask's text.
pub fn outputs(view: &TaskView) -> Vec<Output> {
    match &view.status {
        Status::Hash(_) => Vec::new(),
        Status::Image(s) => s
            .items
            .iter()
            .filter_map(|item| {
                Some(Output {
                    key: item.key.clone()?,
                    content_type: item.content_type.clone().unwrap_or_else(|| "application/octet-stream".into()),
                    about: json!({"source": item.source, "width": item.width, "height": item.height, "bytes": item.bytes}),
                })
            })
            .collect(),
        Status::Text(s) => s
            .text
            .iter()
            .map(|t| Output {
                key: t.key.clone(),
                content_type: "text/plain; charset=utf-8".into(),
                about: json!({"characters": t.characters, "words": t.words, "lines": t.lines}),
            })
            .collect(),
    }
}

pub fn document(view: &TaskView) -> Value {
    let base = url(view.kind, &view.name);
    let status = match &view.status {
        Status::Hash(s) => serde_json::to_value(s),
        Status::Image(s) => serde_json::to_value(s),
        Status::Text(s) => serde_json::to_value(s),
    }
    .unwrap_or(Value::Null);
    let spec = serde_json::to_value(&view.spec)
        .ok()
        .and_then(|mut v| v.get_mut("spec").map(Value::take))
        .unwrap_or(Value::Null);
    let outputs: Vec<Value> = outputs(view)
        .into_iter()
        .enumerate()
        .map(|(n, out)| {
            let mut doc = json!({"url": format!("{base}/outputs/{n}"), "contentType": out.content_type});
            if let (Some(doc), Value::Object(about)) = (doc.as_object_mut(), out.about) {
                doc.extend(about);
            }
            doc
        })
        .collect();
    json!({
        "kind": view.kind.as_str(),
        "name": view.name,
        "created": view.created.to_string(),
        "phase": view.phase(),
        "message": view.message(),
        "spec": spec,
        "status": status,
        "outputs": outputs,
    })
}

//! The five replaced services' REST APIs, path for path (SEED-APIS.md), each in its own file.

pub mod collector;
pub mod img_rest;
pub mod md5;
pub mod md5_ids;
pub mod resize_b64;
pub mod resize_form;

use axum::Router;
use serde_json::{Value, json};
use taskyard_api::TaskSpec;

use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(collector::routes())
        .merge(md5::routes())
        .merge(resize_b64::routes())
        .merge(resize_form::routes())
        .merge(img_rest::routes())
}

/// A task spec of `kind` from its YAML-like form, with the CRD's defaults filled in.
pub fn spec(kind: &str, spec: Value) -> TaskSpec {
    serde_json::from_value(json!({"kind": kind, "spec": spec})).expect("the gateway builds only valid specs")
}

/// An ImageTask resizing one uploaded object to exactly `width` x `height` (aspect ignored,
/// as every replaced resize service did).
pub fn exact_resize(object: &str, width: u32, height: u32, format: &str, quality: u8) -> TaskSpec {
    spec(
        "ImageTask",
        json!({
            "source": {"object": object},
            "resize": {"width": width, "height": height, "fit": "fill", "format": format, "quality": quality},
        }),
    )
}

/// The store key of an ImageTask's first output (the resized image), once it succeeded.
pub fn first_output(view: &crate::backend::TaskView) -> Option<(String, String)> {
    let crate::backend::Status::Image(status) = &view.status else {
        return None;
    };
    let item = status.items.first()?;
    Some((item.key.clone()?, item.content_type.clone()?))
}

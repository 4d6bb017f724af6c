//! Bounds on what goes into `result.json` and so into status: the operator reads at most
//! 4 MiB of it and etcd stores at most 1.5 MiB of an object. Long strings are cut (the whole
//! values stay in the manifest), so the result's size is bounded by construction: at most
//! 50 items of a few KiB each plus a few fixed fields, well under 256 KiB.

use taskyard_api::{ImageItem, TaskOutput, TaskResult};

/// Characters kept of a result's message.
pub const MESSAGE_CHARS: usize = 2000;
/// Characters kept of a title.
pub const TITLE_CHARS: usize = 200;
/// Characters kept of a URL or key in an item.
pub const URL_CHARS: usize = 512;
/// Characters kept of an item's error.
pub const ERROR_CHARS: usize = 1000;
/// Items kept in a result; the manifest has them all.
pub const STATUS_ITEMS: usize = 50;

/// `s` cut to at most `max` characters, marked with an ellipsis when cut.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max.saturating_sub(1)) {
        Some((end, _)) if s.len() > end + s[end..].chars().next().map_or(0, char::len_utf8) => {
            format!("{}…", &s[..end])
        }
        _ => s.to_string(),
    }
}

fn clip_in_place(s: &mut String, max: usize) {
    if s.chars().count() > max {
        *s = clip(s, max);
    }
}

/// An item as status shows it: URLs, keys and the error cut.
pub fn bound_item(item: &mut ImageItem) {
    clip_in_place(&mut item.source, URL_CHARS);
    for s in [&mut item.key, &mut item.original_key].into_iter().flatten() {
        clip_in_place(s, URL_CHARS);
    }
    if let Some(e) = item.error.as_mut() {
        clip_in_place(e, ERROR_CHARS);
    }
}

/// Cuts every unbounded part of a result.
pub fn bound_result(result: &mut TaskResult) {
    clip_in_place(&mut result.message, MESSAGE_CHARS);
    match result.output.as_mut() {
        Some(TaskOutput::Image(out)) => {
            out.items.truncate(STATUS_ITEMS);
            out.items.iter_mut().for_each(bound_item);
        }
        Some(TaskOutput::Text(out)) => {
            if let Some(t) = out.title.as_mut() {
                clip_in_place(t, TITLE_CHARS);
            }
            clip_in_place(&mut out.preview, crate::bounds::TITLE_CHARS);
        }
        Some(TaskOutput::Hash(_)) | None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_on_character_boundaries() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "ab…");
        assert_eq!(clip("日本語です", 3), "日本…");
        assert_eq!(clip("日本語", 3), "日本語");
        assert_eq!(clip("", 3), "");
    }
}

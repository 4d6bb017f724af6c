//! The form fields of `POST /v1/tasks` turned into a task spec, with an error that says what
//! is wrong and what to send instead. Pure: no store, no HTTP.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use taskyard_api::TaskSpec;

/// The fields the API reads besides `file`, and their longest accepted value.
pub const FIELDS: [&str; 7] = ["action", "algorithms", "width", "height", "fit", "format", "quality"];
pub const FIELD_MAX_BYTES: usize = 100;

const ACTIONS: &str = "hash, resize or text";
const ALGORITHMS: [&str; 4] = ["md5", "sha1", "sha256", "sha512"];
const FITS: [&str; 3] = ["contain", "fill", "cover"];
const FORMATS: [&str; 4] = ["original", "jpeg", "png", "webp"];
const MAX_SIDE: u32 = 10_000;

/// What to do with the uploaded object, from the form's text fields.
pub fn spec(fields: &BTreeMap<String, String>, object: &str) -> Result<TaskSpec, String> {
    let get = |name: &str| fields.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let (kind, spec) = match get("action") {
        Some("hash") => (
            "HashTask",
            json!({"source": {"object": object}, "algorithms": algorithms(get("algorithms"))?}),
        ),
        Some("resize") => (
            "ImageTask",
            json!({"source": {"object": object}, "resize": resize(&get)?}),
        ),
        Some("text") => ("TextTask", json!({"source": {"object": object}})),
        Some(other) => return Err(format!("the action {other:?} is unknown: send action={ACTIONS}")),
        None => return Err(format!("the form has no action: send action={ACTIONS} before the file")),
    };
    serde_json::from_value(json!({"kind": kind, "spec": spec}))
        .map_err(|e| format!("the {kind} built from the form is invalid: {e}"))
}

/// `md5,sha256` (commas or spaces); MD5 alone when not given.
fn algorithms(list: Option<&str>) -> Result<Vec<&str>, String> {
    let Some(list) = list else {
        return Ok(vec!["md5"]);
    };
    let mut chosen = Vec::new();
    for name in list.split([',', ' ']).filter(|s| !s.is_empty()) {
        let Some(known) = ALGORITHMS.iter().find(|a| a.eq_ignore_ascii_case(name)) else {
            return Err(format!(
                "the algorithm {name:?} is unknown: choose among {}",
                ALGORITHMS.join(", ")
            ));
        };
        if !chosen.contains(known) {
            chosen.push(*known);
        }
    }
    if chosen.is_empty() {
        return Err(format!(
            "algorithms is empty: name one or more of {}",
            ALGORITHMS.join(", ")
        ));
    }
    Ok(chosen)
}

fn resize<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Value, String> {
    let side = |name: &str| -> Result<u32, String> {
        let value = get(name).ok_or_else(|| format!("a resize needs {name}: send {name}=1..{MAX_SIDE} (pixels)"))?;
        match value.parse::<u32>() {
            Ok(n) if (1..=MAX_SIDE).contains(&n) => Ok(n),
            _ => Err(format!(
                "{name} {value:?} is not a whole number of pixels from 1 to {MAX_SIDE}"
            )),
        }
    };
    let one_of = |name: &str, allowed: &[&str], default: &str| -> Result<String, String> {
        let value = get(name).unwrap_or(default).to_ascii_lowercase();
        if allowed.contains(&value.as_str()) {
            Ok(value)
        } else {
            Err(format!(
                "{name} {value:?} is unknown: choose among {}",
                allowed.join(", ")
            ))
        }
    };
    let quality = match get("quality") {
        None => 85,
        Some(q) => match q.parse::<u8>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => return Err(format!("quality {q:?} is not a whole number from 1 to 100")),
        },
    };
    Ok(json!({
        "width": side("width")?,
        "height": side("height")?,
        "fit": one_of("fit", &FITS, "contain")?,
        "format": one_of("format", &FORMATS, "original")?,
        "quality": quality,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskyard_api::{Fit, HashAlgorithm, OutputFormat};

    fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn hash_takes_the_algorithms_named_once_each() {
        let TaskSpec::HashTask(s) =
            spec(&form(&[("action", "hash"), ("algorithms", "SHA256, md5 sha256")]), "a").unwrap()
        else {
            panic!("not a HashTask");
        };
        assert_eq!(s.algorithms, vec![HashAlgorithm::Sha256, HashAlgorithm::Md5]);
        assert_eq!(s.source.object.as_deref(), Some("a"));
        let TaskSpec::HashTask(s) = spec(&form(&[("action", "hash")]), "a").unwrap() else {
            panic!("not a HashTask");
        };
        assert_eq!(s.algorithms, vec![HashAlgorithm::Md5], "MD5 when none is named");
    }

    #[test]
    fn resize_reads_size_fit_format_and_quality() {
        let f = form(&[
            ("action", "resize"),
            ("width", "64"),
            ("height", "48"),
            ("fit", "Cover"),
            ("format", "png"),
        ]);
        let TaskSpec::ImageTask(s) = spec(&f, "a").unwrap() else {
            panic!("not an ImageTask");
        };
        let r = s.resize.unwrap();
        assert_eq!(
            (r.width, r.height, r.fit, r.format, r.quality),
            (64, 48, Fit::Cover, OutputFormat::Png, 85)
        );
    }

    #[test]
    fn text_reads_the_object() {
        assert!(matches!(
            spec(&form(&[("action", "text")]), "a").unwrap(),
            TaskSpec::TextTask(_)
        ));
    }

    #[test]
    fn bad_forms_say_what_to_send() {
        let cases: [(&[(&str, &str)], &str); 8] = [
            (&[], "the form has no action: send action=hash, resize or text"),
            (&[("action", "zip")], "the action \"zip\" is unknown"),
            (
                &[("action", "hash"), ("algorithms", "crc32")],
                "the algorithm \"crc32\" is unknown: choose among md5",
            ),
            (&[("action", "hash"), ("algorithms", ", ,")], "algorithms is empty"),
            (&[("action", "resize"), ("height", "5")], "a resize needs width"),
            (
                &[("action", "resize"), ("width", "0"), ("height", "5")],
                "width \"0\" is not a whole number of pixels from 1 to 10000",
            ),
            (
                &[
                    ("action", "resize"),
                    ("width", "5"),
                    ("height", "5"),
                    ("fit", "stretch"),
                ],
                "fit \"stretch\" is unknown: choose among contain, fill, cover",
            ),
            (
                &[
                    ("action", "resize"),
                    ("width", "5"),
                    ("height", "5"),
                    ("quality", "101"),
                ],
                "quality \"101\" is not a whole number from 1 to 100",
            ),
        ];
        for (pairs, expected) in cases {
            let e = spec(&form(pairs), "a").unwrap_err();
            assert!(e.contains(expected), "{pairs:?}: {e}");
        }
    }
}

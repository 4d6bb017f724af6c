//! The task resources the plugin creates (pure, unit-tested): a kind, a spec from the
//! command's options, and a manifest with a generated or given name.

use serde_json::{Value, json};

use crate::cli::ResizeOptions;

/// A task to create.
#[derive(Debug, PartialEq)]
pub struct NewTask {
    /// `HashTask`, `ImageTask` or `TextTask`.
    pub kind: &'static str,
    pub spec: Value,
    /// The name prefix when no name is given (the API server completes it).
    pub prefix: &'static str,
}

/// The resource name of a kind (`hashtasks`): what RBAC and the gateway check.
pub fn resource(kind: &str) -> String {
    format!("{}s", kind.to_ascii_lowercase())
}

pub fn hash(object: &str, algorithms: &str) -> Result<NewTask, String> {
    let algorithms: Vec<&str> = algorithms.split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
    if let Some(bad) = algorithms
        .iter()
        .find(|a| !matches!(**a, "md5" | "sha1" | "sha256" | "sha512"))
    {
        return Err(format!("--algorithms: {bad:?} is not one of md5, sha1, sha256, sha512"));
    }
    if algorithms.is_empty() {
        return Err("--algorithms is empty: name at least one of md5, sha1, sha256, sha512".into());
    }
    Ok(NewTask {
        kind: "HashTask",
        spec: json!({"source": {"object": object}, "algorithms": algorithms}),
        prefix: "hash-",
    })
}

/// The `resize` member of an ImageTask spec, or None when no size was given.
pub fn resize(r: &ResizeOptions) -> Result<Option<Value>, String> {
    let (width, height) = match (r.width, r.height) {
        (None, None) if r.fit.is_none() && r.format.is_none() && r.quality.is_none() => return Ok(None),
        (None, None) => return Err("a resize needs --width and/or --height".into()),
        (Some(w), None) => (w, w),
        (None, Some(h)) => (h, h),
        (Some(w), Some(h)) => (w, h),
    };
    for (flag, v) in [("--width", width), ("--height", height)] {
        if !(1..=10_000).contains(&v) {
            return Err(format!("{flag} {v} is out of range: 1 to 10000 pixels"));
        }
    }
    let mut spec = json!({"width": width, "height": height});
    if let Some(fit) = &r.fit {
        if !matches!(fit.as_str(), "contain" | "cover" | "fill") {
            return Err(format!("--fit {fit:?}: one of contain, cover, fill"));
        }
        spec["fit"] = json!(fit);
    }
    if let Some(format) = &r.format {
        if !matches!(format.as_str(), "original" | "jpeg" | "png" | "webp") {
            return Err(format!("--format {format:?}: one of original, jpeg, png, webp"));
        }
        spec["format"] = json!(format);
    }
    if let Some(q) = r.quality {
        if !(1..=100).contains(&q) {
            return Err(format!("--quality {q} is out of range: 1 to 100"));
        }
        spec["quality"] = json!(q);
    }
    Ok(Some(spec))
}

pub fn resize_object(object: &str, r: &ResizeOptions) -> Result<NewTask, String> {
    let resize = resize(r)?.ok_or("resize needs --width and/or --height")?;
    Ok(NewTask {
        kind: "ImageTask",
        spec: json!({"source": {"object": object}, "resize": resize}),
        prefix: "resize-",
    })
}

pub fn images(page: &str, r: &ResizeOptions, max_images: Option<u32>) -> Result<NewTask, String> {
    web_url(page)?;
    let mut spec = json!({"source": {"page": page}});
    if let Some(resize) = resize(r)? {
        spec["resize"] = resize;
    }
    if let Some(n) = max_images {
        spec["maxImages"] = json!(n);
    }
    Ok(NewTask {
        kind: "ImageTask",
        spec,
        prefix: "images-",
    })
}

/// A TextTask of a page (`page`) or of an uploaded object (`object`).
pub fn text(source: (&str, &str)) -> NewTask {
    let (member, value) = source;
    NewTask {
        kind: "TextTask",
        spec: json!({"source": {member: value}}),
        prefix: "text-",
    }
}

/// Whether a command's source is a web address rather than a local file.
pub fn is_web_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn web_url(s: &str) -> Result<(), String> {
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(format!("{s:?} is not an http(s) URL")),
    }
}

/// The resource to create in `namespace`.
pub fn manifest(task: &NewTask, namespace: &str, name: Option<&str>) -> Value {
    let mut metadata = json!({
        "namespace": namespace,
        "labels": {"app.kubernetes.io/created-by": "kubectl-taskyard"},
    });
    match name {
        Some(name) => metadata["name"] = json!(name),
        None => metadata["generateName"] = json!(task.prefix),
    }
    json!({
        "apiVersion": "taskyard.dev/v1alpha1",
        "kind": task.kind,
        "metadata": metadata,
        "spec": task.spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(w: Option<u32>, h: Option<u32>) -> ResizeOptions {
        ResizeOptions {
            width: w,
            height: h,
            fit: None,
            format: None,
            quality: None,
        }
    }

    #[test]
    fn a_hash_task_of_an_uploaded_object() {
        let t = hash("plugin/1/a.bin", "md5, sha256").unwrap();
        assert_eq!(
            t.spec,
            json!({"source": {"object": "plugin/1/a.bin"}, "algorithms": ["md5", "sha256"]})
        );
        assert_eq!(resource(t.kind), "hashtasks");
        assert!(hash("x", "crc32").unwrap_err().contains("crc32"));
    }

    #[test]
    fn resize_sizes_and_options() {
        assert_eq!(resize(&size(None, None)).unwrap(), None);
        assert_eq!(
            resize(&size(Some(200), None)).unwrap(),
            Some(json!({"width": 200, "height": 200}))
        );
        let mut r = size(Some(20), Some(10));
        r.fit = Some("fill".into());
        r.format = Some("png".into());
        assert_eq!(
            resize(&r).unwrap(),
            Some(json!({"width": 20, "height": 10, "fit": "fill", "format": "png"}))
        );
        assert!(resize(&size(Some(0), None)).unwrap_err().contains("--width 0"));
        r.fit = Some("stretch".into());
        assert!(resize(&r).unwrap_err().contains("--fit"));
        assert!(resize_object("o", &size(None, None)).is_err());
    }

    #[test]
    fn pages_must_be_web_urls() {
        assert!(images("ftp://x/", &size(None, None), None).is_err());
        let t = images("https://example.com/", &size(None, None), Some(5)).unwrap();
        assert_eq!(
            t.spec,
            json!({"source": {"page": "https://example.com/"}, "maxImages": 5})
        );
        assert!(is_web_url("https://a/") && !is_web_url("./https.txt"));
    }

    #[test]
    fn manifests_have_a_name_or_a_generated_one() {
        let t = text(("page", "https://example.com/"));
        let m = manifest(&t, "team-a", None);
        assert_eq!(m["metadata"]["generateName"], "text-");
        assert_eq!(m["metadata"]["namespace"], "team-a");
        assert_eq!(m["kind"], "TextTask");
        let m = manifest(&t, "team-a", Some("mine"));
        assert_eq!(m["metadata"]["name"], "mine");
        assert!(m["metadata"].get("generateName").is_none());
    }
}

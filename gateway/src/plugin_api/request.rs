//! What a plugin upload asks for, read from its path, query and headers (pure, unit-tested).

use axum::http::{HeaderMap, header};
use serde::Deserialize;

use super::TOKEN_HEADER;
use super::review::Access;
use crate::settings::Limits;

/// The task kinds an upload can be for, by resource name.
pub const RESOURCES: [&str; 3] = ["hashtasks", "imagetasks", "texttasks"];

#[derive(Debug, Default, Deserialize)]
pub struct Query {
    /// The task kind the upload is for (`hashtasks`, ...): the permission checked.
    #[serde(rename = "for")]
    pub for_resource: Option<String>,
    /// The local file's name, kept at the end of the object's key.
    pub filename: Option<String>,
}

/// A checked upload request.
#[derive(Debug, PartialEq)]
pub struct Upload {
    pub access: Access,
    pub filename: String,
}

impl Upload {
    pub fn parse(namespace: &str, query: &Query) -> Result<Self, String> {
        if !is_namespace_name(namespace) {
            return Err(format!(
                "{namespace:?} is not a namespace name: lower-case letters, digits and '-', at most 63"
            ));
        }
        let resource = query.for_resource.as_deref().unwrap_or_default();
        if !RESOURCES.contains(&resource) {
            return Err(format!(
                "?for={resource:?}: say which task kind the upload is for, one of {}",
                RESOURCES.join(", ")
            ));
        }
        Ok(Self {
            access: Access::create(namespace, resource),
            filename: safe_name(query.filename.as_deref().unwrap_or_default()),
        })
    }

    /// Images are bounded tighter than other uploads, as everywhere in the gateway.
    pub fn limit(&self, limits: &Limits) -> u64 {
        match self.access.resource.as_str() {
            "imagetasks" => limits.max_image_bytes,
            _ => limits.max_upload_bytes,
        }
    }

    /// The object (inside the namespace's upload area): unique, ending in the file's name.
    pub fn object(&self, id: &str) -> String {
        format!("plugin/{id}/{}", self.filename)
    }
}

/// The token of `X-Taskyard-Token`, else of `Authorization: Bearer`.
pub fn token(headers: &HeaderMap) -> Option<&str> {
    let own = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok());
    let bearer = || {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(token)
    };
    own.or_else(bearer).map(str::trim).filter(|t| !t.is_empty())
}

pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

pub fn is_namespace_name(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= 63
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !ns.starts_with('-')
        && !ns.ends_with('-')
}

/// The file's base name in safe characters (letters, digits, `.`, `-`, `_`), at most 100; a
/// name with nothing left is `upload`.
fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let safe: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if safe.trim_matches('.').is_empty() {
        "upload".into()
    } else {
        safe
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn query(resource: &str, filename: &str) -> Query {
        Query {
            for_resource: Some(resource.into()),
            filename: Some(filename.into()),
        }
    }

    #[test]
    fn an_upload_names_a_task_kind_and_a_namespace() {
        let u = Upload::parse("team-a", &query("hashtasks", "report.pdf")).unwrap();
        assert_eq!(u.access.resource, "hashtasks");
        assert_eq!(u.object("id1"), "plugin/id1/report.pdf");
        let e = Upload::parse("team-a", &query("jobs", "x")).unwrap_err();
        assert!(e.contains("hashtasks, imagetasks, texttasks"), "{e}");
        let e = Upload::parse("Team_A", &query("hashtasks", "x")).unwrap_err();
        assert!(e.contains("namespace name"), "{e}");
    }

    #[test]
    fn file_names_cannot_leave_the_upload_area() {
        for (given, kept) in [
            ("../../etc/passwd", "passwd"),
            ("C:\\photos\\cat 1.jpg", "cat_1.jpg"),
            ("..", "upload"),
            ("", "upload"),
            ("é.txt", "_.txt"),
        ] {
            let u = Upload::parse("a", &query("texttasks", given)).unwrap();
            assert_eq!(u.filename, kept, "{given}");
        }
    }

    #[test]
    fn the_token_comes_from_the_own_header_or_the_bearer() {
        let mut h = HeaderMap::new();
        assert_eq!(token(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(token(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(token(&h), Some("abc"));
        h.insert(TOKEN_HEADER, HeaderValue::from_static("own"));
        assert_eq!(token(&h), Some("own"));
    }

    #[test]
    fn images_have_the_image_limit() {
        let limits = Limits {
            max_upload_bytes: 100,
            max_image_bytes: 10,
        };
        let image = Upload::parse("a", &query("imagetasks", "x.png")).unwrap();
        let hash = Upload::parse("a", &query("hashtasks", "x")).unwrap();
        assert_eq!((image.limit(&limits), hash.limit(&limits)), (10, 100));
    }
}

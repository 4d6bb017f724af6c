//! Checks the API server's schema cannot make: that a URL is fetchable and allowed, that a
//! store object exists. A failure here is the user's to fix (`InvalidSpec`), except a store
//! that cannot be asked, which is retried.

use taskyard_api::SourceRef;
use taskyard_common::keys::upload_key;
use taskyard_common::netpolicy::{NetworkPolicy, ResolveError};
use taskyard_common::store::Store;
use url::Url;

/// Why a spec cannot run.
#[derive(Debug, PartialEq, Eq)]
pub enum Invalid {
    /// The user must change the spec; the message says how.
    Spec(String),
    /// Could not check now (the store did not answer); try again later.
    Transient(String),
}

/// The pure part: the URL's form.
pub fn check_url(field: &str, url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url)
        .map_err(|e| format!("{field} {url:?} is not a valid URL ({e}); write an absolute http or https URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "{field} {url:?} uses {}: only http and https URLs are fetched",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{field} {url:?} has no host"));
    }
    Ok(parsed)
}

/// Checks a task's source before its Job is created. A store object must lie in the task's
/// own namespace upload area.
pub async fn check_source(
    source: SourceRef<'_>,
    namespace: &str,
    policy: &NetworkPolicy,
    store: &Store,
) -> Result<(), Invalid> {
    match source {
        SourceRef::Page(url) | SourceRef::Url(url) => {
            let field = if matches!(source, SourceRef::Page(_)) {
                "spec.source.page"
            } else {
                "spec.source.url"
            };
            let parsed = check_url(field, url).map_err(Invalid::Spec)?;
            let host = parsed.host_str().unwrap_or_default();
            let port = parsed.port_or_known_default().unwrap_or(80);
            match policy.resolve(host, port).await {
                Ok(_) => Ok(()),
                Err(ResolveError::Blocked(b)) => Err(Invalid::Spec(format!("{field}: {b}"))),
                // The runner resolves again and reports a name that does not resolve; a
                // lookup failing here may be the operator's resolver, not the user's URL.
                Err(ResolveError::Lookup { .. }) => Ok(()),
            }
        }
        SourceRef::Object(path) => {
            let key = upload_key(namespace, path).map_err(Invalid::Spec)?;
            check_object(&key, path, store).await
        }
    }
}

async fn check_object(key: &str, path: &str, store: &Store) -> Result<(), Invalid> {
    match store.size(key).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(Invalid::Spec(format!(
            "spec.source.object {path:?} (key {key:?}) does not exist in the store bucket; upload it there first \
             or fix the path, which is relative to the namespace's upload area"
        ))),
        Err(taskyard_common::store::StoreError::InvalidKey { key, why }) => Err(Invalid::Spec(format!(
            "spec.source.object {path:?} (key {key:?}) is not a valid key: {why}"
        ))),
        Err(e) => Err(Invalid::Transient(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use taskyard_common::store::DirStore;

    use super::*;

    #[test]
    fn url_form_is_explained() {
        assert!(check_url("spec.source.url", "https://example.com/a").is_ok());
        assert!(
            check_url("spec.source.url", "ftp://example.com/a")
                .unwrap_err()
                .contains("only http and https")
        );
        assert!(
            check_url("spec.source.url", "not a url")
                .unwrap_err()
                .contains("not a valid URL")
        );
    }

    #[tokio::test]
    async fn blocked_networks_and_missing_objects_are_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Dir(DirStore::new(dir.path()));
        let policy = NetworkPolicy::default();
        let Err(Invalid::Spec(m)) =
            check_source(SourceRef::Url("http://127.0.0.1:8080/x"), "ns", &policy, &store).await
        else {
            panic!("loopback accepted")
        };
        assert!(m.contains("loopback") && m.contains("runner.allowedNetworks"), "{m}");
        let Err(Invalid::Spec(m)) =
            check_source(SourceRef::Page("http://169.254.169.254/"), "ns", &policy, &store).await
        else {
            panic!("metadata address accepted")
        };
        assert!(m.starts_with("spec.source.page"), "{m}");
        let allowed = NetworkPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert_eq!(
            check_source(SourceRef::Url("http://127.0.0.1:8080/x"), "ns", &allowed, &store).await,
            Ok(())
        );

        let Err(Invalid::Spec(m)) = check_source(SourceRef::Object("missing.bin"), "ns", &policy, &store).await else {
            panic!("missing object accepted")
        };
        assert!(
            m.contains("does not exist") && m.contains("uploads/ns/missing.bin"),
            "{m}"
        );
        std::fs::create_dir_all(dir.path().join("uploads/ns")).unwrap();
        std::fs::write(dir.path().join("uploads/ns/here.bin"), b"x").unwrap();
        assert_eq!(
            check_source(SourceRef::Object("here.bin"), "ns", &policy, &store).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn a_task_reads_only_its_own_namespace_upload_area() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Dir(DirStore::new(dir.path()));
        let policy = NetworkPolicy::default();
        // Namespace "victim" has an upload, a text, a result and the results log.
        for key in [
            "uploads/victim/private.pdf",
            "texts/victim/t/uid/1.txt",
            "tasks/victim/hashtask/t/uid/1/result.json",
            "logs/hashtasks/2026-11-28/segment.log",
        ] {
            let path = dir.path().join(key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"secret").unwrap();
        }
        for object in [
            "../victim/private.pdf",
            "../../uploads/victim/private.pdf",
            "/uploads/victim/private.pdf",
            "../../texts/victim/t/uid/1.txt",
            "/tasks/victim/hashtask/t/uid/1/result.json",
            "../../logs/hashtasks/2026-11-28/segment.log",
            "uploads/victim/private.pdf",
            "",
        ] {
            let checked = check_source(SourceRef::Object(object), "attacker", &policy, &store).await;
            let Err(Invalid::Spec(m)) = checked else {
                panic!("{object:?} from namespace attacker was accepted")
            };
            assert!(m.contains("uploads/attacker/"), "{object:?}: {m}");
        }
        assert_eq!(
            check_source(SourceRef::Object("private.pdf"), "victim", &policy, &store).await,
            Ok(())
        );
    }
}

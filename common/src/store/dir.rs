//! A directory used as the object store, with the bucket's key layout.

use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use super::{ByteChunks, Keys, PutOutcome, StoreError};

const READ_CHUNK: usize = 1 << 20;

#[derive(Clone, Debug)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Maps a key to a path under the root, refusing keys that would leave it.
    pub(super) fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let invalid = |why| StoreError::InvalidKey { key: key.into(), why };
        if key.is_empty() || key.ends_with('/') {
            return Err(invalid("a key names a file: it is not empty and does not end with /"));
        }
        let rel = Path::new(key);
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(invalid("a key is relative and has no . or .. parts"));
        }
        Ok(self.root.join(rel))
    }

    fn backend(op: &'static str, key: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            op,
            key: key.into(),
            message: e.to_string(),
        }
    }

    pub async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match tokio::fs::metadata(self.path(key)?).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::backend("stat", key, e)),
        }
    }

    pub async fn open(&self, key: &str) -> Result<ByteChunks, StoreError> {
        let file = match tokio::fs::File::open(self.path(key)?).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound { key: key.into() });
            }
            Err(e) => return Err(Self::backend("open", key, e)),
        };
        let key = key.to_string();
        let chunks =
            ReaderStream::with_capacity(file, READ_CHUNK).map(move |r| r.map_err(|e| Self::backend("read", &key, e)));
        Ok(Box::pin(chunks))
    }

    /// Creates a temporary file beside the target, so readers never see half an object.
    async fn create_temp(&self, key: &str) -> Result<(tokio::fs::File, PathBuf, PathBuf), StoreError> {
        let path = self.path(key)?;
        let dir = path.parent().expect("a key path has a parent");
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Self::backend("mkdir", key, e))?;
        let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), uuid_like()));
        let f = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| Self::backend("create", key, e))?;
        Ok((f, tmp, path))
    }

    /// Writes `body` to a temporary file beside the target, synced.
    async fn write_temp(&self, key: &str, body: &[u8]) -> Result<(PathBuf, PathBuf), StoreError> {
        let (mut f, tmp, path) = self.create_temp(key).await?;
        f.write_all(body).await.map_err(|e| Self::backend("write", key, e))?;
        f.sync_all().await.map_err(|e| Self::backend("sync", key, e))?;
        Ok((tmp, path))
    }

    pub async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        let (tmp, path) = self.write_temp(key, &body).await?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| Self::backend("rename", key, e))
    }

    /// Streams chunks into a temporary file, renamed into place only once complete.
    pub async fn put_stream<S, E>(&self, key: &str, chunks: S, limit: u64) -> Result<u64, StoreError>
    where
        S: futures::Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        // Synced once, when complete (not also empty, at its creation).
        let (mut f, tmp, path) = self.create_temp(key).await?;
        let written = async {
            let mut size = 0u64;
            let mut chunks = std::pin::pin!(chunks);
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(|e| StoreError::Interrupted {
                    key: key.into(),
                    message: e.to_string(),
                })?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(StoreError::TooLarge {
                        key: key.into(),
                        size,
                        limit,
                    });
                }
                f.write_all(&chunk).await.map_err(|e| Self::backend("write", key, e))?;
            }
            f.sync_all().await.map_err(|e| Self::backend("sync", key, e))?;
            Ok(size)
        }
        .await;
        drop(f);
        match written {
            Ok(size) => match tokio::fs::rename(&tmp, &path).await {
                Ok(()) => Ok(size),
                Err(e) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    Err(Self::backend("rename", key, e))
                }
            },
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    pub async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<PutOutcome, StoreError> {
        let (tmp, path) = self.write_temp(key, &body).await?;
        // link(2) fails if the target exists: an atomic create-if-absent.
        let linked = tokio::fs::hard_link(&tmp, &path).await;
        let _ = tokio::fs::remove_file(&tmp).await;
        match linked {
            Ok(()) => Ok(PutOutcome::Created),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(PutOutcome::AlreadyExists),
            Err(e) => Err(Self::backend("link", key, e)),
        }
    }

    pub async fn first_with_prefix(&self, prefix: &str) -> Result<Option<String>, StoreError> {
        let (dir_key, name_prefix) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let dir = if dir_key.is_empty() {
            self.root.clone()
        } else {
            self.path(&format!("{dir_key}/x"))?.with_file_name("")
        };
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Self::backend("list", prefix, e)),
        };
        let mut found = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| Self::backend("list", prefix, e))?
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(name_prefix) && !name.starts_with(".tmp-") && entry.path().is_file() {
                found.push(if dir_key.is_empty() {
                    name
                } else {
                    format!("{dir_key}/{name}")
                });
            }
        }
        found.sort();
        Ok(found.into_iter().next())
    }

    pub fn list(&self, prefix: &str) -> Keys {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        let walk = async move {
            let walking = prefix.clone();
            let walked = tokio::task::spawn_blocking(move || {
                let mut keys = Vec::new();
                walk(&root, "", &walking, &mut keys)
                    .map(|()| keys)
                    .map_err(|e| Self::backend("list", &walking, e))
            })
            .await
            .map_err(|e| Self::backend("list", &prefix, e))?;
            let mut keys = walked?;
            // A directory lists in no particular order; a bucket lists in key order.
            keys.sort();
            Ok::<_, StoreError>(futures::stream::iter(keys.into_iter().map(Ok)))
        };
        Box::pin(futures::stream::once(walk).try_flatten())
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Self::backend("delete", key, e)),
        }
    }
}

/// Collects the keys under `dir` (whose key is `dir_key`) that start with `prefix`, entering
/// only directories that can hold such keys. Temporary files of unfinished writes are skipped.
fn walk(dir: &Path, dir_key: &str, prefix: &str, keys: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue; // not a valid key
        };
        let key = format!("{dir_key}{name}");
        let kind = entry.file_type()?;
        if kind.is_dir() {
            let sub = format!("{key}/");
            if sub.starts_with(prefix) || prefix.starts_with(&sub) {
                walk(&entry.path(), &sub, prefix, keys)?;
            }
        } else if kind.is_file() && key.starts_with(prefix) && !name.starts_with(".tmp-") {
            keys.push(key);
        }
    }
    Ok(())
}

/// A name unique enough for a temporary file: time and a process-wide counter.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn round_trip_and_conditional_create() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Dir(DirStore::new(dir.path()));
        assert_eq!(store.size("a/b.txt").await.unwrap(), None);
        assert!(store.get("a/b.txt", 10).await.unwrap().is_none());
        store
            .put("a/b.txt", Bytes::from_static(b"hello"), "text/plain")
            .await
            .unwrap();
        assert_eq!(store.size("a/b.txt").await.unwrap(), Some(5));
        assert_eq!(
            store.get("a/b.txt", 10).await.unwrap().unwrap(),
            Bytes::from_static(b"hello")
        );
        assert!(matches!(
            store.get("a/b.txt", 4).await,
            Err(StoreError::TooLarge { .. })
        ));
        assert_eq!(
            store.head_bytes("a/b.txt", 3).await.unwrap().unwrap(),
            Bytes::from_static(b"hel")
        );
        assert_eq!(
            store.head_bytes("a/b.txt", 99).await.unwrap().unwrap(),
            Bytes::from_static(b"hello")
        );
        assert!(store.head_bytes("a/none", 3).await.unwrap().is_none());
        let first = store.put_if_absent("a/c", Bytes::from_static(b"1"), "x").await.unwrap();
        let second = store.put_if_absent("a/c", Bytes::from_static(b"2"), "x").await.unwrap();
        assert_eq!((first, second), (PutOutcome::Created, PutOutcome::AlreadyExists));
        assert_eq!(store.get("a/c", 10).await.unwrap().unwrap(), Bytes::from_static(b"1"));
        assert_eq!(store.first_with_prefix("a/").await.unwrap().as_deref(), Some("a/b.txt"));
        assert_eq!(store.first_with_prefix("a/c").await.unwrap().as_deref(), Some("a/c"));
        assert_eq!(store.first_with_prefix("a/x").await.unwrap(), None);
        assert_eq!(store.first_with_prefix("nope/x").await.unwrap(), None);
        store.delete("a/c").await.unwrap();
        store.delete("a/c").await.unwrap();
        assert_eq!(store.size("a/c").await.unwrap(), None);
    }

    #[tokio::test]
    async fn streams_an_object_in_and_refuses_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Dir(DirStore::new(dir.path()));
        let chunks = |parts: Vec<Result<&'static [u8], &'static str>>| {
            futures::stream::iter(parts.into_iter().map(|p| p.map(Bytes::from_static)))
        };
        let size = store
            .put_stream("u/a", chunks(vec![Ok(b"hel"), Ok(b"lo")]), 5)
            .await
            .unwrap();
        assert_eq!(size, 5);
        assert_eq!(
            store.get("u/a", 10).await.unwrap().unwrap(),
            Bytes::from_static(b"hello")
        );
        let too_large = store.put_stream("u/b", chunks(vec![Ok(b"hel"), Ok(b"lo!")]), 5).await;
        assert!(
            matches!(too_large, Err(StoreError::TooLarge { size: 6, .. })),
            "{too_large:?}"
        );
        let broken = store.put_stream("u/b", chunks(vec![Ok(b"x"), Err("reset")]), 5).await;
        assert!(matches!(broken, Err(StoreError::Interrupted { .. })), "{broken:?}");
        // Nothing half-written is left behind, not even a temporary file.
        assert_eq!(store.size("u/b").await.unwrap(), None);
        assert_eq!(std::fs::read_dir(dir.path().join("u")).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn lists_keys_under_a_prefix_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Dir(DirStore::new(dir.path()));
        // Written out of order, nested, and beside look-alike keys that must not be listed.
        for key in ["d/2/b", "d/1", "d/2/a/x", "d/10", "d-sibling/1", "e/1", "d/2-not-a-dir"] {
            store.put(key, Bytes::from_static(b"."), "x").await.unwrap();
        }
        std::fs::write(dir.path().join("d/2/.tmp-123-0"), b"half written").unwrap();
        let list = |prefix: &str| {
            let store = store.clone();
            let prefix = prefix.to_string();
            async move { store.list(&prefix).try_collect::<Vec<String>>().await.unwrap() }
        };
        assert_eq!(list("d/").await, ["d/1", "d/10", "d/2-not-a-dir", "d/2/a/x", "d/2/b"]);
        assert_eq!(list("d/2").await, ["d/2-not-a-dir", "d/2/a/x", "d/2/b"]);
        assert_eq!(list("d/2/").await, ["d/2/a/x", "d/2/b"]);
        assert_eq!(list("d/1").await, ["d/1", "d/10"]);
        assert_eq!(list("d").await.len(), 6);
        assert_eq!(list("").await.len(), 7);
        assert!(list("nope/").await.is_empty());
        assert!(list("d/2/b/").await.is_empty());
    }

    #[tokio::test]
    async fn refuses_keys_that_leave_the_root() {
        let store = DirStore::new("/nonexistent");
        for key in ["../x", "/etc/passwd", "a/../../b", "", "dir/"] {
            assert!(
                matches!(store.size(key).await, Err(StoreError::InvalidKey { .. })),
                "{key}"
            );
        }
    }
}

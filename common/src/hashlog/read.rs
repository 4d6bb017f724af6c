//! Reading the results log: a day's segments in key (= write time) order, concatenated, each
//! uid+generation kept once (the first). Streams segment by segment; only the set of entries
//! seen grows with the log.

use std::collections::HashSet;
use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use jiff::civil::Date;
use sha2::{Digest, Sha256};

use super::entry_of;
use crate::keys::{hash_log_day_prefix, legacy_hash_log_key};
use crate::store::{ByteChunks, Keys, Store, StoreError};

/// A line longer than this is not one Taskyard wrote; refusing it bounds the reader's memory.
const MAX_LINE_BYTES: usize = 1 << 20;

/// The lines of a day's results log, without their newlines.
pub type DayLines = Pin<Box<dyn Stream<Item = Result<String, StoreError>> + Send>>;

/// Streams the results log of `date` (UTC): every segment in key order, a repeated
/// uid+generation dropped (the first line is kept). The day's log written before segments, a
/// single object `logs/hashtasks/<date>.log`, is read first if it is still there.
pub fn read_day(store: &Store, date: Date) -> DayLines {
    let segments = hash_log_day_prefix(date);
    let legacy = legacy_hash_log_key(date);
    // Listing without the slash finds the legacy object too, and it sorts first ('.' < '/').
    let keys = store.list(segments.trim_end_matches('/'));
    let reader = DayReader {
        store: store.clone(),
        keys,
        segments,
        legacy,
        segment: None,
        seen: HashSet::new(),
    };
    Box::pin(futures::stream::try_unfold(reader, |mut reader| async move {
        Ok(reader.next_line().await?.map(|line| (line, reader)))
    }))
}

struct DayReader {
    store: Store,
    keys: Keys,
    /// The day's folder of segments, and its log from before segments.
    segments: String,
    legacy: String,
    segment: Option<Segment>,
    /// 128 bits of SHA-256 per uid+generation rather than the strings: a sixth of the memory,
    /// and a collision (which would drop a line) is practically impossible.
    seen: HashSet<[u8; 16]>,
}

impl DayReader {
    async fn next_line(&mut self) -> Result<Option<String>, StoreError> {
        loop {
            let Some(segment) = &mut self.segment else {
                let Some(key) = self.keys.try_next().await? else {
                    return Ok(None);
                };
                if self.is_log(&key) {
                    let chunks = self.store.open(&key).await?;
                    self.segment = Some(Segment::new(key, chunks));
                }
                continue;
            };
            match segment.next_line().await? {
                None => self.segment = None,
                Some(line) if line.is_empty() => {}
                Some(line) if self.first_time(&line) => return Ok(Some(line)),
                Some(_) => {}
            }
        }
    }

    fn is_log(&self, key: &str) -> bool {
        key == self.legacy || (key.starts_with(&self.segments) && key.ends_with(".log"))
    }

    /// Whether this is the first line of its uid+generation. A line without them (edited by
    /// hand) is always kept: there is nothing to compare it by.
    fn first_time(&mut self, line: &str) -> bool {
        let Some((uid, generation)) = entry_of(line) else {
            return true;
        };
        let digest = Sha256::new()
            .chain_update(uid)
            .chain_update(" ")
            .chain_update(generation)
            .finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        self.seen.insert(id)
    }
}

/// One segment, split into lines as its chunks arrive.
struct Segment {
    key: String,
    chunks: Option<ByteChunks>,
    /// The unread rest of the current chunk.
    chunk: Bytes,
    /// The start of a line whose end is in a later chunk.
    partial: Vec<u8>,
}

impl Segment {
    fn new(key: String, chunks: ByteChunks) -> Self {
        Segment {
            key,
            chunks: Some(chunks),
            chunk: Bytes::new(),
            partial: Vec::new(),
        }
    }

    /// The next line without its newline; `None` at the end. A last line without a newline
    /// is still a line.
    async fn next_line(&mut self) -> Result<Option<String>, StoreError> {
        loop {
            if let Some(end) = self.chunk.iter().position(|&b| b == b'\n') {
                let head = self.chunk.split_to(end + 1);
                self.partial.extend_from_slice(&head[..end]);
                return Ok(Some(self.take_partial()));
            }
            self.partial.extend_from_slice(&self.chunk);
            self.chunk = Bytes::new();
            if self.partial.len() > MAX_LINE_BYTES {
                return Err(StoreError::Backend {
                    op: "read",
                    key: self.key.clone(),
                    message: format!(
                        "a line is longer than {MAX_LINE_BYTES} bytes, so this is not a results log segment \
                         Taskyard wrote; move it out of the log's folder"
                    ),
                });
            }
            let next = match &mut self.chunks {
                Some(chunks) => chunks.try_next().await?,
                None => None,
            };
            match next {
                Some(chunk) => self.chunk = chunk,
                None if self.partial.is_empty() => return Ok(None),
                None => {
                    self.chunks = None;
                    return Ok(Some(self.take_partial()));
                }
            }
        }
    }

    fn take_partial(&mut self) -> String {
        let line = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        line
    }
}

#[cfg(test)]
mod tests {
    use taskyard_api::Outcome;

    use super::*;
    use crate::hashlog::tests::line;
    use crate::store::DirStore;

    fn day() -> Date {
        jiff::civil::date(2026, 11, 23)
    }

    async fn put(store: &Store, key: &str, body: &str) {
        store
            .put(key, Bytes::from(body.to_string()), "text/plain")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn concatenates_segments_in_key_order_keeping_the_first_of_a_repeated_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Dir(DirStore::new(dir.path()));
        let seg = |name: &str| format!("logs/hashtasks/2026-11-23/{name}.log");
        let a1 = line("a", 1, Outcome::Succeeded).render();
        let a1_again = line("a", 1, Outcome::Failed).render();
        let b1 = line("b", 1, Outcome::Failed).render();
        let a2 = line("a", 2, Outcome::Succeeded).render();
        // Written out of order: the key, not the write, decides the order.
        put(
            &store,
            &seg("20261123T100000.000000002Z-bb"),
            &format!("{a1_again}\n{a2}\n"),
        )
        .await;
        put(&store, &seg("20261123T100000.000000001Z-aa"), &format!("{a1}\n\n{b1}")).await;
        put(
            &store,
            "logs/hashtasks/2026-11-23.log",
            "legacy ns/old u0 1 Succeeded - - -\n",
        )
        .await;
        // Not part of this day's log.
        put(&store, "logs/hashtasks/2026-11-23/README", "not a segment\n").await;
        put(
            &store,
            "logs/hashtasks/2026-11-24/20261124T000000.000000000Z-cc.log",
            "x y c 1\n",
        )
        .await;
        put(&store, "logs/hashtasks/2026-11-230/x.log", "x y d 1\n").await;
        let log: Vec<String> = read_day(&store, day()).try_collect().await.unwrap();
        assert_eq!(log, ["legacy ns/old u0 1 Succeeded - - -", &a1, &b1, &a2]);
    }

    #[tokio::test]
    async fn a_day_without_a_log_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Dir(DirStore::new(dir.path()));
        assert!(read_day(&store, day()).try_next().await.unwrap().is_none());
    }

    fn in_chunks(text: &str, size: usize) -> ByteChunks {
        let chunks: Vec<Result<Bytes, StoreError>> = text
            .as_bytes()
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Box::pin(futures::stream::iter(chunks))
    }

    async fn lines_of(mut segment: Segment) -> Result<Vec<String>, StoreError> {
        let mut lines = Vec::new();
        while let Some(line) = segment.next_line().await? {
            lines.push(line);
        }
        Ok(lines)
    }

    #[tokio::test]
    async fn lines_split_across_chunks_are_joined() {
        let text = "first line\nsecond, longer line\n\nthird\nlast without newline";
        for size in [1, 2, 3, 7, 11, 64] {
            let lines = lines_of(Segment::new("k".into(), in_chunks(text, size))).await.unwrap();
            assert_eq!(
                lines,
                ["first line", "second, longer line", "", "third", "last without newline"],
                "chunks of {size}"
            );
        }
    }

    #[tokio::test]
    async fn a_line_too_long_for_a_log_is_refused_not_buffered() {
        let text = "a".repeat(MAX_LINE_BYTES + 10);
        let err = lines_of(Segment::new(
            "logs/hashtasks/2026-11-23/x.log".into(),
            in_chunks(&text, 4096),
        ))
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("logs/hashtasks/2026-11-23/x.log") && err.contains("longer than"),
            "{err}"
        );
    }
}

//! A day of 100,000 results log lines: the writer never reads the log and its memory is one
//! batch; the reader streams, holding far less than the log. Memory is measured with a
//! counting allocator, so this binary holds this one test only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures::TryStreamExt;
use taskyard_api::{Outcome, TaskIdentity};
use taskyard_common::hashlog::{self, LogLine};
use taskyard_common::store::{DirStore, Store};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Starts measuring: returns the bytes allocated now, and the peak above it is `peak_since`.
fn measure() -> usize {
    let now = CURRENT.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
}

fn peak_since(start: usize) -> usize {
    PEAK.load(Ordering::Relaxed).saturating_sub(start)
}

/// Bytes this process has read through read(2) and friends, from any file.
fn bytes_read() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").expect("Linux /proc/self/io");
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|n| n.parse().ok())
        .expect("rchar in /proc/self/io")
}

const LINES: usize = 100_000;
const BATCH: usize = 250;

fn line(i: usize) -> LogLine {
    LogLine {
        time: "2026-11-23T10:00:00Z".parse().unwrap(),
        identity: TaskIdentity {
            namespace: "load".into(),
            name: format!("report-{i:06}"),
            uid: format!("00000000-0000-4000-8000-{i:012}"),
            generation: 1,
        },
        outcome: Outcome::Succeeded,
        md5: Some(format!("{i:032x}")),
        size: Some(i as u64),
        message: format!("md5 of https://downloads.example.com/reports/2026/11/report-{i:06}.pdf: {i:032x}"),
    }
}

#[tokio::test]
async fn a_day_of_100000_lines_is_written_without_reading_and_read_streaming() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::Dir(DirStore::new(dir.path()));
    let date = jiff::civil::date(2026, 11, 23);

    let started = Instant::now();
    let (read_before, mem_before) = (bytes_read(), measure());
    for first in (0..LINES).step_by(BATCH) {
        let mut batch: Vec<LogLine> = (first..first + BATCH).map(line).collect();
        // Every tenth batch repeats lines of the batch before, as a retried append would.
        if first % (10 * BATCH) == 9 * BATCH {
            batch.extend((first - BATCH..first).map(line));
        }
        hashlog::append(&store, &batch).await.unwrap();
    }
    let write_peak = peak_since(mem_before);
    let write_read = bytes_read() - read_before;
    let write_time = started.elapsed();

    let log_bytes: u64 = walk_size(&dir.path().join("logs/hashtasks/2026-11-23"));
    assert!(
        log_bytes > 16 << 20,
        "the log is {log_bytes} bytes: too small to tell streaming apart"
    );
    assert!(
        write_read < 1 << 20,
        "writing read {write_read} bytes of a {log_bytes}-byte log"
    );
    assert!(write_peak < 2 << 20, "writing held {write_peak} bytes at its peak");

    let started = Instant::now();
    let (read_before, mem_before) = (bytes_read(), measure());
    let mut lines = hashlog::read_day(&store, date);
    let mut next = 0;
    while let Some(l) = lines.try_next().await.unwrap() {
        // In write order, each line once: the uid counts up from 0 with no gap or repeat.
        let uid = l.split(' ').nth(2).unwrap();
        assert_eq!(uid, format!("00000000-0000-4000-8000-{next:012}"), "{l}");
        next += 1;
    }
    drop(lines);
    let read_peak = peak_since(mem_before);
    let read_read = bytes_read() - read_before;
    let read_time = started.elapsed();

    assert_eq!(next, LINES);
    // The measure works: the reader did read every segment.
    assert!(read_read >= log_bytes, "read {read_read} of {log_bytes} bytes");
    assert!(
        read_peak < 8 << 20 && (read_peak as u64) < log_bytes / 2,
        "reading a {log_bytes}-byte log held {read_peak} bytes at its peak"
    );
    eprintln!(
        "{LINES} lines, {log_bytes} bytes: written in {write_time:?} (peak {write_peak} bytes, read {write_read}), \
         read in {read_time:?} (peak {read_peak} bytes)"
    );
}

fn walk_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

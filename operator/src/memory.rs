//! glibc malloc for a long-running controller. A burst of thousands of watch events, status
//! writes and their JSON leaves freed memory scattered over malloc's arenas, and glibc gives
//! back only the free memory at the top of a heap: without help, the operator would stay at
//! the burst's peak for good (about 30 MB above what its caches hold, at 10,000 tasks).
//! Two arenas bound how many heaps keep such memory, and a periodic `malloc_trim` returns
//! free pages anywhere in them, so the resident size follows the caches.

use std::time::Duration;

/// How often free pages go back to the kernel. A trim walks the free lists (about a
/// millisecond per 10 MB of heap) on a blocking thread; pages freed in between are reused
/// by the next allocations anyway.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Call once, before the runtime starts its threads.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns free heap pages to the kernel every `every`, for ever.
pub async fn trim_periodically(every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let _ = tokio::task::spawn_blocking(trim).await;
    }
}

/// Gives free heap pages back to the kernel; true if any went.
pub fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe; it takes each arena's lock in turn.
    unsafe {
        libc::malloc_trim(0) == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    fn resident_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn freed_memory_amid_live_memory_goes_back_after_a_trim() {
        // Many small blocks (below the mmap threshold, so on the heap), then every block but
        // one in 64 freed: free pages between live ones, which glibc does not give back.
        let mut blocks: Vec<Option<Vec<u8>>> = (0..20_000).map(|_| Some(vec![1u8; 4000])).collect();
        for (i, block) in blocks.iter_mut().enumerate() {
            if i % 64 != 0 {
                *block = None;
            }
        }
        let before = resident_kib();
        trim();
        let after = resident_kib();
        assert!(
            after + 50 * 1024 < before,
            "a trim should return most of the 78 MB freed: {before} KiB resident before, {after} KiB after"
        );
        drop(blocks);
    }
}

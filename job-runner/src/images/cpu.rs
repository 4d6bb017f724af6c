//! Image CPU work (decode, resize, encode) off the async threads, one image per core at a
//! time: the images of a page keep every core busy while the async threads go on
//! downloading, and no more images are decoded at once than there are cores to run them.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct CpuSlots {
    slots: Arc<Semaphore>,
}

/// A held slot: the right to run one image's CPU work.
pub struct CpuSlot {
    _permit: OwnedSemaphorePermit,
}

impl CpuSlots {
    pub fn new(slots: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
        }
    }

    /// One slot per core the runner may use.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2))
    }

    /// Waits for a free slot. Taken before the image's memory is reserved, so that at most
    /// one image per core holds working memory.
    pub async fn acquire(&self) -> CpuSlot {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        CpuSlot { _permit: permit }
    }
}

impl CpuSlot {
    /// Runs `work` on the blocking pool, holding the slot until it ends.
    pub async fn run<T: Send + 'static>(self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
        let out = tokio::task::spawn_blocking(work).await;
        drop(self);
        out.map_err(|e| format!("image processing failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// Two jobs that can only finish together (each waits for the other's signal) finish
    /// with two slots: they ran at the same time, on threads other than the async one.
    #[tokio::test(flavor = "current_thread")]
    async fn two_slots_run_two_jobs_at_once_off_the_async_thread() {
        let slots = CpuSlots::new(2);
        let (to_b, from_a) = mpsc::channel();
        let (to_a, from_b) = mpsc::channel();
        let job = |tx: mpsc::Sender<()>, rx: mpsc::Receiver<()>| {
            move || {
                tx.send(()).unwrap();
                rx.recv_timeout(Duration::from_secs(10)).is_ok()
            }
        };
        let (a, b) = (slots.acquire().await, slots.acquire().await);
        let (a, b) = tokio::join!(a.run(job(to_b, from_b)), b.run(job(to_a, from_a)));
        assert!(a.unwrap() && b.unwrap(), "the jobs did not overlap");
    }

    #[tokio::test]
    async fn a_third_image_waits_for_a_slot() {
        let slots = CpuSlots::new(2);
        let held = (slots.acquire().await, slots.acquire().await);
        let third = tokio::time::timeout(Duration::from_millis(50), slots.acquire()).await;
        assert!(third.is_err(), "a third slot was free");
        drop(held);
        slots.acquire().await.run(|| ()).await.unwrap();
    }
}

//! A memory budget in bytes, shared by the images one ImageTask holds at once. Each holder
//! reserves all it needs in one step (never a part, then more), so holders cannot wait on
//! each other; a need larger than the whole budget takes all of it and runs alone.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Permits are KiB, so that a u32 count covers terabytes.
const UNIT: u64 = 1024;

#[derive(Clone)]
pub struct ByteBudget {
    permits: Arc<Semaphore>,
    total: u32,
}

/// Bytes reserved from a budget, given back when dropped.
pub struct Reservation {
    permit: OwnedSemaphorePermit,
}

impl ByteBudget {
    pub fn new(bytes: u64) -> Self {
        let total = bytes.div_ceil(UNIT).clamp(1, u32::MAX as u64) as u32;
        Self {
            permits: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    fn units(&self, bytes: u64) -> u32 {
        bytes.div_ceil(UNIT).clamp(1, self.total as u64) as u32
    }

    /// Waits until `bytes` (at most the whole budget) are free, and holds them.
    pub async fn reserve(&self, bytes: u64) -> Reservation {
        let permit = self
            .permits
            .clone()
            .acquire_many_owned(self.units(bytes))
            .await
            .expect("the budget's semaphore is never closed");
        Reservation { permit }
    }
}

impl Reservation {
    /// Keeps only `bytes` of the reservation (a download that turned out smaller than the
    /// room it reserved), giving the rest back.
    pub fn shrink_to(&mut self, bytes: u64) {
        let keep = bytes.div_ceil(UNIT).max(1) as usize;
        if keep < self.permit.num_permits()
            && let Some(rest) = self.permit.split(self.permit.num_permits() - keep)
        {
            drop(rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_wait_for_room_and_oversized_ones_run_alone() {
        let budget = ByteBudget::new(10 * UNIT);
        let mut a = budget.reserve(8 * UNIT).await;
        let early = tokio::time::timeout(std::time::Duration::from_millis(50), budget.reserve(4 * UNIT)).await;
        assert!(early.is_err(), "4 KiB fitted beside 8 of 10");
        a.shrink_to(2 * UNIT);
        let _b = budget.reserve(4 * UNIT).await;
        drop((a, _b));
        // Larger than the budget: takes it all instead of waiting forever.
        let _c = budget.reserve(1 << 40).await;
        assert_eq!(budget.permits.available_permits(), 0);
    }
}

//! The host's descriptors, shared fairly between the tasks it runs.
//!
//! At start the host raises its soft `RLIMIT_NOFILE` to the hard limit and
//! keeps a reserve for itself (the store, sockets, the output logs). Guests
//! share the rest: each task may hold at most its `limits.open_files`, and
//! never more than an equal share of the pool across the runtime's instance
//! slots, so one task cannot starve another or the host.

use std::sync::atomic::{AtomicU64, Ordering};

/// Descriptors the host keeps for itself: a quarter of its limit, at least
/// this many, and never more than half.
const HOST_RESERVE: u64 = 32;
/// A task may always hold this many (the pool permitting).
const MIN_SHARE: u64 = 16;

/// The pool of descriptors guests may hold, host-wide.
#[derive(Debug)]
pub struct DescriptorBudget {
    total: u64,
    used: AtomicU64,
    per_task: u64,
}

impl DescriptorBudget {
    /// The budget of this process for `instances` concurrent tasks. Raises
    /// the soft descriptor limit to the hard one, once.
    pub fn for_process(instances: u32) -> DescriptorBudget {
        let limit = raise_nofile_limit();
        let reserve = HOST_RESERVE.max(limit / 4).min(limit / 2);
        DescriptorBudget::new(limit.saturating_sub(reserve), instances)
    }

    /// A pool of `total` descriptors shared by up to `instances` tasks.
    pub fn new(total: u64, instances: u32) -> DescriptorBudget {
        DescriptorBudget {
            total,
            used: AtomicU64::new(0),
            per_task: (total / u64::from(instances.max(1))).max(MIN_SHARE),
        }
    }

    /// The most descriptors one task may hold.
    pub fn per_task(&self) -> u64 {
        self.per_task
    }

    /// Take one descriptor from the pool.
    pub fn acquire(&self) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < self.total).then_some(used + 1)
            })
            .is_ok()
    }

    pub fn release(&self) {
        self.used.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(unix)]
fn raise_nofile_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    // An unlimited hard limit still meets the kernel's nr_open; ask for a
    // large, safe number instead.
    let hard = limit.maximum.unwrap_or(1 << 20).min(1 << 20);
    if soft < hard
        && setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(hard),
                maximum: limit.maximum,
            },
        )
        .is_ok()
    {
        return hard;
    }
    soft.min(1 << 20)
}

#[cfg(not(unix))]
fn raise_nofile_limit() -> u64 {
    8192
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_is_bounded_and_shared() {
        let budget = DescriptorBudget::new(100, 4);
        assert_eq!(budget.per_task(), 25);
        assert!((0..100).all(|_| budget.acquire()));
        assert!(!budget.acquire());
        budget.release();
        assert!(budget.acquire());
        assert_eq!(DescriptorBudget::new(40, 64).per_task(), MIN_SHARE);
    }
}

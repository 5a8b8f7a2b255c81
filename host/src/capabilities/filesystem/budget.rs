//! The host's descriptors, shared fairly between the tasks it runs.
//!
//! At start the host raises its soft `RLIMIT_NOFILE` to the hard limit and
//! keeps a reserve for itself (the store, sockets, the output logs). Guests
//! share the rest, one pool per process: each task may hold at most its
//! `limits.open_files`, and never more than an equal share of the pool
//! across the runtime's instance slots, so one task cannot starve another or
//! the host.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Descriptors the host keeps for itself: a quarter of its limit, at least
/// this many, and never more than half.
const HOST_RESERVE: u64 = 32;
/// A task may always hold this many (the pool permitting).
const MIN_SHARE: u64 = 16;

/// Descriptors guests may hold: one pool per process, however many
/// runtimes it has.
#[derive(Debug)]
struct Pool {
    total: u64,
    used: AtomicU64,
}

impl Pool {
    fn new(total: u64) -> Pool {
        Pool {
            total,
            used: AtomicU64::new(0),
        }
    }
}

/// One runtime's view of the pool: each of its tasks' share, and the pool.
#[derive(Debug)]
pub struct DescriptorBudget {
    pool: Arc<Pool>,
    per_task: u64,
}

impl DescriptorBudget {
    /// This process's pool, shared by `instances` concurrent tasks. The
    /// first call raises the soft descriptor limit to the hard one and sizes
    /// the pool; every runtime of the process then draws from it.
    pub fn for_process(instances: u32) -> DescriptorBudget {
        static POOL: OnceLock<Arc<Pool>> = OnceLock::new();
        let pool = POOL.get_or_init(|| {
            let limit = raise_nofile_limit();
            let reserve = HOST_RESERVE.max(limit / 4).min(limit / 2);
            Arc::new(Pool::new(limit.saturating_sub(reserve)))
        });
        DescriptorBudget::with_pool(pool.clone(), instances)
    }

    /// A pool of its own of `total` descriptors, shared by up to `instances`
    /// tasks.
    pub fn new(total: u64, instances: u32) -> DescriptorBudget {
        DescriptorBudget::with_pool(Arc::new(Pool::new(total)), instances)
    }

    fn with_pool(pool: Arc<Pool>, instances: u32) -> DescriptorBudget {
        let per_task = (pool.total / u64::from(instances.max(1))).max(MIN_SHARE);
        DescriptorBudget { pool, per_task }
    }

    /// The most descriptors one task may hold.
    pub fn per_task(&self) -> u64 {
        self.per_task
    }

    /// Take one descriptor from the pool.
    pub fn acquire(&self) -> bool {
        let pool = &self.pool;
        pool.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < pool.total).then_some(used + 1)
            })
            .is_ok()
    }

    pub fn release(&self) {
        self.pool.used.fetch_sub(1, Ordering::AcqRel);
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

    #[test]
    fn runtimes_of_one_process_draw_from_one_pool() {
        let pool = Arc::new(Pool::new(3));
        let (a, b) = (
            DescriptorBudget::with_pool(pool.clone(), 1),
            DescriptorBudget::with_pool(pool, 1),
        );
        assert!(a.acquire() && a.acquire() && b.acquire());
        assert!(
            !a.acquire() && !b.acquire(),
            "the pool is one, not one per runtime"
        );
        a.release();
        assert!(b.acquire());
    }
}

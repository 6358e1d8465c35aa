//! Batch calls on several cores.
//!
//! A vault opened with [`VaultOptions::threads`](crate::VaultOptions::threads) other than 1
//! owns a small thread pool (rayon, feature `parallel`) that the batch calls spread their
//! per-item work over: the crypto of `tokenize_many` / `detokenize_many` (FF1, vaulted tokens),
//! the sealing of `put_many` and `encrypt_many`, `decrypt_many`, and the unwrap/wrap of each
//! rewrap page. Pseudonyms and date shifts (well under a microsecond each) stay on the calling
//! thread: handing them to a pool costs more than it saves. Store writes, compare-and-swap and the audit entry stay on
//! the calling thread, so the results, their order, the atomicity of each batch and what the
//! audit log says are exactly those of the serial path.
//!
//! Small batches (fewer than [`MIN_PARALLEL`] items) always run on the calling thread, where
//! handing work to a pool costs more than it saves. After `fork` (Python `multiprocessing`)
//! the pool's threads do not exist in the child, so a child process runs every batch on the
//! calling thread instead of waiting for them.

use crate::Result;

/// Batches with fewer items than this run on the calling thread.
pub const MIN_PARALLEL: usize = 256;

/// The pool a vault's batch calls use (or none: everything on the calling thread).
pub(crate) struct Parallel {
    #[cfg(feature = "parallel")]
    pool: Option<(std::sync::Arc<rayon::ThreadPool>, u32)>,
    threads: usize,
}

impl Default for Parallel {
    fn default() -> Self {
        Parallel {
            #[cfg(feature = "parallel")]
            pool: None,
            threads: 1,
        }
    }
}

impl std::fmt::Debug for Parallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Parallel({} threads)", self.threads)
    }
}

impl Parallel {
    /// A pool of `threads` threads: 1 = none (the calling thread does everything), 0 = one per
    /// core. Without the `parallel` feature every setting means the calling thread.
    pub(crate) fn new(threads: usize) -> Result<Self> {
        #[cfg(feature = "parallel")]
        {
            let n = if threads == 0 {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            } else {
                threads
            };
            if n <= 1 {
                return Ok(Parallel::default());
            }
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("phivault-batch-{i}"))
                .build()
                .map_err(|_| {
                    crate::Error::invalid("threads", "the batch thread pool could not start")
                })?;
            Ok(Parallel {
                pool: Some((std::sync::Arc::new(pool), std::process::id())),
                threads: n,
            })
        }
        #[cfg(not(feature = "parallel"))]
        {
            let _ = threads;
            Ok(Parallel::default())
        }
    }

    /// How many threads batch calls use (1: the calling thread only).
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// `items.iter().map(f).collect()`, spread over the pool for large batches. The output is
    /// in the order of `items`; on failure one of the items' errors is returned.
    pub(crate) fn map<T, R, F>(&self, items: &[T], f: F) -> Result<Vec<R>>
    where
        T: Sync,
        R: Send,
        F: Fn(&T) -> Result<R> + Sync + Send,
    {
        self.map_min(items, MIN_PARALLEL, f)
    }

    /// [`Parallel::map`] over items that are themselves groups: runs on the pool from `min`
    /// items on.
    pub(crate) fn map_min<T, R, F>(&self, items: &[T], min: usize, f: F) -> Result<Vec<R>>
    where
        T: Sync,
        R: Send,
        F: Fn(&T) -> Result<R> + Sync + Send,
    {
        #[cfg(feature = "parallel")]
        if let Some((pool, pid)) = &self.pool
            && items.len() >= min.max(2)
            && *pid == std::process::id()
        {
            use rayon::prelude::*;
            let chunk = (items.len() / (self.threads * 4)).max(1);
            return pool.install(|| items.par_iter().with_min_len(chunk).map(f).collect());
        }
        let _ = min;
        items.iter().map(f).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn map_keeps_order_and_errors_for_every_setting() {
        let items: Vec<u32> = (0..5000).collect();
        for threads in [1, 2, 3, 0] {
            let p = Parallel::new(threads).expect("pool");
            let out = p.map(&items, |&x| Ok(x * 2)).expect("map");
            assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
            let small = p.map(&items[..10], |&x| Ok(x + 1)).expect("map");
            assert_eq!(small, (1..=10).collect::<Vec<_>>());
            let err = p.map(&items, |&x| {
                if x == 4321 {
                    Err(Error::AuthenticationFailed)
                } else {
                    Ok(x)
                }
            });
            assert!(matches!(err, Err(Error::AuthenticationFailed)));
        }
        #[cfg(feature = "parallel")]
        assert_eq!(Parallel::new(2).expect("pool").threads(), 2);
    }
}

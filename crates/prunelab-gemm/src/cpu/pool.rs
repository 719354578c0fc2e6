//! The CPU kernels' worker threads: one pool per process, started on the first call that has
//! more than one part, of [`threads`]` − 1` workers; the calling thread runs the first part
//! itself and waits for the others.
//!
//! The kernels used to start a scoped thread per part on every call — about 600 thread starts
//! (each a `clone3`, a fresh signal stack mapped and unmapped, its stack's pages faulted in again)
//! per MiniLM training step on two cores (`bench/NOTES.md`). A kept pool wakes a parked worker
//! instead. Which part runs where never changes what is computed: each part writes its own
//! output, so the kernels stay deterministic whatever the number of threads.

use std::sync::OnceLock;

use rayon_core::{ThreadPool, ThreadPoolBuilder};

use super::threads;

/// `run(part)` for every part: the first on this thread, the others on the pool's workers.
/// Returns when every part has run (a part's panic comes back here, after the others finish).
pub fn split<T: Send>(parts: impl IntoIterator<Item = T>, run: impl Fn(T) + Sync) {
    let mut parts = parts.into_iter().peekable();
    let Some(first) = parts.next() else { return };
    let Some(pool) = parts.peek().and(pool()) else {
        run(first);
        return parts.for_each(run);
    };
    pool.in_place_scope(|scope| {
        let run = &run;
        for part in parts {
            scope.spawn(move |_| run(part));
        }
        run(first);
    });
}

/// The process's pool; `None` when [`threads`] is 1 (or the pool cannot start: then every part
/// runs on the calling thread, as it would on one core).
fn pool() -> Option<&'static ThreadPool> {
    static POOL: OnceLock<Option<ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let workers = threads().saturating_sub(1);
        if workers == 0 {
            return None;
        }
        ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("prunelab-cpu-{i}"))
            .build()
            .inspect_err(|error| tracing::warn!(%error, "no worker threads: the CPU kernels run on one thread"))
            .ok()
    })
    .as_ref()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::thread::ThreadId;

    use super::*;

    #[test]
    fn every_part_runs_once_the_first_on_the_calling_thread() {
        let seen = Mutex::new(Vec::<(usize, ThreadId)>::new());
        split(0..7, |i| seen.lock().unwrap().push((i, std::thread::current().id())));
        let mut seen = seen.into_inner().unwrap();
        seen.sort_by_key(|&(i, _)| i);
        assert_eq!(seen.iter().map(|&(i, _)| i).collect::<Vec<_>>(), (0..7).collect::<Vec<_>>());
        assert_eq!(seen[0].1, std::thread::current().id());
    }

    #[test]
    fn parts_write_their_own_outputs_and_nested_splits_finish() {
        let mut out = vec![0usize; 1000];
        split(out.chunks_mut(100).enumerate(), |(k, block)| {
            split(block.chunks_mut(10).enumerate(), |(j, cells)| {
                cells.iter_mut().enumerate().for_each(|(i, c)| *c = k * 100 + j * 10 + i);
            });
        });
        assert_eq!(out, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn no_parts_and_one_part() {
        split(std::iter::empty::<usize>(), |_| panic!("no part to run"));
        let ran = Mutex::new(0);
        split([5], |i| *ran.lock().unwrap() += i);
        assert_eq!(ran.into_inner().unwrap(), 5);
    }
}

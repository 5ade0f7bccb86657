//! How work on one weight is split across the rayon pool: reproducibly, by thread count only,
//! either one parallel map at a time or by a [`Team`] that holds the pool's threads for all the
//! sweeps of a power iteration.

use core::ops::Range;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rayon::prelude::*;

use super::real::Real;

/// Weights below this many elements are swept on one thread: splitting costs more than it saves.
const PARALLEL_MIN: usize = 1 << 18;

/// `0..units` cut into one contiguous range per thread of the current rayon pool (one range
/// for small work). The cut depends only on the thread count, so results are reproducible.
pub(crate) fn ranges(units: usize, work: usize) -> Vec<Range<usize>> {
    let parts = if work >= PARALLEL_MIN {
        rayon::current_num_threads().clamp(1, units.max(1))
    } else {
        1
    };
    cut(units, parts)
}

/// `0..units` cut into `parts` contiguous ranges of nearly equal length.
fn cut(units: usize, parts: usize) -> Vec<Range<usize>> {
    (0..parts)
        .map(|i| units * i / parts..units * (i + 1) / parts)
        .collect()
}

/// `f` over each range, in parallel when there are several; results in range order.
pub(crate) fn map_ranges<R: Send>(
    ranges: Vec<Range<usize>>,
    f: impl Fn(Range<usize>) -> R + Sync + Send,
) -> Vec<R> {
    if ranges.len() == 1 {
        ranges.into_iter().map(f).collect()
    } else {
        ranges.into_par_iter().map(f).collect()
    }
}

/// Partial sums added in range order.
pub(crate) fn sum_parts<T: Real>(parts: Vec<Vec<T>>) -> Vec<T> {
    let mut parts = parts.into_iter();
    let mut total = parts.next().unwrap_or_default();
    for part in parts {
        for (t, p) in total.iter_mut().zip(part) {
            *t += p;
        }
    }
    total
}

/// Disjoint pieces joined in range order.
pub(crate) fn concat<T: Real>(parts: Vec<Vec<T>>) -> Vec<T> {
    parts.into_iter().flatten().collect()
}

/// What one range of a [`Team`]'s round returns: two vectors, each a piece of the round's
/// result or a partial sum, as the round's caller combines them.
pub(crate) type Part<T> = (Vec<T>, Vec<T>);

type Job<'a, T> = Arc<dyn Fn(Range<usize>) -> Part<T> + Send + Sync + 'a>;

/// Spins before a waiting thread starts yielding its core: a few µs, about what the serial
/// part between two sweeps takes.
const SPINS: u32 = 256;

/// The threads of the current rayon pool held for a run of parallel maps over the same
/// ranges (the sweeps of one power iteration), so that a sweep costs no fork and join: one
/// helper per range but the first is spawned once, and each round's ranges are claimed by
/// whoever comes first, the caller taking its own range and then any that no helper has
/// claimed yet. Nobody ever waits on a range that nobody runs, so a pool busy elsewhere only
/// makes the caller run more ranges itself, never hangs it. Each range's part lands in its
/// own slot, so results are combined in range order whoever ran it: the same bits as
/// [`map_ranges`] over the same ranges.
pub(crate) struct Team<'a, T> {
    ranges: Vec<Range<usize>>,
    /// The current round's number and job.
    job: Mutex<(usize, Option<Job<'a, T>>)>,
    /// The current round's number, for helpers to watch without taking the lock.
    round: AtomicUsize,
    released: AtomicBool,
    slots: Vec<Slot<T>>,
}

/// One range's state: the last round it was claimed for and finished in, and its part.
struct Slot<T> {
    claimed: AtomicUsize,
    finished: AtomicUsize,
    part: Mutex<Option<Part<T>>>,
}

/// Runs `body` with a team over `ranges`: helpers for every range but the first are spawned
/// into the current rayon pool for the time `body` runs (none for one range).
pub(crate) fn with_team<'a, T: Send + 'a, R>(
    ranges: Vec<Range<usize>>,
    body: impl FnOnce(&Team<'a, T>) -> R,
) -> R {
    let team = Team {
        slots: ranges
            .iter()
            .map(|_| Slot {
                claimed: AtomicUsize::new(0),
                finished: AtomicUsize::new(0),
                part: Mutex::new(None),
            })
            .collect(),
        ranges,
        job: Mutex::new((0, None)),
        round: AtomicUsize::new(0),
        released: AtomicBool::new(false),
    };
    if team.ranges.len() == 1 {
        return body(&team);
    }
    rayon::in_place_scope(|scope| {
        for helper in 1..team.ranges.len() {
            let team = &team;
            scope.spawn(move |_| team.help(helper));
        }
        // Released also if `body` panics, so that the scope's wait for the helpers ends.
        let _release = Release(&team.released);
        body(&team)
    })
}

struct Release<'r>(&'r AtomicBool);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Marks a slot finished for a round when dropped, also when its job panics: the caller then
/// finds no part and panics in turn, rather than waiting for ever.
struct Finish<'s>(&'s AtomicUsize, usize);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.store(self.1, Ordering::Release);
    }
}

impl<'a, T: Send> Team<'a, T> {
    /// `job` over every range, in parallel across the team; parts in range order.
    pub fn map(&self, job: impl Fn(Range<usize>) -> Part<T> + Send + Sync + 'a) -> Vec<Part<T>> {
        if self.ranges.len() == 1 {
            return vec![job(self.ranges[0].clone())];
        }
        let job: Job<'a, T> = Arc::new(job);
        let round = {
            let mut current = self.job.lock().unwrap_or_else(PoisonError::into_inner);
            *current = (current.0 + 1, Some(Arc::clone(&job)));
            current.0
        };
        self.round.store(round, Ordering::Release);
        self.run_unclaimed(0, round, &job);
        for slot in &self.slots {
            wait_until(|| slot.finished.load(Ordering::Acquire) == round);
        }
        self.slots
            .iter()
            .map(|slot| {
                let part = slot
                    .part
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                part.expect("a helper's job panicked")
            })
            .collect()
    }

    /// Runs every range of `round` that is not claimed yet, starting at `first`.
    fn run_unclaimed(&self, first: usize, round: usize, job: &Job<'a, T>) {
        let count = self.slots.len();
        for i in (0..count).map(|k| (first + k) % count) {
            let slot = &self.slots[i];
            let claim = slot.claimed.compare_exchange(
                round - 1,
                round,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
            if claim.is_ok() {
                let _finish = Finish(&slot.finished, round);
                let part = job(self.ranges[i].clone());
                *slot.part.lock().unwrap_or_else(PoisonError::into_inner) = Some(part);
            }
        }
    }

    /// A helper's loop: each new round's unclaimed ranges from its own on, until released.
    fn help(&self, own: usize) {
        let mut seen = 0;
        loop {
            wait_until(|| {
                self.round.load(Ordering::Acquire) != seen || self.released.load(Ordering::Acquire)
            });
            if self.released.load(Ordering::Acquire) {
                return;
            }
            let (round, job) = {
                let current = self.job.lock().unwrap_or_else(PoisonError::into_inner);
                (current.0, current.1.clone())
            };
            seen = round;
            if let Some(job) = job {
                self.run_unclaimed(own, round, &job);
            }
        }
    }
}

/// Spins, then yields, until `ready`.
fn wait_until(ready: impl Fn() -> bool) {
    let mut spins = 0;
    while !ready() {
        if spins < SPINS {
            core::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on a thread of its own and fails if it has not returned within a minute: a
    /// team that hangs fails the test instead of stalling the run.
    fn within_a_minute<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || send.send(f()));
        receive
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the team returned")
    }

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// Round after round, each part is what the job gives for its range, in range order,
    /// whichever thread ran it: for pools of 2 to 5 threads and as many ranges as threads or
    /// fewer.
    #[test]
    fn every_round_returns_each_ranges_part_in_range_order() {
        within_a_minute(|| {
            for threads in 2..=5 {
                let pool = pool(threads);
                for parts in 2..=threads {
                    let ranges = cut(1000, parts);
                    let got = pool.install(|| {
                        with_team(ranges.clone(), |team| {
                            (0..50u64)
                                .map(|round| {
                                    team.map(move |range: Range<usize>| {
                                        let first =
                                            range.clone().map(|i| i as u64 * round).collect();
                                        (first, vec![round; range.len() % 7])
                                    })
                                })
                                .collect::<Vec<_>>()
                        })
                    });
                    for (round, parts) in got.into_iter().enumerate() {
                        let round = round as u64;
                        let expected: Vec<Part<u64>> = ranges
                            .iter()
                            .map(|r| {
                                let first = r.clone().map(|i| i as u64 * round).collect();
                                (first, vec![round; r.len() % 7])
                            })
                            .collect();
                        assert_eq!(parts, expected, "{threads} threads, {parts:?}");
                    }
                }
            }
        });
    }

    /// With every other thread of the pool busy until the team is done, the caller runs every
    /// range itself and returns.
    #[test]
    fn a_busy_pool_leaves_the_caller_to_run_every_range() {
        let parts = within_a_minute(|| {
            let pool = pool(2);
            let done = Arc::new(AtomicBool::new(false));
            let busy = Arc::clone(&done);
            pool.spawn(move || {
                while !busy.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
            });
            let parts = pool.install(|| {
                with_team(cut(10, 2), |team| {
                    (0..3)
                        .map(|_| team.map(|range: Range<usize>| (range.collect(), Vec::new())))
                        .collect::<Vec<_>>()
                })
            });
            done.store(true, Ordering::Release);
            parts
        });
        for round in parts {
            assert_eq!(
                round,
                [((0..5).collect(), vec![]), ((5..10).collect(), vec![])]
            );
        }
    }

    /// A job that panics on any thread makes the caller panic, and the team's helpers return.
    #[test]
    fn a_panicking_job_panics_the_caller_instead_of_hanging() {
        let outcome = within_a_minute(|| {
            let pool = pool(2);
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pool.install(|| {
                    with_team(cut(10, 2), |team| {
                        team.map(|range: Range<usize>| {
                            assert_eq!(range.start, 0, "a failing job");
                            (Vec::<usize>::new(), Vec::new())
                        })
                    })
                })
            }))
            .is_err()
        });
        assert!(outcome, "the panic reached the caller");
    }
}

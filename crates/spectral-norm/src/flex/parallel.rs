//! How work on one weight is split across the rayon pool: reproducibly, by thread count only.

use core::ops::Range;

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

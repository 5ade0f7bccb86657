//! `W / σ` into storage the caller provides: split across the pool for large weights, and with
//! streaming stores where the output would not have stayed in cache anyway.

use rayon::prelude::*;

use super::parallel::ranges;
use super::real::Real;
use super::simd::divide_slice;

/// Weights from this size on get `W / σ` written with streaming stores (see `streaming`): the
/// size of a large last-level cache, so the output would not have stayed there anyway.
const STREAMING_MIN_BYTES: usize = 32 << 20;

/// `out = W / σ`.
pub(crate) fn divide_into<T: Real>(w: &[T], sigma: T, out: &mut [T]) {
    let chunk = w.len().div_ceil(ranges(w.len(), w.len()).len()).max(1);
    let streaming = core::mem::size_of_val(w) >= STREAMING_MIN_BYTES;
    let divide = |(out, w): (&mut [T], &[T])| {
        if !(streaming && T::divide_streaming(w, sigma, out)) {
            divide_slice(w, sigma, out)
        }
    };
    if chunk >= w.len() {
        divide((out, w));
    } else {
        out.par_chunks_mut(chunk)
            .zip(w.par_chunks(chunk))
            .for_each(divide);
    }
}

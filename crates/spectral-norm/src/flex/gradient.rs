//! The backward of `W → W / σ`: `∂L/∂W = (G − ⟨G, W⟩/σ · u vᵀ) / σ`, written over the incoming
//! gradient `G` in place, in whichever of the two layouts Burn hands it over.
//!
//! A Linear's weight gradient comes contiguous. A convolution's comes as the `swap_dims(0, 1)`
//! view of a contiguous result (Burn computes it as a convolution over swapped axes); copying
//! that into W's layout first would cost a strided pass and a fresh W-sized allocation on every
//! step, so it is updated where it lies and handed on in the same layout, as the plain layer's
//! optimizer would receive it.

use rayon::prelude::*;

use super::parallel::{map_ranges, ranges};
use super::real::Real;
use super::simd::{correct, correct_loop, dot, with_avx2};
use super::view::View;

/// A gradient stored with the weight's first two axes swapped: `G[b, a, r]` (weight shape
/// `[s0, s1, …]`, `r` running over the remaining axes, `len` of them) lives at
/// `(a · s0 + b) · len + r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Swapped {
    pub s0: usize,
    pub s1: usize,
    pub len: usize,
}

impl Swapped {
    /// The swapped layout that `strides` describe for a weight of shape `dims`, if they do.
    pub fn of(dims: &[usize], strides: &[isize]) -> Option<Self> {
        if dims.len() < 2 || dims.len() != strides.len() {
            return None;
        }
        let len: usize = dims[2..].iter().product();
        let mut expected = vec![0isize; dims.len()];
        let mut step = 1isize;
        for axis in (2..dims.len()).rev() {
            expected[axis] = step;
            step *= dims[axis] as isize;
        }
        expected[0] = step;
        expected[1] = step * dims[0] as isize;
        let matches = dims
            .iter()
            .zip(strides.iter().zip(&expected))
            .all(|(&size, (&s, &e))| size == 1 || s == e);
        matches.then_some(Self {
            s0: dims[0],
            s1: dims[1],
            len,
        })
    }

    /// Storage elements per block `a`: `[s0, len]`.
    fn block(&self) -> usize {
        self.s0 * self.len
    }
}

/// The rank-one correction `g ← (g − c · u vᵀ) / σ` that every layout applies.
#[derive(Debug, Clone, Copy)]
struct Correction<'a, T> {
    c: T,
    u: &'a [T],
    v: &'a [T],
    sigma: T,
}

/// `⟨a, b⟩` over whole weights, by ranges.
fn dot_all<T: Real>(a: &[T], b: &[T]) -> T {
    let parts = map_ranges(ranges(a.len(), a.len()), |r| dot(&a[r.clone()], &b[r]));
    parts
        .into_iter()
        .fold(T::default(), |total, part| total + part)
}

/// Whether the closed form `(g − ⟨g, W⟩/σ · u vᵀ) / σ` gives what autodiff through
/// `W / σ(W)` gives, `g · (1/σ) + Σ g ⊙ (−W / σ²) · u vᵀ`, up to rounding: when `1/σ` and `σ²`
/// are normal numbers and the dot `c = ⟨g, W⟩/σ` is finite. Otherwise (σ = 0 from vectors that
/// overflowed to 0, σ² underflowing in f32 for weights ~1e-15, an infinite dot) the two differ
/// in which entries are infinite or NaN, and [`backward_as_autodiff`] is taken instead, as the
/// generic path and Paddle compute it.
fn closed_form_is_exact<T: Real>(sigma: T, c: T) -> bool {
    (T::from_f64(1.0) / sigma).is_normal() && (sigma * sigma).is_normal() && c.is_finite()
}

/// For a contiguous `g = ∂L/∂(W/σ)`, the gradient with respect to `W` in Burn's autodiff order
/// of operations: `g · (1/σ) + (Σ g ⊙ (−W / σ²)) · u vᵀ`.
pub(crate) fn backward_as_autodiff<T: Real>(
    g: &mut [T],
    w: &[T],
    view: View,
    u: &[T],
    v: &[T],
    sigma: T,
) {
    let (recip, square) = (T::from_f64(1.0) / sigma, sigma * sigma);
    let mut c = T::default();
    for (&gi, &wi) in g.iter().zip(w) {
        c += gi * ((T::default() - wi) / square);
    }
    for (t, gi) in g.iter_mut().enumerate() {
        let (block, r) = (t / view.inner, t % view.inner);
        let (o, j) = (block / view.rows, block % view.rows);
        *gi = *gi * recip + c * u[j] * v[o * view.inner + r];
    }
}

/// For a contiguous `g = ∂L/∂(W/σ)`, `g ← (g − ⟨g, W⟩/σ · u vᵀ) / σ`; in autodiff's order of
/// operations where the closed form would not give the same infinities and NaNs.
pub(crate) fn backward_in_place<T: Real>(
    g: &mut [T],
    w: &[T],
    view: View,
    u: &[T],
    v: &[T],
    sigma: T,
) {
    let c = dot_all(g, w) / sigma;
    if !closed_form_is_exact(sigma, c) {
        return backward_as_autodiff(g, w, view, u, v, sigma);
    }
    // Whole rows of M-blocks (`inner` elements sharing one u_j) per parallel piece.
    let units = view.outer * view.rows;
    let per_piece = units.div_ceil(ranges(units, g.len()).len()).max(1);
    let update = |(piece, g): (usize, &mut [T])| {
        let first = piece * per_piece;
        for (t, row) in (first..).zip(g.chunks_exact_mut(view.inner)) {
            let (o, j) = (t / view.rows, t % view.rows);
            correct(
                row,
                c * u[j],
                &v[o * view.inner..(o + 1) * view.inner],
                sigma,
            );
        }
    };
    let update_linear = |(piece, g): (usize, &mut [T])| {
        // inner = 1: runs along j within a stored row, one v_o each: a vectorizable loop.
        let first = piece * per_piece;
        let mut t = first;
        let mut rest = g;
        while !rest.is_empty() {
            let (o, j) = (t / view.rows, t % view.rows);
            let run = (view.rows - j).min(rest.len());
            let (head, tail) = rest.split_at_mut(run);
            correct(head, c * v[o], &u[j..j + run], sigma);
            t += run;
            rest = tail;
        }
    };
    let chunk = per_piece * view.inner;
    if view.inner == 1 {
        g.par_chunks_mut(chunk).enumerate().for_each(update_linear);
    } else {
        g.par_chunks_mut(chunk).enumerate().for_each(update);
    }
}

/// For `g` stored as [`Swapped`] and the matrix rows on axis `dim` (0 or 1, the only axes this
/// layout is taken for), `g ← (g − ⟨g, W⟩/σ · u vᵀ) / σ` where it lies. Returns `false`, having
/// written nothing, where the closed form would not give autodiff's infinities and NaNs: the
/// caller then takes [`backward_as_autodiff`] on a contiguous copy.
#[must_use]
pub(crate) fn backward_swapped_in_place<T: Real>(
    g: &mut [T],
    w: &[T],
    layout: Swapped,
    dim: usize,
    u: &[T],
    v: &[T],
    sigma: T,
) -> bool {
    debug_assert!(dim < 2 && g.len() == w.len());
    let block = layout.block();
    let pieces = ranges(layout.s1, g.len());
    let parts = map_ranges(pieces.clone(), |range| {
        swapped_dot(
            &g[range.start * block..range.end * block],
            w,
            layout,
            range.start,
        )
    });
    let c = parts
        .into_iter()
        .fold(T::default(), |total, part| total + part)
        / sigma;
    if !closed_form_is_exact(sigma, c) {
        return false;
    }
    let by = Correction { c, u, v, sigma };
    let per_piece = layout.s1.div_ceil(pieces.len()).max(1);
    g.par_chunks_mut(per_piece * block)
        .enumerate()
        .for_each(|(piece, g)| {
            let first = piece * per_piece;
            if dim == 0 {
                swapped_correct_rows(g, layout, first, by);
            } else {
                swapped_correct_blocks(g, layout, first, by);
            }
        });
    true
}

with_avx2! {
    /// `⟨g, W⟩` over the blocks `first..` that `g` (a part of the swapped storage) holds.
    fn swapped_dot(g: &[T], w: &[T], layout: Swapped, first: usize) -> T = swapped_dot_loop;
}

with_avx2! {
    /// Rows on axis 0: storage run `(a, b)` is `len` elements of row `b` at columns
    /// `a · len..`, so it takes `c·u_b · v[a·len..]`.
    fn swapped_correct_rows(g: &mut [T], layout: Swapped, first: usize, by: Correction<'_, T>) = swapped_correct_rows_loop;
}

with_avx2! {
    /// Rows on axis 1: storage block `a` is all of row `a` (columns `(b, r)` in order), so it
    /// takes `c·u_a · v` whole.
    fn swapped_correct_blocks(g: &mut [T], layout: Swapped, first: usize, by: Correction<'_, T>) = swapped_correct_blocks_loop;
}

/// Runs `f::<N>` for the kernel sizes convolutions use, so that the short runs of `len`
/// elements compile to straight vector code, else `f::<0>` (any length, slower).
macro_rules! by_run_length {
    ($len:expr, $f:ident::<T>($($arg:expr),*)) => {
        match $len {
            1 => $f::<T, 1>($($arg),*),
            3 => $f::<T, 3>($($arg),*),
            4 => $f::<T, 4>($($arg),*),
            9 => $f::<T, 9>($($arg),*),
            16 => $f::<T, 16>($($arg),*),
            25 => $f::<T, 25>($($arg),*),
            27 => $f::<T, 27>($($arg),*),
            49 => $f::<T, 49>($($arg),*),
            _ => $f::<T, 0>($($arg),*),
        }
    };
}

/// The run of `len` elements at `start`, as an array when `N` is its length.
#[inline(always)]
fn run_at<T, const N: usize>(x: &[T], start: usize, len: usize) -> &[T] {
    if N == 0 {
        &x[start..start + len]
    } else {
        &x[start..start + N]
    }
}

#[inline(always)]
fn swapped_dot_loop<T: Real>(g: &[T], w: &[T], layout: Swapped, first: usize) -> T {
    by_run_length!(layout.len, swapped_dot_runs::<T>(g, w, layout, first))
}

#[inline(always)]
fn swapped_dot_runs<T: Real, const N: usize>(g: &[T], w: &[T], layout: Swapped, first: usize) -> T {
    // One accumulator per position r: independent sums, so the short runs vectorize.
    let mut fixed = [T::default(); N];
    let mut any = if N == 0 {
        vec![T::default(); layout.len]
    } else {
        Vec::new()
    };
    let lanes: &mut [T] = if N == 0 { &mut any } else { &mut fixed };
    for (a, block) in (first..).zip(g.chunks_exact(layout.block())) {
        for (b, run) in block.chunks_exact(layout.len).enumerate() {
            let w_run = run_at::<T, N>(w, (b * layout.s1 + a) * layout.len, layout.len);
            let run = run_at::<T, N>(run, 0, layout.len);
            for ((lane, x), y) in lanes.iter_mut().zip(run).zip(w_run) {
                *lane += *x * *y;
            }
        }
    }
    lanes.iter().fold(T::default(), |total, lane| total + *lane)
}

/// Runs of `len` per stretch of the rows-on-axis-0 correction: a stretch of `len · RUNS`
/// elements spans whole runs, so one pattern of `v_a` repeated `RUNS` times lines up with every
/// stretch of block `a`, and the update is one vectorizable loop over three slices instead of
/// a short loop per run (a 3×3 kernel's runs of 9 leave most of each vector idle).
const RUNS: usize = 16;

#[inline(always)]
fn swapped_correct_rows_loop<T: Real>(
    g: &mut [T],
    layout: Swapped,
    first: usize,
    by: Correction<'_, T>,
) {
    // Attaching refuses weights with a zero-sized axis, so runs and stretches are never empty.
    debug_assert!(layout.len > 0);
    // `c·u_b` repeated over run b, shared by every block: the same products as per run.
    let cu: Vec<T> =
        by.u.iter()
            .flat_map(|&u_b| core::iter::repeat_n(by.c * u_b, layout.len))
            .collect();
    let stretch = layout.len * RUNS;
    let mut pattern = vec![T::default(); stretch];
    for (a, block) in (first..).zip(g.chunks_mut(layout.block())) {
        let v_a = &by.v[a * layout.len..(a + 1) * layout.len];
        for (p, &x) in pattern.iter_mut().zip(v_a.iter().cycle()) {
            *p = x;
        }
        for (g, cu) in block.chunks_mut(stretch).zip(cu.chunks(stretch)) {
            for ((gx, &k), &vx) in g.iter_mut().zip(cu).zip(&pattern) {
                *gx = (*gx - k * vx) / by.sigma;
            }
        }
    }
}

#[inline(always)]
fn swapped_correct_blocks_loop<T: Real>(
    g: &mut [T],
    layout: Swapped,
    first: usize,
    by: Correction<'_, T>,
) {
    for (block, &u_a) in g.chunks_exact_mut(layout.block()).zip(&by.u[first..]) {
        correct_loop(block, by.c * u_a, by.v, by.sigma);
    }
}

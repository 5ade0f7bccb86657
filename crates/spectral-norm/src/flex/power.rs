//! The power iteration on a contiguous weight's own storage, in as few sweeps over it as the
//! layout allows (see [`View`] for the indexing).
//!
//! A power-iteration step needs `Mᵀu` and then `M v`. Both halves of a step read each stored
//! block once while it is in cache: for `outer > 1` a block `W[o]` yields `z_o = W[o]ᵀ u` and at
//! once its contribution `W[o] z_o` to `M z`; for `outer = 1` a row of `M` yields `(M x)_j` and
//! at once its contribution to `Mᵀ(M x)`. Normalizing by a scalar commutes with the next
//! product, so it is applied afterwards. Norms are plain sums of squares in the element type,
//! overflowing where Paddle's do. All the sweeps of one power iteration are split across one
//! [`Team`] of threads.

use core::num::NonZeroUsize;
use core::ops::Range;

use super::parallel::{Part, Team, concat, ranges, sum_parts, with_team};
use super::real::Real;
use super::simd::{axpy, axpy_loop, axpy4_loop, dot, dot_lanes, dot4_lanes, four_rows, with_avx2};
use super::view::View;

/// `‖x‖₂` as a plain sum of squares in `T`.
pub(crate) fn norm<T: Real>(x: &[T]) -> T {
    dot(x, x).sqrt()
}

/// `max(‖x‖, eps)`, NaN-propagating (a NaN norm is not below `eps`).
fn denominator<T: Real>(x: &[T], eps: T) -> T {
    let n = norm(x);
    if n < eps { eps } else { n }
}

fn divide_all<T: Real>(x: &mut [T], by: T) {
    for xi in x {
        *xi = *xi / by;
    }
}

/// `y += W[o] x_o` for one block `[rows, inner]`.
fn block_vec<T: Real>(block: &[T], inner: usize, x_o: &[T], y: &mut [T]) {
    if inner == 1 {
        axpy(x_o[0], block, y);
    } else {
        for (yj, row) in y.iter_mut().zip(block.chunks_exact(inner)) {
            *yj += dot(row, x_o);
        }
    }
}

/// `z_o = W[o]ᵀ x` for one block `[rows, inner]`.
fn block_t_vec<T: Real>(block: &[T], inner: usize, x: &[T], z_o: &mut [T]) {
    if inner == 1 {
        z_o[0] = dot(block, x);
    } else {
        for (xj, row) in x.iter().zip(block.chunks_exact(inner)) {
            axpy(*xj, row, z_o);
        }
    }
}

fn blocks<T>(w: &[T], view: View, range: Range<usize>) -> core::slice::ChunksExact<'_, T> {
    w[range.start * view.block()..range.end * view.block()].chunks_exact(view.block())
}

/// The rows `range` of `M` when `outer = 1`, as one slice.
fn stored_rows<T>(w: &[T], view: View, range: Range<usize>) -> &[T] {
    &w[range.start * view.cols()..range.end * view.cols()]
}

/// The ranges that the sweeps over `w` are split into: blocks `W[o]` for `outer > 1`, rows of
/// `M` for `outer = 1`.
fn split(view: View, len: usize) -> Vec<Range<usize>> {
    ranges(
        if view.outer > 1 {
            view.outer
        } else {
            view.rows
        },
        len,
    )
}

/// `y = M x`.
pub(crate) fn m_vec<T: Real>(w: &[T], view: View, x: &[T]) -> Vec<T> {
    with_team(split(view, w.len()), |team| {
        Sweeps { w, view, team }.m_vec(x)
    })
}

/// The sweeps over one weight, each split across the same team.
struct Sweeps<'a, 't, T> {
    w: &'a [T],
    view: View,
    team: &'t Team<'a, T>,
}

impl<'a, T: Real> Sweeps<'a, '_, T> {
    /// `y = M x`.
    fn m_vec(&self, x: &[T]) -> Vec<T> {
        let (w, view, x) = (self.w, self.view, x.to_vec());
        if view.outer == 1 {
            let parts = self.team.map(move |range| {
                let mut y = vec![T::default(); range.len()];
                dot_rows(stored_rows(w, view, range), view.cols(), &x, &mut y);
                (y, Vec::new())
            });
            return concat(firsts(parts));
        }
        let parts = self.team.map(move |range| {
            let mut y = vec![T::default(); view.rows];
            for (block, o) in blocks(w, view, range.clone()).zip(range) {
                let x_o = &x[o * view.inner..(o + 1) * view.inner];
                block_vec(block, view.inner, x_o, &mut y);
            }
            (y, Vec::new())
        });
        sum_parts(firsts(parts))
    }

    /// `z = Mᵀ x`.
    fn mt_vec(&self, x: &[T]) -> Vec<T> {
        let (w, view, x) = (self.w, self.view, x.to_vec());
        if view.outer == 1 {
            let parts = self.team.map(move |range| {
                let mut z = vec![T::default(); view.cols()];
                axpy_rows(
                    stored_rows(w, view, range.clone()),
                    view.cols(),
                    &x[range],
                    &mut z,
                );
                (z, Vec::new())
            });
            return sum_parts(firsts(parts));
        }
        let parts = self.team.map(move |range| {
            let mut z = vec![T::default(); range.len() * view.inner];
            for (block, z_o) in blocks(w, view, range).zip(z.chunks_exact_mut(view.inner)) {
                block_t_vec(block, view.inner, &x, z_o);
            }
            (z, Vec::new())
        });
        concat(firsts(parts))
    }

    /// For `outer > 1`: `z = Mᵀ x` and `y = M z`, each block read while in cache.
    fn mt_then_m(&self, x: &[T]) -> (Vec<T>, Vec<T>) {
        let (w, view, x) = (self.w, self.view, x.to_vec());
        let parts = self.team.map(move |range| {
            let mut z = vec![T::default(); range.len() * view.inner];
            let mut y = vec![T::default(); view.rows];
            if view.inner == 1 {
                let stored = &w[range.start * view.rows..range.end * view.rows];
                sweep_stored_rows(stored, view.rows, &x, &mut z, &mut y);
                return (z, y);
            }
            for (block, z_o) in blocks(w, view, range).zip(z.chunks_exact_mut(view.inner)) {
                block_t_vec(block, view.inner, &x, z_o);
                block_vec(block, view.inner, z_o, &mut y);
            }
            (z, y)
        });
        let (z, y): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        (concat(z), sum_parts(y))
    }

    /// For `outer = 1`: `y = M x` and `z = Mᵀ y`, each row read while in cache.
    fn m_then_mt(&self, x: &[T]) -> (Vec<T>, Vec<T>) {
        let (w, view, x) = (self.w, self.view, x.to_vec());
        let parts = self.team.map(move |range| {
            let mut y = vec![T::default(); range.len()];
            let mut z = vec![T::default(); view.cols()];
            sweep_stored_rows(stored_rows(w, view, range), view.cols(), &x, &mut y, &mut z);
            (y, z)
        });
        let (y, z): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        (concat(y), sum_parts(z))
    }
}

/// The first vector of each part.
fn firsts<T>(parts: Vec<Part<T>>) -> Vec<Vec<T>> {
    parts.into_iter().map(|(first, _)| first).collect()
}

with_avx2! {
    /// For each stored row `r_o` of `stored` (rows of `len`), `z_o = r_o · x`, and
    /// `y += Σ z_o r_o`: a Linear weight `[in, out]` read along its stored rows, or the rows of
    /// `M` when `outer = 1`. Four rows at a time, so that `x` and `y` are read (and `y`
    /// written) once per four rows rather than once per row.
    fn sweep_stored_rows(stored: &[T], len: usize, x: &[T], z: &mut [T], y: &mut [T]) = sweep_stored_rows_loop;
}

with_avx2! {
    /// `y_j = r_j · x` for each stored row `r_j` of `stored` (rows of `len`), four at a time.
    fn dot_rows(stored: &[T], len: usize, x: &[T], y: &mut [T]) = dot_rows_loop;
}

with_avx2! {
    /// `z += Σ x_j r_j` over the stored rows `r_j` of `stored` (rows of `len`), four at a time.
    fn axpy_rows(stored: &[T], len: usize, x: &[T], z: &mut [T]) = axpy_rows_loop;
}

#[inline(always)]
fn sweep_stored_rows_loop<T: Real>(stored: &[T], len: usize, x: &[T], z: &mut [T], y: &mut [T]) {
    let mut groups = stored.chunks_exact(4 * len);
    let mut z_groups = z.chunks_exact_mut(4);
    for (group, z4) in (&mut groups).zip(&mut z_groups) {
        let rows = four_rows(group, len);
        let dots = dot4_lanes(rows, x);
        z4.copy_from_slice(&dots);
        axpy4_loop(dots, rows, y);
    }
    let rest = groups.remainder().chunks_exact(len);
    for (row, z_o) in rest.zip(z_groups.into_remainder()) {
        *z_o = dot_lanes(row, x);
        axpy_loop(*z_o, row, y);
    }
}

#[inline(always)]
fn dot_rows_loop<T: Real>(stored: &[T], len: usize, x: &[T], y: &mut [T]) {
    let mut groups = stored.chunks_exact(4 * len);
    let mut y_groups = y.chunks_exact_mut(4);
    for (group, y4) in (&mut groups).zip(&mut y_groups) {
        y4.copy_from_slice(&dot4_lanes(four_rows(group, len), x));
    }
    let rest = groups.remainder().chunks_exact(len);
    for (row, yj) in rest.zip(y_groups.into_remainder()) {
        *yj = dot_lanes(row, x);
    }
}

#[inline(always)]
fn axpy_rows_loop<T: Real>(stored: &[T], len: usize, x: &[T], z: &mut [T]) {
    let mut groups = stored.chunks_exact(4 * len);
    let mut x_groups = x.chunks_exact(4);
    for (group, x4) in (&mut groups).zip(&mut x_groups) {
        let x4: [T; 4] = x4.try_into().expect("chunks of four");
        axpy4_loop(x4, four_rows(group, len), z);
    }
    let rest = groups.remainder().chunks_exact(len);
    for (row, xj) in rest.zip(x_groups.remainder()) {
        axpy_loop(*xj, row, z);
    }
}

/// Whether `product / by`, the fused sweep's `A (x · by) / by`, is what the unfused `A x` gives
/// up to rounding: true unless the scale overflowed (`by` infinite or NaN, where Paddle's
/// `x = z / ‖z‖` is 0 and `A x` is 0, not `inf / inf`) or the unscaled product did (`inf`
/// where `A x` is finite). The fallback is one more sweep, taken only then.
fn fused_is_exact<T: Real>(product: &[T], by: T) -> bool {
    by.is_finite() && product.iter().all(|x| x.is_finite())
}

/// The outcome of a training-mode use: the new vectors and `σ = u·(M v)`.
#[derive(Debug, Clone)]
pub(crate) struct Estimate<T> {
    pub u: Vec<T>,
    pub v: Vec<T>,
    pub sigma: T,
}

/// Runs `iterations` steps `v = normalize(Mᵀu)`, `u = normalize(M v)` from `u`, and takes
/// `σ = u·(M v)` from the last step's `M v`. `outer > 1`: `iterations` sweeps over `W`;
/// `outer = 1`: `iterations + 1`.
pub(crate) fn power_iterate<T: Real>(
    w: &[T],
    view: View,
    u: &[T],
    iterations: NonZeroUsize,
    eps: T,
) -> Estimate<T> {
    with_team(split(view, w.len()), |team| {
        let sweeps = Sweeps { w, view, team };
        if view.outer > 1 {
            iterate_blocks(&sweeps, u.to_vec(), iterations, eps)
        } else {
            iterate_rows(&sweeps, u, iterations, eps)
        }
    })
}

fn iterate_blocks<T: Real>(
    sweeps: &Sweeps<'_, '_, T>,
    mut u: Vec<T>,
    iterations: NonZeroUsize,
    eps: T,
) -> Estimate<T> {
    let mut v = Vec::new();
    let mut mv = Vec::new();
    for _ in 0..iterations.get() {
        let (z, y) = sweeps.mt_then_m(&u);
        let d = denominator(&z, eps);
        v = z;
        divide_all(&mut v, d);
        mv = if fused_is_exact(&y, d) {
            let mut mv = y;
            divide_all(&mut mv, d);
            mv
        } else {
            sweeps.m_vec(&v)
        };
        u = mv.clone();
        divide_all(&mut u, denominator(&mv, eps));
    }
    let sigma = dot(&u, &mv);
    Estimate { u, v, sigma }
}

fn iterate_rows<T: Real>(
    sweeps: &Sweeps<'_, '_, T>,
    u0: &[T],
    iterations: NonZeroUsize,
    eps: T,
) -> Estimate<T> {
    let mut v = sweeps.mt_vec(u0);
    let d = denominator(&v, eps);
    divide_all(&mut v, d);
    // Every step but the last fuses its `M v` with the next step's `Mᵀu`.
    for _ in 1..iterations.get() {
        let (mut y, mut z) = sweeps.m_then_mt(&v);
        // z = Mᵀ y = ‖·‖-scaled Mᵀu for u = y / max(‖y‖, eps).
        let dy = denominator(&y, eps);
        if fused_is_exact(&z, dy) {
            divide_all(&mut z, dy);
        } else {
            divide_all(&mut y, dy);
            z = sweeps.mt_vec(&y);
        }
        let d = denominator(&z, eps);
        v = z;
        divide_all(&mut v, d);
    }
    let mv = sweeps.m_vec(&v);
    let mut u = mv.clone();
    divide_all(&mut u, denominator(&mv, eps));
    let sigma = dot(&u, &mv);
    Estimate { u, v, sigma }
}

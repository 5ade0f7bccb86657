//! Spectral-norm arithmetic on raw slices, in as few sweeps over the weight as the layout allows.
//!
//! The weight is stored row-major; with `dim` moved to the front its matrix view is
//! `M[j, (o, r)] = W[o, j, r]` for the contiguous view `W: [outer, rows, inner]`
//! (`outer` = product of the axes before `dim`, `inner` = after). `dim = 0` gives `outer = 1`
//! (`M` is the stored matrix); a Linear weight `[in, out]` with `dim = 1` gives `inner = 1`
//! (`M` is the stored matrix transposed). No transposed or permuted copy is ever made.
//!
//! A power-iteration step needs `Mᵀu` and then `M v`. Both halves of a step read each stored
//! block once while it is in cache: for `outer > 1` a block `W[o]` yields `z_o = W[o]ᵀ u` and at
//! once its contribution `W[o] z_o` to `M z`; for `outer = 1` a row of `M` yields `(M x)_j` and
//! at once its contribution to `Mᵀ(M x)`. Normalizing by a scalar commutes with the next
//! product, so it is applied afterwards. Norms are plain sums of squares in the element type,
//! overflowing where Paddle's do.

use core::ops::{Add, AddAssign, Div, Mul, Range, Sub};

use rayon::prelude::*;

use super::streaming::StreamingDivide;

/// The element types with a fast path: `f32` and `f64`.
pub(crate) trait Real:
    Copy
    + Default
    + PartialOrd
    + Send
    + Sync
    + Add<Output = Self>
    + AddAssign
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + StreamingDivide
    + 'static
{
    fn from_f64(x: f64) -> Self;
    fn sqrt(self) -> Self;
}

impl Real for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
}

impl Real for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
}

/// The matrix view `[rows, outer · inner]` of a contiguous weight `[outer, rows, inner]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct View {
    pub outer: usize,
    pub rows: usize,
    pub inner: usize,
}

impl View {
    /// The view of a weight of shape `dims` with `dim` as the matrix rows.
    pub fn new(dims: &[usize], dim: usize) -> Self {
        Self {
            outer: dims[..dim].iter().product(),
            rows: dims[dim],
            inner: dims[dim + 1..].iter().product(),
        }
    }

    /// Length of `v` (matrix columns).
    pub fn cols(&self) -> usize {
        self.outer * self.inner
    }

    fn block(&self) -> usize {
        self.rows * self.inner
    }
}

const LANES: usize = 16;

/// Defines `$name`, which runs `$body` compiled for AVX2 when the CPU has it and for the
/// baseline otherwise. Both run the same operations in the same order (no FMA contraction), so
/// results are bitwise identical; AVX2 only makes the vectors twice as wide.
macro_rules! with_avx2 {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? = $body:ident;) => {
        $(#[$doc])*
        $vis fn $name<T: Real>($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn wide<T: Real>($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    return unsafe { wide($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

pub(super) use with_avx2;

with_avx2! {
    /// `a · b` with independent partial sums, so the loop vectorizes.
    pub(crate) fn dot(a: &[T], b: &[T]) -> T = dot_lanes;
}

with_avx2! {
    /// `y += alpha · x`.
    fn axpy(alpha: T, x: &[T], y: &mut [T]) = axpy_loop;
}

with_avx2! {
    /// `out = w / by`, elementwise.
    fn divide_slice(w: &[T], by: T, out: &mut [T]) = divide_loop;
}

with_avx2! {
    /// `g = (g − k·x) / by`, elementwise: one row of the backward's rank-one correction.
    pub(super) fn correct(g: &mut [T], k: T, x: &[T], by: T) = correct_loop;
}

#[inline(always)]
fn dot_lanes<T: Real>(a: &[T], b: &[T]) -> T {
    let mut lanes = [T::default(); LANES];
    let (head_a, tail_a) = a.split_at(a.len() - a.len() % LANES);
    let (head_b, tail_b) = b.split_at(head_a.len());
    for (ca, cb) in head_a.chunks_exact(LANES).zip(head_b.chunks_exact(LANES)) {
        for k in 0..LANES {
            lanes[k] += ca[k] * cb[k];
        }
    }
    let mut total = T::default();
    for lane in lanes {
        total += lane;
    }
    for (x, y) in tail_a.iter().zip(tail_b) {
        total += *x * *y;
    }
    total
}

#[inline(always)]
fn axpy_loop<T: Real>(alpha: T, x: &[T], y: &mut [T]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * *xi;
    }
}

#[inline(always)]
fn divide_loop<T: Real>(w: &[T], by: T, out: &mut [T]) {
    for (o, x) in out.iter_mut().zip(w) {
        *o = *x / by;
    }
}

#[inline(always)]
pub(super) fn correct_loop<T: Real>(g: &mut [T], k: T, x: &[T], by: T) {
    for (gx, xx) in g.iter_mut().zip(x) {
        *gx = (*gx - k * *xx) / by;
    }
}

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

/// Weights below this many elements are swept on one thread: splitting costs more than it saves.
const PARALLEL_MIN: usize = 1 << 18;

/// `0..units` cut into one contiguous range per thread of the current rayon pool (one range
/// for small work). The cut depends only on the thread count, so results are reproducible.
pub(super) fn ranges(units: usize, work: usize) -> Vec<Range<usize>> {
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
pub(super) fn map_ranges<R: Send>(
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
fn sum_parts<T: Real>(parts: Vec<Vec<T>>) -> Vec<T> {
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
fn concat<T: Real>(parts: Vec<Vec<T>>) -> Vec<T> {
    parts.into_iter().flatten().collect()
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

/// `y = M x`.
pub(crate) fn m_vec<T: Real>(w: &[T], view: View, x: &[T]) -> Vec<T> {
    if view.outer == 1 {
        let parts = map_ranges(ranges(view.rows, w.len()), |range| {
            let mut y = vec![T::default(); range.len()];
            dot_rows(stored_rows(w, view, range), view.cols(), x, &mut y);
            y
        });
        return concat(parts);
    }
    let parts = map_ranges(ranges(view.outer, w.len()), |range| {
        let mut y = vec![T::default(); view.rows];
        for (block, o) in blocks(w, view, range.clone()).zip(range) {
            block_vec(
                block,
                view.inner,
                &x[o * view.inner..(o + 1) * view.inner],
                &mut y,
            );
        }
        y
    });
    sum_parts(parts)
}

/// `z = Mᵀ x`.
pub(crate) fn mt_vec<T: Real>(w: &[T], view: View, x: &[T]) -> Vec<T> {
    if view.outer == 1 {
        let parts = map_ranges(ranges(view.rows, w.len()), |range| {
            let mut z = vec![T::default(); view.cols()];
            axpy_rows(
                stored_rows(w, view, range.clone()),
                view.cols(),
                &x[range],
                &mut z,
            );
            z
        });
        return sum_parts(parts);
    }
    let parts = map_ranges(ranges(view.outer, w.len()), |range| {
        let mut z = vec![T::default(); range.len() * view.inner];
        for (block, z_o) in blocks(w, view, range).zip(z.chunks_exact_mut(view.inner)) {
            block_t_vec(block, view.inner, x, z_o);
        }
        z
    });
    concat(parts)
}

/// For `outer > 1`: `z = Mᵀ x` and `y = M z`, each block read while in cache.
fn mt_then_m<T: Real>(w: &[T], view: View, x: &[T]) -> (Vec<T>, Vec<T>) {
    let parts = map_ranges(ranges(view.outer, w.len()), |range| {
        let mut z = vec![T::default(); range.len() * view.inner];
        let mut y = vec![T::default(); view.rows];
        if view.inner == 1 {
            let stored = &w[range.start * view.rows..range.end * view.rows];
            sweep_stored_rows(stored, view.rows, x, &mut z, &mut y);
            return (z, y);
        }
        for (block, z_o) in blocks(w, view, range).zip(z.chunks_exact_mut(view.inner)) {
            block_t_vec(block, view.inner, x, z_o);
            block_vec(block, view.inner, z_o, &mut y);
        }
        (z, y)
    });
    let (z, y): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    (concat(z), sum_parts(y))
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

/// Four consecutive rows of `len` from a group of `4 · len`.
#[inline(always)]
fn four_rows<T>(group: &[T], len: usize) -> [&[T]; 4] {
    let (r0, rest) = group.split_at(len);
    let (r1, rest) = rest.split_at(len);
    let (r2, r3) = rest.split_at(len);
    [r0, r1, r2, r3]
}

/// `[r0 · x, r1 · x, r2 · x, r3 · x]`, each bitwise equal to [`dot_lanes`] (same lanes, same
/// order) but interleaved: `x` is loaded once for four rows and the four rows' lanes are
/// independent chains, where one dot alone waits on its additions.
#[inline(always)]
fn dot4_lanes<T: Real>([r0, r1, r2, r3]: [&[T]; 4], x: &[T]) -> [T; 4] {
    let mut lanes = [[T::default(); LANES]; 4];
    let head = x.len() - x.len() % LANES;
    let chunks = r0[..head]
        .chunks_exact(LANES)
        .zip(r1[..head].chunks_exact(LANES))
        .zip(r2[..head].chunks_exact(LANES))
        .zip(r3[..head].chunks_exact(LANES))
        .zip(x[..head].chunks_exact(LANES));
    for ((((c0, c1), c2), c3), cx) in chunks {
        for k in 0..LANES {
            lanes[0][k] += c0[k] * cx[k];
            lanes[1][k] += c1[k] * cx[k];
            lanes[2][k] += c2[k] * cx[k];
            lanes[3][k] += c3[k] * cx[k];
        }
    }
    let mut totals = [T::default(); 4];
    for (total, (lanes, row)) in totals.iter_mut().zip(lanes.iter().zip([r0, r1, r2, r3])) {
        for lane in lanes {
            *total += *lane;
        }
        for (a, b) in row[head..].iter().zip(&x[head..]) {
            *total += *a * *b;
        }
    }
    totals
}

/// `y += a r0 + b r1 + c r2 + d r3`.
#[inline(always)]
fn axpy4_loop<T: Real>([a, b, c, d]: [T; 4], [r0, r1, r2, r3]: [&[T]; 4], y: &mut [T]) {
    for ((((yk, w0), w1), w2), w3) in y.iter_mut().zip(r0).zip(r1).zip(r2).zip(r3) {
        *yk += a * *w0 + b * *w1 + c * *w2 + d * *w3;
    }
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

/// For `outer = 1`: `y = M x` and `z = Mᵀ y`, each row read while in cache.
fn m_then_mt<T: Real>(w: &[T], view: View, x: &[T]) -> (Vec<T>, Vec<T>) {
    let parts = map_ranges(ranges(view.rows, w.len()), |range| {
        let mut y = vec![T::default(); range.len()];
        let mut z = vec![T::default(); view.cols()];
        sweep_stored_rows(stored_rows(w, view, range), view.cols(), x, &mut y, &mut z);
        (y, z)
    });
    let (y, z): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    (concat(y), sum_parts(z))
}

/// The outcome of a training-mode use: the new vectors and `σ = u·(M v)`.
#[derive(Debug, Clone)]
pub(crate) struct Estimate<T> {
    pub u: Vec<T>,
    pub v: Vec<T>,
    pub sigma: T,
}

/// Runs `iterations ≥ 1` steps `v = normalize(Mᵀu)`, `u = normalize(M v)` from `u`, and takes
/// `σ = u·(M v)` from the last step's `M v`. `outer > 1`: `iterations` sweeps over `W`;
/// `outer = 1`: `iterations + 1`.
pub(crate) fn power_iterate<T: Real>(
    w: &[T],
    view: View,
    u: &[T],
    iterations: usize,
    eps: T,
) -> Estimate<T> {
    debug_assert!(iterations >= 1);
    if view.outer > 1 {
        iterate_blocks(w, view, u.to_vec(), iterations, eps)
    } else {
        iterate_rows(w, view, u, iterations, eps)
    }
}

fn iterate_blocks<T: Real>(
    w: &[T],
    view: View,
    mut u: Vec<T>,
    iterations: usize,
    eps: T,
) -> Estimate<T> {
    let mut v = Vec::new();
    let mut mv = Vec::new();
    for _ in 0..iterations {
        let (z, y) = mt_then_m(w, view, &u);
        let d = denominator(&z, eps);
        v = z;
        divide_all(&mut v, d);
        mv = y;
        divide_all(&mut mv, d);
        u = mv.clone();
        divide_all(&mut u, denominator(&mv, eps));
    }
    let sigma = dot(&u, &mv);
    Estimate { u, v, sigma }
}

fn iterate_rows<T: Real>(w: &[T], view: View, u0: &[T], iterations: usize, eps: T) -> Estimate<T> {
    let mut v = mt_vec(w, view, u0);
    let d = denominator(&v, eps);
    divide_all(&mut v, d);
    for step in 1..=iterations {
        if step < iterations {
            let (y, mut z) = m_then_mt(w, view, &v);
            // z = Mᵀ y = ‖·‖-scaled Mᵀu for u = y / max(‖y‖, eps).
            divide_all(&mut z, denominator(&y, eps));
            let d = denominator(&z, eps);
            v = z;
            divide_all(&mut v, d);
        } else {
            let mv = m_vec(w, view, &v);
            let mut u = mv.clone();
            divide_all(&mut u, denominator(&mv, eps));
            let sigma = dot(&u, &mv);
            return Estimate { u, v, sigma };
        }
    }
    unreachable!("the last step returns")
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_interleaved_dots_equal_four_single_dots_bit_for_bit() {
        for len in [0, 3, 16, 37, 100] {
            let values = |seed: usize| -> Vec<f32> {
                (0..len)
                    .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 * 1e-3 - 0.5)
                    .collect()
            };
            let rows: Vec<Vec<f32>> = (1..=4).map(values).collect();
            let x = values(9);
            let four = dot4_lanes([&rows[0], &rows[1], &rows[2], &rows[3]], &x);
            for (row, got) in rows.iter().zip(four) {
                assert_eq!(got.to_bits(), dot_lanes(row, &x).to_bits(), "len {len}");
            }
        }
    }
}

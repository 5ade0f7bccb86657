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

use core::ops::{Add, AddAssign, Div, Mul, Sub};

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

/// `a · b` with independent partial sums, so the loop vectorizes.
pub(crate) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
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

/// `y += alpha · x`.
fn axpy<T: Real>(alpha: T, x: &[T], y: &mut [T]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * *xi;
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

/// `y = M x`.
pub(crate) fn m_vec<T: Real>(w: &[T], view: View, x: &[T]) -> Vec<T> {
    let mut y = vec![T::default(); view.rows];
    for (o, block) in w.chunks_exact(view.block()).enumerate() {
        let x_o = &x[o * view.inner..(o + 1) * view.inner];
        if view.inner == 1 {
            axpy(x_o[0], block, &mut y);
        } else {
            for (yj, row) in y.iter_mut().zip(block.chunks_exact(view.inner)) {
                *yj += dot(row, x_o);
            }
        }
    }
    y
}

/// `z = Mᵀ x`.
pub(crate) fn mt_vec<T: Real>(w: &[T], view: View, x: &[T]) -> Vec<T> {
    let mut z = vec![T::default(); view.cols()];
    for (block, z_o) in w
        .chunks_exact(view.block())
        .zip(z.chunks_exact_mut(view.inner))
    {
        block_t_vec(block, view.inner, x, z_o);
    }
    z
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

/// For `outer > 1`: `z = Mᵀ x` and `y = M z`, each block read while in cache.
fn mt_then_m<T: Real>(w: &[T], view: View, x: &[T]) -> (Vec<T>, Vec<T>) {
    let mut z = vec![T::default(); view.cols()];
    let mut y = vec![T::default(); view.rows];
    for (block, z_o) in w
        .chunks_exact(view.block())
        .zip(z.chunks_exact_mut(view.inner))
    {
        block_t_vec(block, view.inner, x, z_o);
        if view.inner == 1 {
            axpy(z_o[0], block, &mut y);
        } else {
            for (yj, row) in y.iter_mut().zip(block.chunks_exact(view.inner)) {
                *yj += dot(row, z_o);
            }
        }
    }
    (z, y)
}

/// For `outer = 1`: `y = M x` and `z = Mᵀ y`, each row read while in cache.
fn m_then_mt<T: Real>(w: &[T], view: View, x: &[T]) -> (Vec<T>, Vec<T>) {
    let mut y = vec![T::default(); view.rows];
    let mut z = vec![T::default(); view.cols()];
    for (yj, row) in y.iter_mut().zip(w.chunks_exact(view.cols())) {
        *yj = dot(row, x);
        axpy(*yj, row, &mut z);
    }
    (y, z)
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

/// `out = W / σ`.
pub(crate) fn divide_into<T: Real>(w: &[T], sigma: T, out: &mut [T]) {
    for (o, x) in out.iter_mut().zip(w) {
        *o = *x / sigma;
    }
}

/// The gradient of `W / σ(W)` with `σ = uᵀ M v` (u, v constant): given `g = ∂L/∂(W/σ)`,
/// `∂L/∂W = (g − ⟨g, W⟩/σ · u vᵀ) / σ`, written over `g` in place.
pub(crate) fn backward_in_place<T: Real>(
    g: &mut [T],
    w: &[T],
    view: View,
    u: &[T],
    v: &[T],
    sigma: T,
) {
    let c = dot(g, w) / sigma;
    for (o, block) in g.chunks_exact_mut(view.block()).enumerate() {
        let v_o = &v[o * view.inner..(o + 1) * view.inner];
        if view.inner == 1 {
            // A Linear weight: the block is one stored row, scaled by the single v_o.
            let k = c * v_o[0];
            for (gx, uj) in block.iter_mut().zip(u) {
                *gx = (*gx - k * *uj) / sigma;
            }
            continue;
        }
        for (uj, row) in u.iter().zip(block.chunks_exact_mut(view.inner)) {
            let k = c * *uj;
            for (gx, vx) in row.iter_mut().zip(v_o) {
                *gx = (*gx - k * *vx) / sigma;
            }
        }
    }
}

//! The matrix view of a weight and the power-iteration arithmetic in Burn tensor operations
//! (the generic path, on every backend), shared by the hook-style reparameterization, Paddle's
//! op and the one-shot measurements.

use core::num::NonZeroUsize;

use burn::tensor::Tensor;

/// How the vectors are normalized. Paddle's two APIs disagree, and both are reproduced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Normalization {
    /// `x / max(‖x‖, eps)`: `paddle.nn.utils.spectral_norm`, PyTorch. NaN propagates.
    MaxEps(f64),
    /// `x / (‖x‖ + eps)`: `paddle.nn.SpectralNorm`'s C++ kernel.
    AddEps(f64),
}

/// `W` with axis `dim` moved to the front and the rest flattened: `[h, numel / h]`, row-major.
/// A copy of the weight when `dim > 0`; the power iteration uses [`WeightMatrix`] instead.
pub(crate) fn matrix<const D: usize>(weight: Tensor<D>, dim: usize) -> Tensor<2> {
    let dims = weight.dims();
    let rows = dims[dim];
    let cols = dims.iter().product::<usize>() / rows;
    let front = if dim == 0 {
        weight
    } else {
        let mut axes = [0usize; D];
        axes[0] = dim;
        for (slot, axis) in axes[1..].iter_mut().zip((0..D).filter(|&axis| axis != dim)) {
            *slot = axis;
        }
        weight.permute(axes)
    };
    front.reshape([rows, cols])
}

/// The matrix view of a weight (axis `dim` as rows, the other axes flattened in order as
/// columns) held as the weight itself reshaped to `[outer, rows, inner]`, which is free: its
/// products with vectors are computed from that, so the permuted matrix (a copy of W on every
/// use for a Linear weight `[in, out]`, whose rows are on axis 1) is never built. Every
/// operation is a Burn tensor operation, differentiable in W.
#[derive(Debug, Clone)]
pub(crate) struct WeightMatrix {
    blocks: Tensor<3>,
}

impl WeightMatrix {
    /// The view of `weight` along `dim` (an axis of it).
    pub fn new<const D: usize>(weight: Tensor<D>, dim: usize) -> Self {
        let dims = weight.dims();
        let outer = dims[..dim].iter().product();
        let inner = dims[dim + 1..].iter().product();
        Self {
            blocks: weight.reshape([outer, dims[dim], inner]),
        }
    }

    /// `[outer, rows, inner]`.
    fn shape(&self) -> [usize; 3] {
        self.blocks.dims()
    }

    /// The matrix's `(rows, columns)`.
    pub fn size(&self) -> (usize, usize) {
        let [outer, rows, inner] = self.shape();
        (rows, outer * inner)
    }

    /// The same view without gradient tracking.
    pub fn without_autodiff(&self) -> Self {
        Self {
            blocks: self.blocks.clone().without_autodiff(),
        }
    }

    /// The device of the weight.
    pub fn device(&self) -> burn::tensor::Device {
        self.blocks.device()
    }

    /// The dtype of the weight.
    pub fn dtype(&self) -> burn::tensor::DType {
        self.blocks.dtype()
    }

    /// `M v` for `v` of the matrix's column count: `[rows]`.
    pub fn times(&self, v: Tensor<1>) -> Tensor<1> {
        let [outer, rows, inner] = self.shape();
        let blocks = self.blocks.clone();
        if outer == 1 {
            matrix_times(blocks.reshape([rows, inner]), v)
        } else if inner == 1 {
            // M = Wᵀ for W `[outer, rows]`: M v = vᵀ W.
            row_times(v, blocks.reshape([outer, rows]))
        } else {
            let per_block = blocks.matmul(v.reshape([outer, inner, 1]));
            per_block.sum_dim(0).reshape([rows])
        }
    }

    /// `Mᵀ u` for `u` of the matrix's row count: `[columns]`.
    pub fn transposed_times(&self, u: Tensor<1>) -> Tensor<1> {
        let [outer, rows, inner] = self.shape();
        let blocks = self.blocks.clone();
        if outer == 1 {
            row_times(u, blocks.reshape([rows, inner]))
        } else if inner == 1 {
            matrix_times(blocks.reshape([outer, rows]), u)
        } else {
            let u = u.reshape([1, 1, rows]).expand([outer, 1, rows]);
            u.matmul(blocks).reshape([outer * inner])
        }
    }
}

/// The fewest elements of a matrix whose products with a vector are split into
/// [`row_blocks`] batched blocks. A matrix-vector matmul is one gemv, and the gemm crate that
/// Burn's CPU backend uses runs every gemv on one thread whatever parallelism it is given (a
/// parallel gemv is open upstream as sarah-quinones/gemm#41); that backend parallelizes a
/// batched matmul across its batch instead, once the batch has at least 4 members and 128³
/// multiply-adds. So a large product is written as a batch of 8 (or 4) row blocks, which that
/// backend spreads over its threads (docs/performance.md). On a GPU the batched product is
/// still one kernel; the split costs one extra small sum where the blocks' partial results
/// must be added ([`row_times`]).
const SPLIT_FROM_ELEMENTS: usize = 1 << 21;

/// How many row blocks a `[rows, cols]` matrix's product with a vector is split into: 8 or 4
/// when they divide the rows evenly and the matrix is large ([`SPLIT_FROM_ELEMENTS`]),
/// otherwise 1.
fn row_blocks(rows: usize, cols: usize) -> usize {
    if rows * cols < SPLIT_FROM_ELEMENTS {
        return 1;
    }
    [8, 4]
        .into_iter()
        .find(|&b| rows.is_multiple_of(b))
        .unwrap_or(1)
}

/// `m x` for `m` `[rows, cols]` and `x` `[cols]`: `[rows]`. Split, each block's rows give
/// their own part of the result, so the batch's output is the product itself.
fn matrix_times(m: Tensor<2>, x: Tensor<1>) -> Tensor<1> {
    let [rows, cols] = m.dims();
    match row_blocks(rows, cols) {
        1 => m.matmul(x.reshape([cols, 1])).reshape([rows]),
        blocks => {
            let m = m.reshape([blocks, rows / blocks, cols]);
            let x = x.reshape([1, cols, 1]).expand([blocks, cols, 1]);
            m.matmul(x).reshape([rows])
        }
    }
}

/// `xᵀ m` for `x` `[rows]` and `m` `[rows, cols]`: `[cols]`. Split, each block of rows gives a
/// partial sum over its rows and the partials are added (one more operation): splitting the
/// columns instead needs strided blocks, which read W slower on one thread.
fn row_times(x: Tensor<1>, m: Tensor<2>) -> Tensor<1> {
    let [rows, cols] = m.dims();
    match row_blocks(rows, cols) {
        1 => x.reshape([1, rows]).matmul(m).reshape([cols]),
        blocks => {
            let m = m.reshape([blocks, rows / blocks, cols]);
            let x = x.reshape([blocks, 1, rows / blocks]);
            x.matmul(m).sum_dim(0).reshape([cols])
        }
    }
}

/// The Euclidean norm as Paddle's CPU `p_norm` computes it: a plain sum of squares in the
/// tensor's own dtype, so it overflows and underflows where Paddle's does. The sum is
/// `sum_dim(0)`, not `sum()`: on Burn's GPU backends `sum()` is two kernels (a zero fill, then
/// an atomic sum into it) and `sum_dim` one reduction, which fusion merges with its neighbours
/// (wgpu-check/tests/launches.rs counts them).
pub(crate) fn norm(x: Tensor<1>) -> Tensor<1> {
    x.square().sum_dim(0).sqrt()
}

/// Scales `x` to unit length under the given rule.
pub(crate) fn normalize(x: Tensor<1>, rule: Normalization) -> Tensor<1> {
    let norm = norm(x.clone());
    let denominator = match rule {
        // `mask_fill` on `norm < eps` keeps a NaN norm (the comparison is false), matching
        // `paddle.maximum`, which propagates NaN from either side.
        Normalization::MaxEps(eps) => norm.clone().mask_fill(norm.lower_elem(eps), eps),
        Normalization::AddEps(eps) => norm.add_scalar(eps),
    };
    x / denominator
}

/// Runs `iterations` power-iteration steps on a constant matrix: `v = normalize(Mᵀu)`, then
/// `u = normalize(M v)`. Returns the final `(u, v)`.
pub(crate) fn power_iterate(
    matrix: &WeightMatrix,
    mut u: Tensor<1>,
    mut v: Tensor<1>,
    iterations: usize,
    rule: Normalization,
) -> (Tensor<1>, Tensor<1>) {
    for _ in 0..iterations {
        v = normalize(matrix.transposed_times(u), rule);
        u = normalize(matrix.times(v.clone()), rule);
    }
    (u, v)
}

/// `iterations` power-iteration steps from `u` on `constant` (`v = normalize(Mᵀu)`, then
/// `u = normalize(M v)`), the last step's `M v` taken on `tracked`, the same matrix in W's
/// graph: `(u, v, M v)`. `σ = u · (M v)` from that product ([`sigma_from_product`]) is then
/// differentiable in `M` without a second pass over it; the values are those of
/// [`power_iterate`] followed by [`sigma`].
pub(crate) fn power_iterate_to_product(
    constant: &WeightMatrix,
    tracked: &WeightMatrix,
    u: Tensor<1>,
    iterations: NonZeroUsize,
    rule: Normalization,
) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
    let mut v = normalize(constant.transposed_times(u), rule);
    for _ in 1..iterations.get() {
        let u = normalize(constant.times(v), rule);
        v = normalize(constant.transposed_times(u), rule);
    }
    let product = tracked.times(v.clone());
    let u = normalize(product.clone().without_autodiff(), rule);
    (u, v, product)
}

/// `σ = u · (M v)`: differentiable in `M`, with `u` and `v` taken as constants. Shape `[1]`.
pub(crate) fn sigma(matrix: &WeightMatrix, u: Tensor<1>, v: Tensor<1>) -> Tensor<1> {
    sigma_from_product(matrix.times(v), u)
}

/// `σ = u · p` for a product `p = M v` already taken. Shape `[1]`. One reduction kernel
/// (`sum_dim`, see [`norm`]).
pub(crate) fn sigma_from_product(product: Tensor<1>, u: Tensor<1>) -> Tensor<1> {
    product.mul(u).sum_dim(0)
}

/// `W / σ`, broadcasting the one-element `σ` over every axis of `W`.
pub(crate) fn divide<const D: usize>(weight: Tensor<D>, sigma: Tensor<1>) -> Tensor<D> {
    weight / sigma.reshape([1; D])
}

#[cfg(test)]
mod tests {
    use core::num::NonZeroUsize;

    use burn::tensor::{Device, Distribution, Tensor};

    use super::{
        Normalization, SPLIT_FROM_ELEMENTS, WeightMatrix, power_iterate, power_iterate_to_product,
        row_blocks, sigma, sigma_from_product,
    };

    /// The split into batched row blocks happens only for large matrices whose rows it divides.
    #[test]
    fn large_products_are_split_into_eight_or_four_even_row_blocks() {
        let cols = SPLIT_FROM_ELEMENTS / 1024;
        assert_eq!(row_blocks(1023, cols), 1, "below the size");
        assert_eq!(row_blocks(1024, cols), 8);
        assert_eq!(row_blocks(1028, cols), 4, "1028 = 4 · 257");
        assert_eq!(row_blocks(1025, cols), 1, "no even split");
    }

    /// `M v` and `Mᵀu` of large views (split into row blocks or not) against the products
    /// summed in f64 on the host.
    #[test]
    fn large_products_match_sums_in_f64() {
        let device = Device::flex();
        device.seed(11);
        let cols = SPLIT_FROM_ELEMENTS / 1024;
        for rows in [1024, 1028, 1025] {
            let weight = Tensor::<2>::random([rows, cols], Distribution::Default, &device);
            let host = weight.to_data().try_to_vec::<f32>().unwrap();
            let at = |i: usize, j: usize| f64::from(host[i * cols + j]);
            // Along axis 0 the matrix is W itself (`outer = 1`); along axis 1 it is Wᵀ
            // (`inner = 1`, a Linear weight's view).
            for dim in [0, 1] {
                let matrix = WeightMatrix::new(weight.clone(), dim);
                let (m_rows, m_cols) = matrix.size();
                let entry = |i, j| if dim == 0 { at(i, j) } else { at(j, i) };
                let x = Tensor::<1>::random([m_cols], Distribution::Default, &device);
                let y = Tensor::<1>::random([m_rows], Distribution::Default, &device);
                let xs = x.to_data().try_to_vec::<f32>().unwrap();
                let ys = y.to_data().try_to_vec::<f32>().unwrap();
                let mx = matrix.times(x).into_data().try_to_vec::<f32>().unwrap();
                let mty = matrix.transposed_times(y).into_data();
                let mty = mty.try_to_vec::<f32>().unwrap();
                let check = |got: &[f32], terms: &dyn Fn(usize) -> Vec<f64>| {
                    for (k, &value) in got.iter().enumerate() {
                        let terms = terms(k);
                        let exact: f64 = terms.iter().sum();
                        let scale: f64 = terms.iter().map(|t| t.abs()).sum();
                        let error = (f64::from(value) - exact).abs();
                        assert!(
                            error <= 1e-5 * scale,
                            "{rows}, dim {dim}, {k}: {value} vs {exact}"
                        );
                    }
                };
                check(&mx, &|i| {
                    (0..m_cols)
                        .map(|j| entry(i, j) * f64::from(xs[j]))
                        .collect()
                });
                check(&mty, &|j| {
                    (0..m_rows)
                        .map(|i| entry(i, j) * f64::from(ys[i]))
                        .collect()
                });
            }
        }
    }

    /// Keeping the last product for σ changes no value: u, v and σ are bitwise those of the
    /// iteration followed by a fresh `σ = u · (M v)`, for every kind of view.
    #[test]
    fn the_kept_product_gives_the_same_vectors_and_sigma_bit_for_bit() {
        let device = Device::flex();
        device.seed(3);
        let rule = Normalization::MaxEps(1e-12);
        let normal = Distribution::Normal(0.0, 1.0);
        let blocks = |dim| WeightMatrix::new(Tensor::<3>::random([6, 5, 4], normal, &device), dim);
        // A Linear weight `[in, out]` along its axis 1: the `inner = 1` view.
        let linear = WeightMatrix::new(Tensor::<2>::random([7, 5], normal, &device), 1);
        for matrix in [blocks(0), blocks(1), linear] {
            let u0 = Tensor::<1>::random([matrix.size().0], Distribution::Default, &device);
            for steps in [1, 3] {
                let (u, v) = power_iterate(&matrix, u0.clone(), u0.zeros_like(), steps, rule);
                let expected = sigma(&matrix, u.clone(), v.clone());
                let iterations = NonZeroUsize::new(steps).unwrap();
                let (u2, v2, product) =
                    power_iterate_to_product(&matrix, &matrix, u0.clone(), iterations, rule);
                let got = sigma_from_product(product, u2.clone());
                for (a, b) in [(u, u2), (v, v2), (expected, got)] {
                    a.into_data().assert_eq(&b.into_data(), true);
                }
            }
        }
    }
}

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
            let m = blocks.reshape([rows, inner]);
            m.matmul(v.reshape([inner, 1])).reshape([rows])
        } else if inner == 1 {
            // M = Wᵀ for W `[outer, rows]`: M v = vᵀ W.
            let w = blocks.reshape([outer, rows]);
            v.reshape([1, outer]).matmul(w).reshape([rows])
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
            let m = blocks.reshape([rows, inner]);
            u.reshape([1, rows]).matmul(m).reshape([inner])
        } else if inner == 1 {
            let w = blocks.reshape([outer, rows]);
            w.matmul(u.reshape([rows, 1])).reshape([outer])
        } else {
            let u = u.reshape([1, 1, rows]).expand([outer, 1, rows]);
            u.matmul(blocks).reshape([outer * inner])
        }
    }
}

/// The Euclidean norm as Paddle's CPU `p_norm` computes it: a plain sum of squares in the
/// tensor's own dtype, so it overflows and underflows where Paddle's does.
fn norm(x: Tensor<1>) -> Tensor<1> {
    x.square().sum().sqrt()
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

/// `σ = u · p` for a product `p = M v` already taken. Shape `[1]`.
pub(crate) fn sigma_from_product(product: Tensor<1>, u: Tensor<1>) -> Tensor<1> {
    product.mul(u).sum()
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
        Normalization, WeightMatrix, power_iterate, power_iterate_to_product, sigma,
        sigma_from_product,
    };

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

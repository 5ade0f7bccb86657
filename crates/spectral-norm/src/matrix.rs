//! The matrix view of a weight and the power-iteration arithmetic shared by the hook-style
//! reparameterization and Paddle's op.

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

/// `M x` for a matrix `[h, w]` and a vector `[w]`.
pub(crate) fn mat_vec(matrix: Tensor<2>, x: Tensor<1>) -> Tensor<1> {
    matrix.matmul(x.unsqueeze_dim(1)).squeeze_dim(1)
}

/// `Mᵀ x` for a matrix `[h, w]` and a vector `[h]`.
pub(crate) fn mat_t_vec(matrix: Tensor<2>, x: Tensor<1>) -> Tensor<1> {
    x.unsqueeze_dim::<2>(0).matmul(matrix).squeeze_dim(0)
}

/// Runs `iterations` power-iteration steps on a constant matrix: `v = normalize(Mᵀu)`, then
/// `u = normalize(M v)`. Returns the final `(u, v)`.
pub(crate) fn power_iterate(
    matrix: &Tensor<2>,
    mut u: Tensor<1>,
    mut v: Tensor<1>,
    iterations: usize,
    rule: Normalization,
) -> (Tensor<1>, Tensor<1>) {
    for _ in 0..iterations {
        v = normalize(mat_t_vec(matrix.clone(), u), rule);
        u = normalize(mat_vec(matrix.clone(), v.clone()), rule);
    }
    (u, v)
}

/// `σ = u · (M v)`: differentiable in `M`, with `u` and `v` taken as constants. Shape `[1]`.
pub(crate) fn sigma(matrix: Tensor<2>, u: Tensor<1>, v: Tensor<1>) -> Tensor<1> {
    mat_vec(matrix, v).mul(u).sum()
}

/// `W / σ`, broadcasting the one-element `σ` over every axis of `W`.
pub(crate) fn divide<const D: usize>(weight: Tensor<D>, sigma: Tensor<1>) -> Tensor<D> {
    weight / sigma.reshape([1; D])
}

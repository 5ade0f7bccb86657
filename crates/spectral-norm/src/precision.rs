//! The dtype a spectral norm computes in. Half-precision weights (f16, bf16) are widened to f32
//! for the power iteration and σ, and `u`, `v` are kept in f32: in f16 a sum of squares
//! overflows from a norm of 256 on, `eps = 1e-12` rounds to 0 (PyTorch's #32137: NaN vectors),
//! and bf16's 8-bit significand loses most of a long dot product. `W / σ` is computed in f32
//! and rounded once to the weight's dtype. f32 and f64 weights compute in their own dtype, as
//! Paddle does.
//!
//! The spectral-norm state widens a weight once per use, before the iteration and the
//! division (which then share the f32 copy, on the fast path where it applies; the gradient
//! reaches the half `W` through the cast), and rounds the result back; the estimators only
//! ever see the compute dtype. The one-shot measurements and Paddle's op widen likewise.

use burn::tensor::{DType, Tensor};

/// The dtype that the arithmetic on a weight of `dtype` runs in.
pub(crate) fn compute_dtype(dtype: DType) -> DType {
    match dtype {
        DType::F16 | DType::BF16 => DType::F32,
        other => other,
    }
}

/// `tensor` in the compute dtype of its own dtype (itself when that is the same), keeping its
/// autodiff graph.
pub(crate) fn widen<const D: usize>(tensor: Tensor<D>) -> Tensor<D> {
    let compute = compute_dtype(tensor.dtype());
    in_dtype(tensor, compute)
}

/// `tensor` cast to `dtype` unless it already has it.
pub(crate) fn in_dtype<const D: usize>(tensor: Tensor<D>, dtype: DType) -> Tensor<D> {
    if tensor.dtype() == dtype {
        tensor
    } else {
        tensor.cast(dtype)
    }
}

/// `eps` as the arithmetic on a weight of `dtype` can use it: a widened weight's `eps` is
/// raised to f32's smallest normal number, so that it never rounds to 0 and `0 / max(0, eps)`
/// stays 0 rather than NaN. Weights computed in their own dtype keep `eps` as given (Paddle).
pub(crate) fn eps_for(eps: f64, dtype: DType) -> f64 {
    if compute_dtype(dtype) == dtype {
        eps
    } else {
        eps.max(f64::from(f32::MIN_POSITIVE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_types_compute_in_f32_and_others_in_their_own() {
        assert_eq!(compute_dtype(DType::F16), DType::F32);
        assert_eq!(compute_dtype(DType::BF16), DType::F32);
        assert_eq!(compute_dtype(DType::F64), DType::F64);
        assert_eq!(compute_dtype(DType::F32), DType::F32);
    }

    #[test]
    fn a_widened_eps_never_rounds_to_zero() {
        assert_eq!(eps_for(1e-12, DType::F16), 1e-12);
        assert_eq!(eps_for(1e-60, DType::BF16), f64::from(f32::MIN_POSITIVE));
        assert!(eps_for(1e-60, DType::F16) as f32 > 0.0);
        assert_eq!(eps_for(1e-60, DType::F64), 1e-60);
    }
}

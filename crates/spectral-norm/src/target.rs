//! The Lipschitz target of a normalized weight: divide by `σ / c` so that the weight's norm is
//! `c` (hard scaling, deel-lip's `k_coef_lip`, TF Model Garden's `norm_multiplier`), or only
//! when `σ` exceeds `c` (the soft clamp `W / max(1, σ / c)` of invertible ResNets' `coeff`).

use burn::prelude::*;

/// What the weight a layer uses is, given its `W`, `σ` and the target `c`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NormTarget {
    /// `c`, finite and positive.
    pub bound: f64,
    /// `W / max(1, σ / c)` instead of `c · W / σ`.
    pub clamp: bool,
}

impl NormTarget {
    /// Paddle's spectral norm: `W / σ`.
    pub const PADDLE: Self = Self {
        bound: 1.0,
        clamp: false,
    };

    /// The weight to use: `divided()` is `W / σ` (with its gradient through σ), `sigma()` σ
    /// for the clamp's decision. Where the clamp does not act (`σ ≤ c`, the kink included)
    /// the weight is `W` itself and the gradient through σ is zero: at `σ = c` that is the
    /// one-sided derivative from below, the subgradient chosen.
    pub fn apply<const D: usize>(
        self,
        base: Tensor<D>,
        sigma: impl FnOnce(&Tensor<D>) -> f64,
        divided: impl FnOnce(Tensor<D>) -> Tensor<D>,
    ) -> Tensor<D> {
        if self == Self::PADDLE {
            return divided(base);
        }
        if self.clamp && sigma(&base) <= self.bound {
            return base;
        }
        divided(base).mul_scalar(self.bound)
    }
}

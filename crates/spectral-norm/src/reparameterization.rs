//! The spectral-norm state attached to a weight: the Burn [`Reparameterization`] that turns the
//! stored `W` into `W / σ` on every use.

use burn::module::Flag;
use burn::module::{Module, Param, Reparameterization};
use burn::prelude::*;

use crate::Workspace;
use crate::buffer::Buffer;
use crate::matrix::{Normalization, divide, matrix, power_iterate, sigma};

/// Spectral normalization state of one weight, attached by [`spectral_norm`](crate::spectral_norm).
///
/// The weight's `Param` keeps storing the trainable `W` (read it with [`Param::base`]);
/// [`Param::val`], and so the layer's own `forward`, returns `W / σ`. In records the vectors are
/// saved as `<param>.spectral_norm.u` (`[h]`) and `<param>.spectral_norm.v` (`[w]`).
///
/// Training mode (the weight lives on an autodiff device and the layer was not put in
/// [`valid`](Module::valid) or [`freeze`](Module::freeze) mode): each use runs
/// `n_power_iterations` steps without gradient, stores the new `u`, `v`, and computes
/// `σ = u·(W v)` with `u`, `v` constant, so the gradient reaches `W` through `σ`.
/// Evaluation mode: no iteration; `σ` comes from the stored vectors.
#[derive(Module, Debug)]
pub struct SpectralNorm {
    /// Left singular vector estimate, `[h]`.
    pub u: Buffer<1>,
    /// Right singular vector estimate, `[w]`.
    pub v: Buffer<1>,
    /// Whether training behaviour (power iteration) is enabled.
    pub training: Param<Flag>,
    /// Axis of the weight that becomes the matrix rows.
    pub dim: usize,
    /// Power-iteration steps per training-mode use of the weight.
    pub n_power_iterations: usize,
    /// Lower bound on a vector norm in `x / max(‖x‖, eps)`.
    pub eps: f64,
    /// Scratch memory of the fast path (not saved).
    pub workspace: Workspace,
}

impl Reparameterization for SpectralNorm {
    const NAME: &'static str = "spectral_norm";

    fn apply<const D: usize>(&self, base: Tensor<D>) -> Tensor<D> {
        #[cfg(feature = "flex")]
        if let Some(normalized) = crate::flex::apply(self, &base) {
            return normalized;
        }
        self.apply_generic(base)
    }
}

impl SpectralNorm {
    /// The backend-independent computation, in Burn tensor operations.
    pub(crate) fn apply_generic<const D: usize>(&self, base: Tensor<D>) -> Tensor<D> {
        let weight_matrix = matrix(base.clone(), self.dim);
        let (u, v) = if self.is_training(&base) {
            self.advance(&weight_matrix)
        } else {
            self.vectors(&weight_matrix)
        };
        divide(base, sigma(weight_matrix, u, v))
    }

    /// Whether a use of `weight` runs the power iteration: Burn's rule for modules with
    /// training behaviour (as in `BatchNorm`), an autodiff device and an enabled flag.
    pub fn is_training<const D: usize>(&self, weight: &Tensor<D>) -> bool {
        weight.is_autodiff() && self.training.is_enabled()
    }

    /// The stored vectors as constants for `weight_matrix`: on its inner (non-autodiff) device
    /// and in its dtype.
    fn vectors(&self, weight_matrix: &Tensor<2>) -> (Tensor<1>, Tensor<1>) {
        (
            self.conform(self.u.get(), weight_matrix),
            self.conform(self.v.get(), weight_matrix),
        )
    }

    fn conform(&self, vector: Tensor<1>, weight_matrix: &Tensor<2>) -> Tensor<1> {
        let device = weight_matrix.clone().without_autodiff().device();
        vector.to_device(&device).cast(weight_matrix.dtype())
    }

    /// Runs the power iteration on a gradient-free copy of the matrix and stores the result.
    ///
    /// `u`'s lock is held from reading it to storing the new pair: concurrent forwards then
    /// behave as if run one after another, and the stored `u`, `v` always belong together.
    fn advance(&self, weight_matrix: &Tensor<2>) -> (Tensor<1>, Tensor<1>) {
        let constant = weight_matrix.clone().without_autodiff();
        let rule = Normalization::MaxEps(self.eps);
        self.u.update(|stored_u| {
            let u = self.conform(stored_u.clone(), weight_matrix);
            let v = self.conform(self.v.get(), weight_matrix);
            let (u, v) = power_iterate(&constant, u, v, self.n_power_iterations, rule);
            self.v.set(v.clone());
            *stored_u = u.clone();
            (u, v)
        })
    }
}

//! Reading the spectral-norm state without advancing it.

use burn::module::Param;
use burn::prelude::*;

use crate::operator::ConvOperator;
use crate::precision::compute_dtype;
use crate::reparameterization::SpectralNorm;

/// What a spectrally normalized parameter currently holds, read without running the power
/// iteration and without gradient tracking.
#[derive(Debug, Clone)]
pub struct SpectralNormSnapshot<const D: usize> {
    /// `σ = u·(W v)` from the stored vectors: the current estimate of `W`'s top singular value.
    pub sigma: f64,
    /// The stored left vector, `[h]`, on the weight's device, in the dtype σ is computed in:
    /// the weight's, f32 for an f16 or bf16 weight.
    pub u: Tensor<1>,
    /// The stored right vector, `[w]`, as `u`.
    pub v: Tensor<1>,
    /// The weight the layer uses in evaluation mode, `W / σ`, computed exactly as evaluation
    /// mode computes it (the same path, the same σ).
    pub weight: Tensor<D>,
    /// The axis used as matrix rows (matrix-view mode; `None` in operator mode).
    pub dim: Option<usize>,
    /// The convolution whose norm σ is (operator mode; `None` in matrix-view mode).
    pub operator: Option<ConvOperator>,
    /// Power-iteration steps the last training use took (0 before the first).
    pub last_steps: usize,
}

/// Reads the spectral-norm state of `param`, or `None` when it has none. Nothing changes: the
/// vectors do not advance, whatever the mode, and the result carries no gradient graph.
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::prelude::*;
/// use spectral_norm::{SpectralNormConfig, inspect, spectral_norm};
///
/// let device = Device::flex().autodiff();
/// let layer = spectral_norm(&LinearConfig::new(6, 3).init(&device), &SpectralNormConfig::new()).unwrap();
/// let before = inspect(&layer.weight).unwrap();
/// let again = inspect(&layer.weight).unwrap();
/// assert_eq!(before.sigma, again.sigma);
/// assert_eq!(before.u.dims(), [3]);
/// assert!(inspect(&layer.bias.unwrap()).is_none());
/// ```
pub fn inspect<const D: usize>(param: &Param<Tensor<D>>) -> Option<SpectralNormSnapshot<D>> {
    let state = param.reparameterization::<SpectralNorm>()?;
    let weight = param.base().without_autodiff();
    let (device, dtype) = (weight.device(), compute_dtype(weight.dtype()));
    let (sigma, normalized) = state.snapshot(weight);
    Some(SpectralNormSnapshot {
        sigma,
        u: state.u().to_device(&device).cast(dtype),
        v: state.v().to_device(&device).cast(dtype),
        weight: normalized,
        dim: state.dim(),
        operator: state.operator().cloned(),
        last_steps: state.last_steps(),
    })
}

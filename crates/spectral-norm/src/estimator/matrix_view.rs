//! The matrix-view estimator: σ of `W` with axis `dim` first and the rest flattened, the
//! accelerated backend first and Burn tensor operations (`matrix.rs`) where it does not apply.

use core::num::NonZeroUsize;

use burn::tensor::Tensor;

use super::{Divided, Estimate, SigmaEstimator};
use crate::accel::{self, Storage};
use crate::matrix::{Normalization, WeightMatrix, divide, power_iterate, sigma};

/// σ of the matrix view `[shape[dim], numel / shape[dim]]`: `u` has `shape[dim]` elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MatrixView {
    dim: usize,
}

impl MatrixView {
    /// The view along `dim` (checked against the weight's rank by the caller).
    pub fn new(dim: usize) -> Self {
        Self { dim }
    }

    /// The axis that becomes the matrix rows.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

/// `vector` on `weight_matrix`'s inner (non-autodiff) device, in its dtype: a constant of the
/// graph.
fn conform(vector: &Tensor<1>, weight_matrix: &WeightMatrix) -> Tensor<1> {
    let device = weight_matrix.without_autodiff().device();
    vector
        .clone()
        .without_autodiff()
        .to_device(&device)
        .cast(weight_matrix.dtype())
}

impl SigmaEstimator for MatrixView {
    fn vector_lengths(&self, dims: &[usize]) -> (usize, usize) {
        let rows = dims[self.dim];
        (rows, dims.iter().product::<usize>() / rows)
    }

    fn iterate<const D: usize>(
        &self,
        weight: &Tensor<D>,
        u: Tensor<1>,
        iterations: NonZeroUsize,
        eps: f64,
    ) -> Estimate {
        if let Some((u, v, sigma)) = accel::iterate(weight, self.dim, &u, iterations, eps) {
            return Estimate {
                u,
                v,
                sigma: Some(sigma),
            };
        }
        let weight_matrix = WeightMatrix::new(weight.clone().without_autodiff(), self.dim);
        let u = conform(&u, &weight_matrix);
        // With at least one step, the first `v = normalize(Mᵀu)` overwrites the start `v`.
        let v = u.zeros_like();
        let rule = Normalization::MaxEps(eps);
        let (u, v) = power_iterate(&weight_matrix, u, v, iterations.get(), rule);
        Estimate { u, v, sigma: None }
    }

    fn sigma<const D: usize>(&self, weight: &Tensor<D>, u: &Tensor<1>, v: &Tensor<1>) -> f64 {
        if let Some(sigma) = accel::sigma(weight, self.dim, u, v) {
            return sigma;
        }
        let weight_matrix = WeightMatrix::new(weight.clone().without_autodiff(), self.dim);
        let (u, v) = (conform(u, &weight_matrix), conform(v, &weight_matrix));
        sigma(&weight_matrix, u, v).into_scalar::<f64>()
    }

    fn divide<const D: usize>(
        &self,
        weight: Tensor<D>,
        estimate: &Estimate,
        storage: impl FnOnce() -> Option<Storage>,
    ) -> Divided<D> {
        let vectors = (&estimate.u, &estimate.v);
        let accelerated = accel::divide(&weight, self.dim, vectors, estimate.sigma, storage);
        if let Some((weight, storage)) = accelerated {
            return Divided {
                weight,
                storage: Some(storage),
            };
        }
        // The generic path recomputes σ in the graph, so that the gradient reaches W.
        let weight_matrix = WeightMatrix::new(weight.clone(), self.dim);
        let (u, v) = (
            conform(&estimate.u, &weight_matrix),
            conform(&estimate.v, &weight_matrix),
        );
        Divided {
            weight: divide(weight, sigma(&weight_matrix, u, v)),
            storage: None,
        }
    }
}

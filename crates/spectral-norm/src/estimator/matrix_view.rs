//! The matrix-view estimator: σ of `W` with axis `dim` first and the rest flattened, the
//! accelerated backend first and Burn tensor operations (`matrix.rs`) where it does not apply.

use core::num::NonZeroUsize;

use burn::tensor::Tensor;

use super::{Divided, Estimate, SigmaEstimator};
use crate::accel::{self, Storage};
use crate::matrix::{
    Normalization, WeightMatrix, divide, power_iterate_to_product, sigma, sigma_from_product,
};

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
                sigma: Some(sigma),
                ..Estimate::of_vectors(u, v)
            };
        }
        let tracked = WeightMatrix::new(weight.clone(), self.dim);
        let constant = tracked.without_autodiff();
        let u = conform(&u, &constant);
        let rule = Normalization::MaxEps(eps);
        let (u, v, product) = power_iterate_to_product(&constant, &tracked, u, iterations, rule);
        Estimate {
            product: Some(product),
            ..Estimate::of_vectors(u, v)
        }
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
        // The generic path takes σ in the graph, so that the gradient reaches W: from the
        // iteration's last product where it kept one, else from the vectors (one more product).
        let weight_matrix = WeightMatrix::new(weight.clone(), self.dim);
        let u = conform(&estimate.u, &weight_matrix);
        let sigma = match &estimate.product {
            Some(product) => sigma_from_product(product.clone(), u),
            None => sigma(&weight_matrix, u, conform(&estimate.v, &weight_matrix)),
        };
        Divided {
            weight: divide(weight, sigma),
            storage: None,
        }
    }
}

//! How σ is estimated: the one seam between the spectral-norm state, which decides when to
//! iterate and owns the vectors, and the arithmetic. Each estimator says what `u` and `v` are
//! for a weight, how a power-iteration step maps them, and how `W / σ` and its gradient come
//! out; the state calls nothing else. [`MatrixView`] is the paper's and Paddle's: σ of the
//! weight reshaped to a matrix. [`OperatorNorm`] is σ of the convolution the weight defines.

mod conv_operator;
mod matrix_view;

use core::num::NonZeroUsize;

use burn::tensor::Tensor;

use crate::accel::Storage;
use crate::matrix::sigma_from_product;

pub(crate) use conv_operator::OperatorNorm;
pub(crate) use matrix_view::MatrixView;

/// The result of a training-mode power iteration: the new vectors and, where the arithmetic
/// produced them on the way, `σ = ⟨u, A v⟩` for them and `A v` itself in `W`'s graph.
#[derive(Debug, Clone)]
pub(crate) struct Estimate {
    pub u: Tensor<1>,
    pub v: Tensor<1>,
    pub sigma: Option<f64>,
    /// `A v` for the final `v`, taken on the tracked weight: the generic path's last product,
    /// from which `u` was normalized, so that the differentiable `σ = ⟨u, A v⟩` needs no second
    /// pass over `W`.
    pub product: Option<Tensor<1>>,
}

impl Estimate {
    /// Just the vectors (stored ones, or from arithmetic that gives nothing more).
    pub fn of_vectors(u: Tensor<1>, v: Tensor<1>) -> Self {
        Self {
            u,
            v,
            sigma: None,
            product: None,
        }
    }
}

/// `W / σ`, and the storage it was written to when that storage can be handed back later.
#[derive(Debug)]
pub(crate) struct Divided<const D: usize> {
    pub weight: Tensor<D>,
    pub storage: Option<Storage>,
}

/// An estimate of the largest singular value of a linear map `A(W)` that the weight defines,
/// by power iteration on vectors `u` (in A's output space) and `v` (its input space).
pub(crate) trait SigmaEstimator {
    /// The lengths of `u` and `v` for a weight of shape `dims`.
    fn vector_lengths(&self, dims: &[usize]) -> (usize, usize);

    /// `iterations` steps `v = normalize(Aᵀu)`, `u = normalize(A v)` from `u`, the weight
    /// taken as a constant. `weight` may be tracked (the training use's): an estimator may then
    /// keep the last `A v` in its graph as [`Estimate::product`] for [`Self::divide`].
    fn iterate<const D: usize>(
        &self,
        weight: &Tensor<D>,
        u: Tensor<1>,
        iterations: NonZeroUsize,
        eps: f64,
    ) -> Estimate;

    /// `σ = ⟨u, A v⟩` without gradient.
    fn sigma<const D: usize>(&self, weight: &Tensor<D>, u: &Tensor<1>, v: &Tensor<1>) -> f64;

    /// σ of an estimate without gradient: what the iteration produced on the way (σ itself,
    /// or `⟨u, A v⟩` from its kept product), else [`Self::sigma`] of its vectors (a pass over
    /// `W`).
    fn sigma_of<const D: usize>(&self, weight: &Tensor<D>, estimate: &Estimate) -> f64 {
        if let Some(sigma) = estimate.sigma {
            return sigma;
        }
        if let Some(product) = &estimate.product {
            let product = product.clone().without_autodiff();
            let u = estimate.u.clone().cast(product.dtype());
            return sigma_from_product(product, u).into_scalar::<f64>();
        }
        self.sigma(&weight.clone().without_autodiff(), &estimate.u, &estimate.v)
    }

    /// `W / σ` with `σ = ⟨u, A(W) v⟩`, differentiable in `W` with `u`, `v` constant; `σ` is
    /// `estimate.sigma` where given, and computed from `estimate.product` where that is given.
    /// Written into what `storage` offers where the backend can (it is asked only then).
    fn divide<const D: usize>(
        &self,
        weight: Tensor<D>,
        estimate: &Estimate,
        storage: impl FnOnce() -> Option<Storage>,
    ) -> Divided<D>;
}

/// The estimators a spectral norm can use.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Estimator {
    /// σ of the weight's matrix view.
    MatrixView(MatrixView),
    /// σ of the convolution the weight defines, on inputs of one size.
    Operator(OperatorNorm),
}

impl SigmaEstimator for Estimator {
    fn vector_lengths(&self, dims: &[usize]) -> (usize, usize) {
        match self {
            Self::MatrixView(estimator) => estimator.vector_lengths(dims),
            Self::Operator(estimator) => estimator.vector_lengths(dims),
        }
    }

    fn iterate<const D: usize>(
        &self,
        weight: &Tensor<D>,
        u: Tensor<1>,
        iterations: NonZeroUsize,
        eps: f64,
    ) -> Estimate {
        match self {
            Self::MatrixView(estimator) => estimator.iterate(weight, u, iterations, eps),
            Self::Operator(estimator) => estimator.iterate(weight, u, iterations, eps),
        }
    }

    fn sigma<const D: usize>(&self, weight: &Tensor<D>, u: &Tensor<1>, v: &Tensor<1>) -> f64 {
        match self {
            Self::MatrixView(estimator) => estimator.sigma(weight, u, v),
            Self::Operator(estimator) => estimator.sigma(weight, u, v),
        }
    }

    fn divide<const D: usize>(
        &self,
        weight: Tensor<D>,
        estimate: &Estimate,
        storage: impl FnOnce() -> Option<Storage>,
    ) -> Divided<D> {
        match self {
            Self::MatrixView(estimator) => estimator.divide(weight, estimate, storage),
            Self::Operator(estimator) => estimator.divide(weight, estimate, storage),
        }
    }
}

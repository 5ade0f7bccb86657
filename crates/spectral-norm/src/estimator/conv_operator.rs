//! The operator estimator: σ of the convolution itself, `x ↦ conv(x)` on inputs of one size,
//! with `u` one output sample and `v` one input sample (both flattened), in Burn's own
//! convolution operations.

use core::num::NonZeroUsize;

use burn::tensor::Tensor;

use super::{Divided, Estimate, SigmaEstimator};
use crate::accel::Storage;
use crate::matrix::{Normalization, divide, normalize, sigma_from_product};
use crate::operator::ConvOperator;

/// σ of `operator` applied with the weight, on one sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OperatorNorm {
    operator: ConvOperator,
}

impl OperatorNorm {
    /// The estimator for `operator` (checked against the weight by the caller).
    pub fn new(operator: ConvOperator) -> Self {
        Self { operator }
    }

    /// The geometry.
    pub fn operator(&self) -> &ConvOperator {
        &self.operator
    }

    /// `[1, channels, spatial…]` of an input (`input = true`) or output sample, as rank `D`.
    fn sample<const D: usize>(&self, weight: &[usize], input: bool) -> [usize; D] {
        let shape = if input {
            self.operator.input_shape(weight)
        } else {
            self.operator.output_shape(weight)
        }
        .expect("the geometry was checked against this weight at attach");
        let mut dims = [1; D];
        dims[1..].copy_from_slice(&shape);
        dims
    }

    /// `A x` for a flat input sample `x`, flat.
    fn apply<const D: usize>(&self, weight: Tensor<D>, x: Tensor<1>) -> Tensor<1> {
        let x = x.reshape(self.sample::<D>(&weight.dims(), true));
        let y = self.operator.apply(weight, x);
        let len = y.shape().num_elements();
        y.reshape([len])
    }

    /// `Aᵀ y` for a flat output sample `y`, flat.
    fn adjoint<const D: usize>(&self, weight: Tensor<D>, y: Tensor<1>) -> Tensor<1> {
        let y = y.reshape(self.sample::<D>(&weight.dims(), false));
        let x = self.operator.adjoint(weight, y);
        let len = x.shape().num_elements();
        x.reshape([len])
    }

    /// σ = ⟨u, A(W) v⟩, differentiable in `W`.
    fn sigma_tensor<const D: usize>(
        &self,
        weight: Tensor<D>,
        u: &Tensor<1>,
        v: &Tensor<1>,
    ) -> Tensor<1> {
        let device = weight.clone().without_autodiff().device();
        let conform = |x: &Tensor<1>| {
            x.clone()
                .without_autodiff()
                .to_device(&device)
                .cast(weight.dtype())
        };
        let (u, v) = (conform(u), conform(v));
        sigma_from_product(self.apply(weight, v), u)
    }
}

impl SigmaEstimator for OperatorNorm {
    fn vector_lengths(&self, dims: &[usize]) -> (usize, usize) {
        let count = |shape: Result<Vec<usize>, _>| {
            shape.map_or(0, |shape: Vec<usize>| shape.iter().product())
        };
        (
            count(self.operator.output_shape(dims)),
            count(self.operator.input_shape(dims)),
        )
    }

    fn iterate<const D: usize>(
        &self,
        weight: &Tensor<D>,
        u: Tensor<1>,
        iterations: NonZeroUsize,
        eps: f64,
    ) -> Estimate {
        let weight = weight.clone().without_autodiff();
        let rule = Normalization::MaxEps(eps);
        let mut u = u
            .without_autodiff()
            .to_device(&weight.device())
            .cast(weight.dtype());
        let mut v = u.zeros_like();
        for _ in 0..iterations.get() {
            v = normalize(self.adjoint(weight.clone(), u), rule);
            u = normalize(self.apply(weight.clone(), v.clone()), rule);
        }
        Estimate::of_vectors(u, v)
    }

    fn sigma<const D: usize>(&self, weight: &Tensor<D>, u: &Tensor<1>, v: &Tensor<1>) -> f64 {
        self.sigma_tensor(weight.clone().without_autodiff(), u, v)
            .into_scalar::<f64>()
    }

    fn divide<const D: usize>(
        &self,
        weight: Tensor<D>,
        estimate: &Estimate,
        _storage: impl FnOnce() -> Option<Storage>,
    ) -> Divided<D> {
        let sigma = self.sigma_tensor(weight.clone(), &estimate.u, &estimate.v);
        Divided {
            weight: divide(weight, sigma),
            storage: None,
        }
    }
}

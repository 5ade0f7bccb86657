//! The spectral norm of any weight, by power iteration run to convergence.

use burn::prelude::*;
use burn::tensor::Distribution;

use crate::error::SpectralNormError;
use crate::matrix::{Normalization, WeightMatrix, matrix, norm, power_iterate};
use crate::precision::widen;

/// How a power iteration run to convergence ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Convergence {
    /// The last estimate of the largest singular value.
    pub sigma: f64,
    /// Steps taken.
    pub iterations: usize,
    /// Whether two successive estimates came within the tolerance before the step limit.
    pub converged: bool,
}

/// Refuses a step limit of 0 and a tolerance that is not finite and positive.
pub(crate) fn check_limits(tolerance: f64, max_iterations: usize) -> Result<(), SpectralNormError> {
    if max_iterations == 0 {
        return Err(SpectralNormError::ZeroMaxIterations);
    }
    if !(tolerance.is_finite() && tolerance > 0.0) {
        return Err(SpectralNormError::InvalidTolerance { tolerance });
    }
    Ok(())
}

/// Runs `step` (one power-iteration step, returning its estimate of σ) until two successive
/// estimates differ by at most `tolerance` relative, or `max_iterations` steps (both checked by
/// [`check_limits`]).
pub(crate) fn until_converged(
    tolerance: f64,
    max_iterations: usize,
    mut step: impl FnMut() -> f64,
) -> Convergence {
    let mut previous = f64::INFINITY;
    let mut outcome = Convergence {
        sigma: 0.0,
        iterations: 0,
        converged: false,
    };
    while outcome.iterations < max_iterations {
        outcome.sigma = step();
        outcome.iterations += 1;
        if (outcome.sigma - previous).abs() <= tolerance * outcome.sigma {
            outcome.converged = true;
            break;
        }
        previous = outcome.sigma;
    }
    outcome
}

/// The largest singular value of `weight`'s matrix view along `dim` (axis `dim` first, the
/// rest flattened), by power iteration from a random start until two successive estimates
/// differ by at most `tolerance` relative, or `max_iterations` steps. Computed without
/// gradient, in f32 for an f16 or bf16 weight; the weight is not modified.
///
/// Use it to check what [`spectral_norm`](crate::spectral_norm) promises: the normalized
/// weight of a layer has a spectral norm close to 1 (see [`inspect`](crate::inspect)).
///
/// ```
/// use burn::prelude::*;
/// use spectral_norm::largest_singular_value;
///
/// let w = Tensor::<2>::from_data([[3.0, 0.0], [0.0, -4.0]], &Device::flex());
/// let sigma = largest_singular_value(w.clone(), 0, 1e-7, 1000).unwrap();
/// assert!(largest_singular_value(w, 2, 1e-7, 1000).is_err());
/// assert!((sigma - 4.0).abs() < 1e-5);
/// ```
///
/// # Errors
///
/// As [`power_iteration`].
pub fn largest_singular_value<const D: usize>(
    weight: Tensor<D>,
    dim: usize,
    tolerance: f64,
    max_iterations: usize,
) -> Result<f64, SpectralNormError> {
    power_iteration(weight, dim, tolerance, max_iterations).map(|outcome| outcome.sigma)
}

/// [`largest_singular_value`], with the steps it took and whether it converged. The start is
/// a normal draw from `weight`'s device's generator (seed the device for a reproducible run).
///
/// ```
/// use burn::prelude::*;
/// use spectral_norm::power_iteration;
///
/// let w = Tensor::<2>::from_data([[3.0, 0.0], [0.0, 1.0]], &Device::flex());
/// let outcome = power_iteration(w, 0, 1e-9, 500).unwrap();
/// assert!(outcome.converged && outcome.iterations > 1);
/// assert!((outcome.sigma - 3.0).abs() < 1e-6);
/// ```
///
/// # Errors
///
/// [`SpectralNormError::ZeroMaxIterations`] and [`SpectralNormError::InvalidTolerance`] for
/// a step limit of 0 and a tolerance that is not finite and positive;
/// [`SpectralNormError::DimOutOfRange`] or [`SpectralNormError::EmptyParameter`] (named
/// `"tensor"`) when `dim` is not an axis of `weight` or an axis is zero-sized.
pub fn power_iteration<const D: usize>(
    weight: Tensor<D>,
    dim: usize,
    tolerance: f64,
    max_iterations: usize,
) -> Result<Convergence, SpectralNormError> {
    let rows = weight.dims().get(dim).copied().unwrap_or(0);
    let options = (&weight.device(), weight.dtype());
    let start = Tensor::random([rows], Distribution::Normal(0.0, 1.0), options).without_autodiff();
    power_iteration_from(weight, dim, start, tolerance, max_iterations)
}

/// [`power_iteration`] from a given start `u` (`[weight.shape[dim]]`, any non-zero length), for
/// runs that must not draw from the device's generator.
///
/// ```
/// use burn::prelude::*;
/// use spectral_norm::power_iteration_from;
///
/// let device = Device::flex();
/// let w = Tensor::<2>::from_data([[3.0, 0.0], [0.0, 1.0]], &device);
/// let start = Tensor::<1>::from_data([1.0, 1.0], &device);
/// let outcome = power_iteration_from(w, 0, start, 1e-9, 500).unwrap();
/// assert!((outcome.sigma - 3.0).abs() < 1e-6);
/// ```
///
/// # Errors
///
/// As [`power_iteration`], and [`SpectralNormError::VectorLength`] for a start of another
/// length.
pub fn power_iteration_from<const D: usize>(
    weight: Tensor<D>,
    dim: usize,
    start: Tensor<1>,
    tolerance: f64,
    max_iterations: usize,
) -> Result<Convergence, SpectralNormError> {
    check_limits(tolerance, max_iterations)?;
    check_axis(&weight, dim)?;
    let weight_matrix = WeightMatrix::new(widen(weight.without_autodiff()), dim);
    let (rows, _) = weight_matrix.size();
    if start.dims() != [rows] {
        return Err(SpectralNormError::VectorLength {
            vector: "u",
            expected: rows,
            got: start.dims()[0],
        });
    }
    let device = weight_matrix.device();
    let rule = Normalization::MaxEps(1e-30);
    let start = start.to_device(&device).cast(weight_matrix.dtype());
    let mut u = crate::matrix::normalize(start, rule);
    let outcome = until_converged(tolerance, max_iterations, || {
        let v;
        (u, v) = power_iterate(
            &weight_matrix,
            u.clone(),
            Tensor::zeros([1], &device),
            1,
            rule,
        );
        norm(weight_matrix.times(v)).into_scalar::<f64>()
    });
    Ok(outcome)
}

/// `weight` as the matrix the spectral norm works on: axis `dim` moved to the front and the
/// other axes flattened in order, `[shape[dim], numel / shape[dim]]`.
///
/// ```
/// use burn::prelude::*;
/// use spectral_norm::matrix_view;
///
/// let w = Tensor::<3>::from_data([[[1.0, 2.0], [3.0, 4.0]]], &Device::flex()); // [1, 2, 2]
/// let m = matrix_view(w, 2).unwrap(); // rows: the last axis
/// m.into_data().assert_eq(&TensorData::from([[1.0, 3.0], [2.0, 4.0]]), false);
/// ```
///
/// # Errors
///
/// As [`power_iteration`].
pub fn matrix_view<const D: usize>(
    weight: Tensor<D>,
    dim: usize,
) -> Result<Tensor<2>, SpectralNormError> {
    check_axis(&weight, dim)?;
    Ok(matrix(weight, dim))
}

/// `σ = u·(M v)`, the estimate that evaluation mode divides by, from stored vectors `u`
/// (`[weight.shape[dim]]`) and `v` (`[numel / weight.shape[dim]]`), without gradient.
///
/// ```
/// use burn::prelude::*;
/// use spectral_norm::sigma_from_vectors;
///
/// let device = Device::flex();
/// let w = Tensor::<2>::from_data([[3.0, 0.0], [0.0, 1.0]], &device);
/// let e0 = Tensor::<1>::from_data([1.0, 0.0], &device);
/// assert_eq!(sigma_from_vectors(w, e0.clone(), e0, 0).unwrap(), 3.0);
/// ```
///
/// # Errors
///
/// [`SpectralNormError::DimOutOfRange`] or [`SpectralNormError::EmptyParameter`] as
/// [`largest_singular_value`]; [`SpectralNormError::InvalidOp`] when the vector lengths do not
/// fit the matrix view.
pub fn sigma_from_vectors<const D: usize>(
    weight: Tensor<D>,
    u: Tensor<1>,
    v: Tensor<1>,
    dim: usize,
) -> Result<f64, SpectralNormError> {
    check_axis(&weight, dim)?;
    let weight_matrix = WeightMatrix::new(widen(weight.without_autodiff()), dim);
    let (rows, cols) = weight_matrix.size();
    if u.dims() != [rows] || v.dims() != [cols] {
        return Err(SpectralNormError::InvalidOp(format!(
            "u has {} and v {} elements, but the matrix view along dim {dim} is {rows} × {cols}",
            u.dims()[0],
            v.dims()[0]
        )));
    }
    let device = weight_matrix.device();
    let dtype = weight_matrix.dtype();
    let (u, v) = (
        u.to_device(&device).cast(dtype),
        v.to_device(&device).cast(dtype),
    );
    Ok(
        crate::matrix::sigma(&weight_matrix, u.without_autodiff(), v.without_autodiff())
            .into_scalar::<f64>(),
    )
}

fn check_axis<const D: usize>(weight: &Tensor<D>, dim: usize) -> Result<(), SpectralNormError> {
    let shape = weight.dims().to_vec();
    let name = String::from("tensor");
    if dim >= D {
        return Err(SpectralNormError::DimOutOfRange { name, dim, shape });
    }
    if shape.contains(&0) {
        return Err(SpectralNormError::EmptyParameter { name, shape });
    }
    Ok(())
}

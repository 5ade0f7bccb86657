//! The spectral norm of any weight, by power iteration run to convergence.

use burn::prelude::*;
use burn::tensor::Distribution;

use crate::SpectralNormError;
use crate::matrix::{Normalization, mat_vec, matrix, power_iterate};

/// The largest singular value of `weight`'s matrix view along `dim` (axis `dim` first, the
/// rest flattened), by power iteration from a random start until two successive estimates
/// differ by at most `tolerance` relative, or `max_iterations` steps. Computed without
/// gradient; the weight is not modified.
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
/// [`SpectralNormError::DimOutOfRange`] or [`SpectralNormError::EmptyParameter`] (named
/// `"tensor"`) when `dim` is not an axis of `weight` or an axis is zero-sized.
pub fn largest_singular_value<const D: usize>(
    weight: Tensor<D>,
    dim: usize,
    tolerance: f64,
    max_iterations: usize,
) -> Result<f64, SpectralNormError> {
    let shape = weight.dims().to_vec();
    let name = String::from("tensor");
    if dim >= D {
        return Err(SpectralNormError::DimOutOfRange { name, dim, shape });
    }
    if shape.contains(&0) {
        return Err(SpectralNormError::EmptyParameter { name, shape });
    }
    let weight_matrix = matrix(weight.without_autodiff(), dim);
    let [rows, _] = weight_matrix.dims();
    let device = weight_matrix.device();
    let rule = Normalization::MaxEps(1e-30);
    let start = Tensor::random(
        [rows],
        Distribution::Normal(0.0, 1.0),
        (&device, weight_matrix.dtype()),
    );
    let mut u = crate::matrix::normalize(start, rule);
    let mut previous = f64::INFINITY;
    let mut sigma = 0.0;
    for _ in 0..max_iterations.max(1) {
        let v;
        (u, v) = power_iterate(&weight_matrix, u, Tensor::zeros([1], &device), 1, rule);
        sigma = mat_vec(weight_matrix.clone(), v)
            .square()
            .sum()
            .sqrt()
            .into_scalar::<f64>();
        if (sigma - previous).abs() <= tolerance * sigma {
            break;
        }
        previous = sigma;
    }
    Ok(sigma)
}

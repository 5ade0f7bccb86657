//! Independent references for the tests: matrix views by index arithmetic, SVD by nalgebra,
//! and plain-Rust data helpers.

#![allow(dead_code)]

use burn::prelude::*;
use burn::tensor::DType;
use nalgebra::DMatrix;

/// A CPU autodiff device (training mode for spectrally normalized weights): Flex, or Burn's
/// ndarray backend (which takes the generic path) when `SPECTRAL_NORM_TEST_BACKEND=ndarray`.
pub fn device() -> Device {
    if on_ndarray() {
        #[allow(deprecated)] // Burn 0.22 deprecates ndarray for Flex; here it is a second backend
        return Device::ndarray().autodiff();
    }
    Device::flex().autodiff()
}

/// Whether the suites were asked to run on ndarray.
pub fn on_ndarray() -> bool {
    std::env::var("SPECTRAL_NORM_TEST_BACKEND").is_ok_and(|backend| backend == "ndarray")
}

/// A float64 tensor from row-major values.
pub fn f64_tensor<const D: usize>(
    values: Vec<f64>,
    shape: [usize; D],
    device: &Device,
) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), (device, DType::F64))
}

/// The values of a tensor, widened to f64, row-major.
pub fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f64> {
    tensor.into_data().convert::<f64>().iter::<f64>().collect()
}

/// Deterministic pseudo-random values in [-1, 1) (a 64-bit LCG), for test inputs.
pub fn pseudo_random(count: usize, seed: u64) -> Vec<f64> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// `numpy.transpose(w, [dim] + rest).reshape(shape[dim], -1)`, by index arithmetic.
pub fn matrix_view(values: &[f64], shape: &[usize], dim: usize) -> DMatrix<f64> {
    let rows = shape[dim];
    let cols = values.len() / rows;
    let mut matrix = DMatrix::zeros(rows, cols);
    let mut index = vec![0usize; shape.len()];
    for &value in values {
        let rest: Vec<usize> = (0..shape.len()).filter(|&a| a != dim).collect();
        let col = rest.iter().fold(0, |acc, &a| acc * shape[a] + index[a]);
        matrix[(index[dim], col)] = value;
        // advance the row-major multi-index
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    matrix
}

/// The largest singular value, by SVD.
pub fn top_singular_value(matrix: &DMatrix<f64>) -> f64 {
    matrix.singular_values().max()
}

/// The Euclidean norm.
pub fn norm(values: &[f64]) -> f64 {
    values.iter().map(|x| x * x).sum::<f64>().sqrt()
}

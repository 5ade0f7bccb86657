//! The gradient reaching W, against central finite differences of an independent plain-Rust
//! implementation of `L(W) = Σ G ⊙ W / (u·(M(W) v))` with u, v held at the values the forward
//! used, and against the closed form `dW = (G − ⟨G, W/σ⟩ u vᵀ) / σ`.

mod common;

use burn::module::{Module, Param};
use burn::prelude::*;
use common::*;
use spectral_norm::{SpectralNormConfig, SpectralNormOpConfig, inspect, spectral_norm};

#[derive(Module, Debug)]
struct Holder<const D: usize> {
    weight: Param<Tensor<D>>,
}

/// `Σ G ⊙ W / σ` with `σ = u·(M v)`, all in plain f64.
fn loss(w: &[f64], g: &[f64], shape: &[usize], dim: usize, u: &[f64], v: &[f64]) -> f64 {
    let m = matrix_view(w, shape, dim);
    let mv = &m * nalgebra::DVector::from_column_slice(v);
    let sigma: f64 = mv.iter().zip(u).map(|(a, b)| a * b).sum();
    w.iter().zip(g).map(|(a, b)| a * b).sum::<f64>() / sigma
}

fn finite_differences(
    w: &[f64],
    g: &[f64],
    shape: &[usize],
    dim: usize,
    u: &[f64],
    v: &[f64],
) -> Vec<f64> {
    let h = 1e-6;
    (0..w.len())
        .map(|i| {
            let (mut plus, mut minus) = (w.to_vec(), w.to_vec());
            plus[i] += h;
            minus[i] -= h;
            (loss(&plus, g, shape, dim, u, v) - loss(&minus, g, shape, dim, u, v)) / (2.0 * h)
        })
        .collect()
}

fn assert_close(got: &[f64], want: &[f64], tolerance: f64) {
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= tolerance * scale,
            "index {i}: {a} vs {b} (scale {scale})"
        );
    }
}

fn check<const D: usize>(shape: [usize; D], dim: usize, n_power_iterations: usize) {
    let device = device();
    let count = shape.iter().product();
    let w = pseudo_random(count, 11);
    // A non-uniform upstream gradient: Paddle's op kernel is only right for a uniform one.
    let g: Vec<f64> = pseudo_random(count, 12)
        .iter()
        .map(|x| 3.0 * x + 0.5)
        .collect();
    let holder = Holder {
        weight: Param::from_tensor(f64_tensor(w.clone(), shape, &device)),
    };
    let config = SpectralNormConfig::new()
        .with_dim(Some(dim))
        .with_n_power_iterations(n_power_iterations);
    let holder = spectral_norm(&holder, &config).unwrap();

    let normalized = holder.weight.val(); // one training-mode use: iterates, then σ
    let grads = (normalized * f64_tensor(g.clone(), shape, &device))
        .sum()
        .backward();
    let got = values(holder.weight.base().grad(&grads).unwrap());

    let state = inspect(&holder.weight).unwrap(); // the u, v that forward used
    let (u, v) = (values(state.u), values(state.v));
    assert_close(&got, &finite_differences(&w, &g, &shape, dim, &u, &v), 1e-7);

    // Closed form, mapped back from the matrix layout by the same index arithmetic.
    let m = matrix_view(&w, &shape, dim);
    let sigma = state.sigma;
    let inner: f64 = w.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>() / sigma;
    let g_matrix = matrix_view(&g, &shape, dim);
    let outer = nalgebra::DVector::from_column_slice(&u)
        * nalgebra::DVector::from_column_slice(&v).transpose();
    let closed = (g_matrix - outer * inner) / sigma;
    let got_matrix = matrix_view(&got, &shape, dim);
    assert_close(got_matrix.as_slice(), closed.as_slice(), 1e-10);
    assert_eq!(m.nrows(), shape[dim]);
}

#[test]
fn linear_weight_gradient_matches_finite_differences() {
    check([4, 3], 1, 1);
}

#[test]
fn conv_weight_along_a_middle_axis_matches_finite_differences() {
    check([3, 4, 2, 2], 1, 3);
}

#[test]
fn rank_one_parameter_matches_finite_differences() {
    check([5], 0, 1);
}

#[test]
fn op_gradient_is_the_true_gradient_not_paddles_kernel() {
    let device = device();
    let shape = [3, 2, 2];
    let w = pseudo_random(12, 21);
    let g: Vec<f64> = pseudo_random(12, 22)
        .iter()
        .map(|x| 2.0 * x + 1.0)
        .collect();
    let op = SpectralNormOpConfig::new(shape.to_vec())
        .with_dim(1)
        .with_power_iters(0) // σ from the stored vectors exactly: u, v are known constants
        .init_with_dtype(&device, burn::tensor::DType::F64)
        .unwrap();
    let (u, v) = (values(op.weight_u()), values(op.weight_v()));
    let x = f64_tensor(w.clone(), shape, &device).require_grad();
    let out = op.forward(x.clone()).unwrap();
    let grads = (out * f64_tensor(g.clone(), shape, &device))
        .sum()
        .backward();
    let got = values(x.grad(&grads).unwrap());
    assert_close(&got, &finite_differences(&w, &g, &shape, 1, &u, &v), 1e-7);
}

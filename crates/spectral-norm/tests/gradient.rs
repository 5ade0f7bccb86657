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

/// `Σ G ⊙ W_eff` for a target bound `c`: `c · W / σ`, or with the clamp `W / max(1, σ / c)`,
/// σ = u·(M v) with u, v fixed; at `σ ≤ c` the clamp leaves `W` as it is.
fn target_loss(
    w: &[f64],
    g: &[f64],
    shape: &[usize],
    u: &[f64],
    v: &[f64],
    c: f64,
    clamp: bool,
) -> f64 {
    let m = matrix_view(w, shape, 0);
    let mv = &m * nalgebra::DVector::from_column_slice(v);
    let sigma: f64 = mv.iter().zip(u).map(|(a, b)| a * b).sum();
    let scale = if clamp {
        1.0 / (sigma / c).max(1.0)
    } else {
        c / sigma
    };
    w.iter().zip(g).map(|(a, b)| a * b).sum::<f64>() * scale
}

/// The target bound's gradient against finite differences of [`target_loss`], with fixed
/// vectors (iteration off, so σ is known before the use): hard scaling, and the clamp above
/// its kink, below it and exactly at it (where the documented subgradient, the derivative
/// from below, is `G`: the weight is used as it is).
#[test]
fn target_bound_and_clamp_gradients_match_finite_differences() {
    use spectral_norm::{SpectralNorm, set_power_iteration};
    let device = device();
    let shape = [4usize, 5];
    let w = pseudo_random(20, 21);
    let g: Vec<f64> = pseudo_random(20, 22)
        .iter()
        .map(|x| 2.0 * x + 0.3)
        .collect();
    let unit = |x: Vec<f64>| {
        let n = norm(&x);
        x.into_iter().map(|a| a / n).collect::<Vec<_>>()
    };
    let (u, v) = (unit(pseudo_random(4, 23)), unit(pseudo_random(5, 24)));
    let m = matrix_view(&w, &shape, 0);
    let sigma: f64 = (&m * nalgebra::DVector::from_column_slice(&v))
        .iter()
        .zip(&u)
        .map(|(a, b)| a * b)
        .sum();
    assert!(sigma > 0.0);
    // At the kink, vectors whose σ has no rounding (σ = |W₀₀|), so that σ = c exactly on
    // every path that computes it.
    let (mut e4, mut e5) = (vec![0.0; 4], vec![0.0; 5]);
    (e4[0], e5[0]) = (w[0].signum(), 1.0);
    let general = (u.clone(), v.clone(), sigma);
    let at_kink = (e4, e5, w[0].abs());
    for (c, clamp, vectors) in [
        (2.5, false, &general),
        (0.5 * sigma, true, &general),
        (2.0 * sigma, true, &general),
        (w[0].abs(), true, &at_kink),
    ] {
        let (u, v, sigma) = vectors.clone();
        let holder = Holder {
            weight: Param::from_tensor(f64_tensor(w.clone(), shape, &device)),
        };
        let config = SpectralNormConfig::new()
            .with_dim(Some(0))
            .with_target_bound(c)
            .with_clamp(clamp);
        let holder = set_power_iteration(spectral_norm(&holder, &config).unwrap(), false);
        let state = holder.weight.reparameterization::<SpectralNorm>().unwrap();
        assert_eq!((state.target_bound(), state.clamps()), (c, clamp));
        state
            .set_vectors(
                f64_tensor(u.clone(), [4], &device),
                f64_tensor(v.clone(), [5], &device),
            )
            .unwrap();
        let used = holder.weight.val();
        let grads = (used.clone() * f64_tensor(g.clone(), shape, &device))
            .sum()
            .backward();
        let got = values(holder.weight.base().grad(&grads).unwrap());
        let h = 1e-6;
        let fd: Vec<f64> = (0..20)
            .map(|i| {
                let (mut plus, mut minus) = (w.clone(), w.clone());
                plus[i] += h;
                minus[i] -= h;
                let f = |x: &[f64]| target_loss(x, &g, &shape, &u, &v, c, clamp);
                (f(&plus) - f(&minus)) / (2.0 * h)
            })
            .collect();
        if clamp && c >= sigma {
            // Not clamped (at the kink too): W itself, and the gradient is G exactly.
            assert_eq!(values(used), w, "c = {c}");
            assert_eq!(got, g, "c = {c}");
            if c > sigma {
                assert_close(&got, &fd, 1e-7);
            }
        } else {
            assert_close(&got, &fd, 1e-7);
            let expected: Vec<f64> = w.iter().map(|x| x * c / sigma).collect();
            assert_close(&values(used), &expected, 1e-12);
        }
        // Evaluation and inspect use the same rule.
        let eval = values(inspect(&holder.weight).unwrap().weight);
        assert_close(&eval, &values(holder.valid().weight.val()), 1e-15);
    }
}

/// The target bound applies in operator mode too, and a bad bound is a typed error.
#[test]
fn target_bound_scales_the_operator_mode_and_bad_bounds_are_refused() {
    use burn::nn::conv::Conv1dConfig;
    use spectral_norm::{SpectralNormError, spectral_norm_conv};
    let device = device();
    let conv = Conv1dConfig::new(2, 3, 3).init(&device);
    let config = SpectralNormConfig::new().with_target_bound(0.75);
    let conv = spectral_norm_conv(&conv, vec![8], &config).unwrap();
    let snapshot = inspect(&conv.weight).unwrap();
    let base = values(conv.weight.base());
    let expected: Vec<f64> = base.iter().map(|x| x * 0.75 / snapshot.sigma).collect();
    assert_close(&values(snapshot.weight), &expected, 1e-6);
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let error = spectral_norm(
            &conv.clone(),
            &SpectralNormConfig::new().with_target_bound(bad),
        );
        assert!(error.is_err());
        let layer = Conv1dConfig::new(2, 3, 3).init(&device);
        let error = spectral_norm(&layer, &SpectralNormConfig::new().with_target_bound(bad));
        assert!(
            matches!(error, Err(SpectralNormError::InvalidTargetBound { .. })),
            "{bad}"
        );
    }
}

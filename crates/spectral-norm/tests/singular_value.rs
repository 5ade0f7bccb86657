//! σ converges to the top singular value (checked against an SVD) and W/σ has spectral norm 1.

mod common;

use burn::module::{Module, Param};
use burn::nn::LinearConfig;
use burn::nn::conv::Conv2dConfig;
use burn::prelude::*;
use common::*;
use proptest::prelude::*;
use spectral_norm::{SpectralNormConfig, inspect, spectral_norm};

/// A module holding one weight of any rank, so any shape and axis can be tested.
#[derive(Module, Debug)]
struct Holder<const D: usize> {
    weight: Param<Tensor<D>>,
}

/// Runs `forwards` training-mode uses of the weight with `iterations` steps each, then returns
/// (σ estimate, σ(W) by SVD, σ(W/σ) by SVD).
fn converge<const D: usize>(values: Vec<f64>, shape: [usize; D], dim: usize) -> (f64, f64, f64) {
    let device = device();
    let holder = Holder {
        weight: Param::from_tensor(f64_tensor(values.clone(), shape, &device)),
    };
    let config = SpectralNormConfig::new()
        .with_dim(Some(dim))
        .with_n_power_iterations(100);
    let holder = spectral_norm(&holder, &config).unwrap();
    for _ in 0..6 {
        let _ = holder.weight.val();
    }
    let snapshot = inspect(&holder.weight).unwrap();
    let normalized = values_of(snapshot.weight);
    (
        snapshot.sigma,
        top_singular_value(&matrix_view(&values, &shape, dim)),
        top_singular_value(&matrix_view(&normalized, &shape, dim)),
    )
}

fn values_of<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    values(t)
}

#[test]
fn diag_2_1_becomes_diag_1_half() {
    let device = device();
    let layer = LinearConfig::new(2, 2).with_bias(false).init(&device);
    let layer = burn::nn::Linear {
        weight: Param::from_tensor(f64_tensor(vec![2.0, 0.0, 0.0, 1.0], [2, 2], &device)),
        ..layer
    };
    let layer = spectral_norm(
        &layer,
        &SpectralNormConfig::new().with_n_power_iterations(30),
    )
    .unwrap();
    let normalized = values(layer.weight.val());
    for (got, want) in normalized.iter().zip([1.0, 0.0, 0.0, 0.5]) {
        assert!((got - want).abs() < 1e-12, "{normalized:?}");
    }
    assert!((inspect(&layer.weight).unwrap().sigma - 2.0).abs() < 1e-12);
}

#[test]
fn conv_weight_along_each_axis_matches_the_svd() {
    let shape = [4, 3, 2, 3];
    let values = pseudo_random(72, 7);
    for dim in 0..4 {
        let (sigma, svd, normalized) = converge(values.clone(), shape, dim);
        assert!(
            (sigma - svd).abs() <= 1e-9 * svd,
            "dim {dim}: σ {sigma} vs SVD {svd}"
        );
        assert!(
            (normalized - 1.0).abs() <= 1e-9,
            "dim {dim}: σ(W/σ) = {normalized}"
        );
    }
}

#[test]
fn burn_layers_default_to_their_output_axis() {
    let device = device();
    let sn = SpectralNormConfig::new();
    let linear = spectral_norm(&LinearConfig::new(6, 4).init(&device), &sn).unwrap();
    assert_eq!(inspect(&linear.weight).unwrap().u.dims(), [4]);
    let conv = spectral_norm(&Conv2dConfig::new([3, 5], [3, 3]).init(&device), &sn).unwrap();
    assert_eq!(inspect(&conv.weight).unwrap().u.dims(), [5]);
    let deconv = burn::nn::conv::ConvTranspose2dConfig::new([6, 4], [3, 3])
        .with_groups(2)
        .init(&device);
    let deconv = spectral_norm(&deconv, &sn).unwrap();
    assert_eq!(
        inspect(&deconv.weight).unwrap().u.dims(),
        [2],
        "out / groups"
    );
    let embedding =
        spectral_norm(&burn::nn::EmbeddingConfig::new(10, 3).init(&device), &sn).unwrap();
    assert_eq!(inspect(&embedding.weight).unwrap().u.dims(), [10]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_matrices_converge_to_the_top_singular_value(
        rows in 1usize..9, cols in 1usize..9, seed in any::<u64>(), dim in 0usize..2,
    ) {
        let values = pseudo_random(rows * cols, seed);
        // Power iteration converges like (σ₂/σ₁)^(2k): keep matrices whose gap makes 600 steps
        // decisive (0.95^1200 ≈ 1e-27) rather than loosen the tolerance.
        let spectrum = matrix_view(&values, &[rows, cols], 0).singular_values();
        let mut sorted: Vec<f64> = spectrum.iter().copied().collect();
        sorted.sort_by(|a, b| b.total_cmp(a));
        prop_assume!(sorted.len() < 2 || sorted[1] < 0.95 * sorted[0]);
        let (sigma, svd, normalized) = converge(values, [rows, cols], dim);
        prop_assert!((sigma - svd).abs() <= 1e-7 * svd, "σ {} vs SVD {}", sigma, svd);
        prop_assert!((normalized - 1.0).abs() <= 1e-7, "σ(W/σ) = {}", normalized);
    }
}

#[test]
fn largest_singular_value_matches_the_svd() {
    let device = device();
    let shape = [5, 2, 3];
    let values = pseudo_random(30, 99);
    for dim in 0..3 {
        let svd = top_singular_value(&matrix_view(&values, &shape, dim));
        let estimate = spectral_norm::largest_singular_value(
            f64_tensor(values.clone(), shape, &device),
            dim,
            1e-14,
            10_000,
        )
        .unwrap();
        assert!(
            (estimate - svd).abs() <= 1e-9 * svd,
            "dim {dim}: {estimate} vs {svd}"
        );
    }
}

/// A step limit of 0 and a tolerance that is not finite and positive are refused, not run as
/// one step or as every step; a run that stops at its limit says it did not converge.
#[test]
fn power_iteration_refuses_what_it_cannot_honour_and_reports_its_steps() {
    use spectral_norm::{SpectralNormError as E, power_iteration, power_iteration_from};
    let device = device();
    let w = || f64_tensor(vec![3.0, 0.0, 0.0, 2.9], [2, 2], &device);
    assert_eq!(
        power_iteration(w(), 0, 1e-9, 0).unwrap_err(),
        E::ZeroMaxIterations
    );
    for tolerance in [f64::NAN, f64::INFINITY, 0.0, -1e-9] {
        let error = spectral_norm::largest_singular_value(w(), 0, tolerance, 100).unwrap_err();
        assert!(
            matches!(error, E::InvalidTolerance { .. }),
            "{tolerance}: {error}"
        );
    }
    // σ = 3 and 2.9 from the start (1, 1): the top direction wins by (2.9/3)^2 per step.
    let start = || f64_tensor(vec![1.0, 1.0], [2], &device);
    let capped = power_iteration_from(w(), 0, start(), 1e-12, 5).unwrap();
    assert_eq!((capped.iterations, capped.converged), (5, false));
    let full = power_iteration_from(w(), 0, start(), 1e-12, 100_000).unwrap();
    assert!(full.converged && full.iterations > 5, "{full:?}");
    assert!((full.sigma - 3.0).abs() < 1e-9, "{full:?}");
    let short = f64_tensor(vec![1.0], [1], &device);
    assert!(matches!(
        power_iteration_from(w(), 0, short, 1e-9, 10).unwrap_err(),
        E::VectorLength {
            expected: 2,
            got: 1,
            ..
        }
    ));
}

#[test]
fn every_burn_layer_with_a_weight_has_a_default_axis() {
    use burn::nn::conv::*;
    let device = device();
    let sn = SpectralNormConfig::new();
    let u_len = |dims: Option<[usize; 1]>| dims.unwrap()[0];
    let c1 = spectral_norm(&Conv1dConfig::new(2, 5, 3).init(&device), &sn).unwrap();
    assert_eq!(u_len(inspect(&c1.weight).map(|s| s.u.dims())), 5);
    let c3 = spectral_norm(&Conv3dConfig::new([2, 6], [1, 2, 2]).init(&device), &sn).unwrap();
    assert_eq!(u_len(inspect(&c3.weight).map(|s| s.u.dims())), 6);
    let t1 = spectral_norm(&ConvTranspose1dConfig::new([2, 7], 3).init(&device), &sn).unwrap();
    assert_eq!(u_len(inspect(&t1.weight).map(|s| s.u.dims())), 7);
    let t3 = spectral_norm(
        &ConvTranspose3dConfig::new([2, 3], [2, 2, 2]).init(&device),
        &sn,
    )
    .unwrap();
    assert_eq!(u_len(inspect(&t3.weight).map(|s| s.u.dims())), 3);
    let deform = DeformConv2dConfig::new([4, 9], [3, 3]).init(&device);
    let deform = spectral_norm(&deform, &sn).unwrap();
    let state = inspect(&deform.weight).unwrap();
    assert_eq!((state.u.dims(), state.v.dims()), ([9], [4 * 9]));
}

/// The suites run on the backend CI asks for (`SPECTRAL_NORM_TEST_BACKEND=ndarray`), not
/// silently on Flex.
#[test]
fn the_shared_device_is_the_requested_backend() {
    let name = format!("{:?}", device());
    assert_eq!(
        name.to_lowercase().contains("ndarray"),
        on_ndarray(),
        "{name}"
    );
}

//! The operator norm of convolutions against an independent reference: the dense matrix of each
//! layer's own forward (Burn's `Conv*`/`ConvTranspose*` modules, bias off), built by pushing
//! every basis vector through it, and its largest singular value by nalgebra's SVD in f64.

mod common;

use burn::module::{Module, ModuleMapper, Param};
use burn::nn::conv::*;
use burn::nn::{PaddingConfig1d, PaddingConfig2d, PaddingConfig3d};
use burn::prelude::*;
use burn::tensor::DType;
use common::*;
use nalgebra::DMatrix;
use spectral_norm::{ConvOperator, SpectralNormError, conv_operator_bound, conv_operator_norm};

/// How far above the true norm the certified bound may lie: the target, met on these small
/// shapes where the circular wrap weighs most (a few pixels of input; they give 1.00–1.18×).
const RATIO: f64 = 1.2;

/// Replaces every float parameter of a module by fixed pseudo-random f64 values.
struct ToF64;

impl ModuleMapper for ToF64 {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, _) = param.consume();
        // Fixed values, not the layer's random draw: Burn's generator is shared by the tests
        // that run at once, so a seed would not make the weights repeatable.
        let dims = tensor.dims();
        let numel = dims.iter().product();
        let data = TensorData::new(pseudo_random(numel, numel as u64), dims);
        let tensor = Tensor::<D>::from_data(data, (&tensor.device(), DType::F64));
        let tensor = if tensor.is_autodiff() {
            tensor.require_grad()
        } else {
            tensor
        };
        Param::initialized(id, tensor)
    }
}

/// The dense matrix of `forward` on inputs of `input` (one sample), columns by basis vector.
fn dense<const D: usize>(
    input: [usize; D],
    forward: impl Fn(Tensor<D>) -> Tensor<D>,
) -> DMatrix<f64> {
    let device = device().inner();
    let n: usize = input.iter().product();
    let mut columns = Vec::new();
    for i in 0..n {
        let mut basis = vec![0.0; n];
        basis[i] = 1.0;
        let x = Tensor::<D>::from_data(TensorData::new(basis, input), (&device, DType::F64));
        columns.push(values(forward(x)));
    }
    DMatrix::from_fn(columns[0].len(), n, |r, c| columns[c][r])
}

/// Checks the estimate against the SVD (within 1e-3 relative, never above) and the certified
/// bound (never below, and within `bound_ratio` of it).
fn check<const D: usize>(
    name: &str,
    weight: Tensor<D>,
    op: &ConvOperator,
    svd: f64,
    bound_ratio: f64,
) {
    let dims = weight.dims();
    let estimate = conv_operator_norm(weight.clone(), op, 1e-13, 50_000)
        .unwrap()
        .sigma;
    assert!(
        (estimate - svd).abs() <= 1e-3 * svd && estimate <= svd * (1.0 + 1e-9),
        "{name} {dims:?}: estimate {estimate} vs SVD {svd}"
    );
    let bound = conv_operator_bound(weight, op).unwrap();
    assert!(
        bound >= svd * (1.0 - 1e-12) && bound <= bound_ratio * svd,
        "{name} {dims:?}: bound {bound} vs SVD {svd} ({:.3}×)",
        bound / svd
    );
}

fn f64_weight<const D: usize>(param: Tensor<D>) -> Tensor<D> {
    param.without_autodiff().cast(DType::F64)
}

#[test]
fn conv1d_2d_3d_match_the_dense_svd() {
    let device = device().inner();
    // Conv1d: stride 2, asymmetric padding, dilation 2, groups 2.
    let conv = Conv1dConfig::new(4, 6, 3)
        .with_stride(2)
        .with_padding(PaddingConfig1d::Explicit(1, 2))
        .with_dilation(2)
        .with_groups(2)
        .with_bias(false)
        .init(&device);
    let conv = conv.map(&mut ToF64).valid();
    let svd = dense([1, 4, 9], |x| conv.forward(x))
        .singular_values()
        .max();
    let op = ConvOperator::conv(vec![9])
        .with_stride(vec![2])
        .with_padding(vec![(1, 2)])
        .with_dilation(vec![2])
        .with_groups(2);
    let weight = f64_weight(conv.weight.val());
    check("conv1d", weight, &op, svd, RATIO);

    // Conv2d: 3×3, stride 1 and 2, symmetric and asymmetric padding.
    for (stride, padding) in [(1, (1, 1, 1, 1)), (2, (1, 0, 2, 1)), (3, (0, 0, 0, 0))] {
        let (top, left, bottom, right) = padding;
        let conv = Conv2dConfig::new([2, 3], [3, 3])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(top, left, bottom, right))
            .with_bias(false)
            .init(&device)
            .map(&mut ToF64)
            .valid();
        let svd = dense([1, 2, 6, 7], |x| conv.forward(x))
            .singular_values()
            .max();
        let op = ConvOperator::conv(vec![6, 7])
            .with_stride(vec![stride; 2])
            .with_padding(vec![(top, bottom), (left, right)]);
        let weight = f64_weight(conv.weight.val());
        check("conv2d", weight, &op, svd, RATIO);
    }

    // Conv3d: 2×2×2, stride 1, padding 1.
    let conv = Conv3dConfig::new([2, 2], [2, 2, 2])
        .with_padding(PaddingConfig3d::Explicit(1, 1, 1))
        .with_bias(false)
        .init(&device)
        .map(&mut ToF64)
        .valid();
    let svd = dense([1, 2, 3, 3, 3], |x| conv.forward(x))
        .singular_values()
        .max();
    let op = ConvOperator::conv(vec![3, 3, 3]).with_padding(vec![(1, 1); 3]);
    let weight = f64_weight(conv.weight.val());
    check("conv3d", weight, &op, svd, RATIO);
}

#[test]
fn transposed_convolutions_match_the_dense_svd() {
    let device = device().inner();
    let t1 = ConvTranspose1dConfig::new([4, 6], 3)
        .with_stride(2)
        .with_padding(1)
        .with_padding_out(1)
        .with_groups(2)
        .with_bias(false)
        .init(&device)
        .map(&mut ToF64)
        .valid();
    let svd = dense([1, 4, 5], |x| t1.forward(x)).singular_values().max();
    let op = ConvOperator::transposed(vec![5])
        .with_stride(vec![2])
        .with_padding(vec![(1, 1)])
        .with_output_padding(vec![1])
        .with_groups(2);
    let weight = f64_weight(t1.weight.val());
    check("conv_transpose1d", weight, &op, svd, RATIO);

    let t2 = ConvTranspose2dConfig::new([3, 2], [3, 3])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .with_dilation([1, 2])
        .with_bias(false)
        .init(&device)
        .map(&mut ToF64)
        .valid();
    let svd = dense([1, 3, 4, 3], |x| t2.forward(x))
        .singular_values()
        .max();
    let op = ConvOperator::transposed(vec![4, 3])
        .with_stride(vec![2, 2])
        .with_padding(vec![(1, 1); 2])
        .with_dilation(vec![1, 2]);
    let weight = f64_weight(t2.weight.val());
    check("conv_transpose2d", weight, &op, svd, RATIO);

    let t3 = ConvTranspose3dConfig::new([2, 2], [2, 2, 2])
        .with_stride([2, 1, 1])
        .with_bias(false)
        .init(&device)
        .map(&mut ToF64)
        .valid();
    let svd = dense([1, 2, 2, 3, 2], |x| t3.forward(x))
        .singular_values()
        .max();
    let op = ConvOperator::transposed(vec![2, 3, 2]).with_stride(vec![2, 1, 1]);
    let weight = f64_weight(t3.weight.val());
    check("conv_transpose3d", weight, &op, svd, RATIO);
}

/// `DeformConv2d`'s regular part: its own forward at zero offsets and no mask, with weight
/// groups, stride and padding, against the operator the layer reports.
#[test]
fn deform_conv2d_regular_part_matches_the_dense_svd() {
    use spectral_norm::ConvLayer;
    let device = device().inner();
    let deform = DeformConv2dConfig::new([4, 2], [3, 3])
        .with_stride([2, 1])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_weight_groups(2)
        .with_bias(false)
        .init(&device)
        .map(&mut ToF64);
    let op = deform.conv_operator(vec![5, 4]);
    let out = op.output_shape(&deform.weight.dims()).unwrap();
    let offsets = Tensor::<4>::zeros([1, 2 * 9, out[1], out[2]], (&device, DType::F64));
    let svd = dense([1, 4, 5, 4], |x| deform.forward(x, offsets.clone(), None))
        .singular_values()
        .max();
    // On this 5×4 input the circular wrap weighs most: the least of the wider circles is
    // what keeps it within the target (1.18×; the smallest circle alone gives 1.21×).
    check(
        "deform_conv2d",
        f64_weight(deform.weight.val()),
        &op,
        svd,
        RATIO,
    );
}

/// The operator norm differs from the matrix-view σ: here larger, for a 3×3 kernel on an
/// 8×8 input with padding 1 (the reason the operator mode exists).
#[test]
fn the_operator_norm_is_not_the_matrix_views() {
    let device = device().inner();
    let weight = f64_tensor(pseudo_random(4 * 2 * 9, 5), [4, 2, 3, 3], &device);
    let op = ConvOperator::conv(vec![8, 8]).with_padding(vec![(1, 1); 2]);
    let operator = conv_operator_norm(weight.clone(), &op, 1e-12, 50_000)
        .unwrap()
        .sigma;
    let matrix = top_singular_value(&matrix_view(&values(weight), &[4, 2, 3, 3], 0));
    assert!(
        operator > 1.05 * matrix,
        "operator {operator} vs matrix view {matrix}"
    );
}

#[test]
fn geometry_that_does_not_fit_is_a_typed_error() {
    let device = device().inner();
    let weight = f64_tensor(pseudo_random(4 * 2 * 9, 6), [4, 2, 3, 3], &device);
    let refused = |op: ConvOperator| {
        matches!(
            conv_operator_norm(weight.clone(), &op, 1e-9, 100),
            Err(SpectralNormError::InvalidGeometry { .. })
        )
    };
    assert!(refused(ConvOperator::conv(vec![2, 2]))); // kernel larger than the input
    assert!(refused(ConvOperator::conv(vec![8]))); // one axis for a 2-D kernel
    assert!(refused(
        ConvOperator::conv(vec![8, 8]).with_stride(vec![0, 1])
    ));
    assert!(refused(ConvOperator::conv(vec![8, 8]).with_groups(3))); // 4 channels
    assert!(refused(
        ConvOperator::transposed(vec![4, 4]).with_padding(vec![(1, 0), (1, 1)])
    ));
    assert!(refused(
        ConvOperator::transposed(vec![4, 4]).with_output_padding(vec![1, 1])
    )); // not below stride 1
    assert!(matches!(
        conv_operator_norm(weight.clone(), &ConvOperator::conv(vec![8, 8]), 1e-9, 0),
        Err(SpectralNormError::ZeroMaxIterations)
    ));
}

/// `conv` with the weight replaced by `weight`, on the autodiff-free f64 device: the reference
/// map for the operator-mode tests, the layer's own forward.
fn conv_with(conv: &Conv2d, weight: Tensor<4>) -> Conv2d {
    Conv2d {
        weight: Param::initialized(burn::module::ParamId::new(), weight),
        ..conv.clone()
    }
}

fn f64_conv(device: &Device, stride: usize) -> Conv2d {
    Conv2dConfig::new([2, 3], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(device)
        .map(&mut ToF64)
}

/// Training uses drive the operator norm of the weight the layer uses to 1 (by the dense SVD
/// of the layer's own forward), not its matrix-view σ; evaluation does not iterate; removal
/// bakes exactly the eval weight.
#[test]
fn operator_mode_normalizes_the_operator_norm() {
    use spectral_norm::{SpectralNormConfig, inspect, remove_spectral_norm, spectral_norm_conv};
    let device = device();
    for stride in [1, 2] {
        let conv = f64_conv(&device, stride);
        let sn = SpectralNormConfig::new().with_n_power_iterations(10);
        let conv = spectral_norm_conv(&conv, vec![6, 6], &sn).unwrap();
        let x = Tensor::<4>::ones([1, 2, 6, 6], (&device, DType::F64));
        // The start is a random draw and the top two singular values here are close, so
        // give power iteration room: 3,000 steps.
        for _ in 0..300 {
            let _ = conv.forward(x.clone());
        }
        let snapshot = inspect(&conv.weight).unwrap();
        assert_eq!(snapshot.dim, None);
        // σ from the stored vectors alone, as a checkpoint reader computes it.
        let from_vectors = spectral_norm::conv_sigma_from_vectors(
            conv.weight.base(),
            snapshot.operator.as_ref().unwrap(),
            snapshot.u.clone(),
            snapshot.v.clone(),
        )
        .unwrap();
        assert!((from_vectors - snapshot.sigma).abs() <= 1e-12 * snapshot.sigma);
        let swapped = spectral_norm::conv_sigma_from_vectors(
            conv.weight.base(),
            snapshot.operator.as_ref().unwrap(),
            snapshot.v.clone(),
            snapshot.u.clone(),
        );
        assert!(matches!(
            swapped,
            Err(SpectralNormError::VectorLength { .. })
        ));
        let normalized = snapshot.weight.clone();
        let reference = conv_with(&conv.valid(), normalized.clone()).valid();
        let operator = dense([1, 2, 6, 6], |x| reference.forward(x))
            .singular_values()
            .max();
        assert!(
            (operator - 1.0).abs() < 1e-3,
            "stride {stride}: ‖A(W/σ)‖ = {operator}"
        );
        let matrix =
            top_singular_value(&matrix_view(&values(normalized.clone()), &[3, 2, 3, 3], 0));
        assert!(
            (matrix - 1.0).abs() > 1e-3,
            "stride {stride}: matrix view {matrix}"
        );

        let eval = conv.valid();
        let u = values(inspect(&eval.weight).unwrap().u);
        let _ = eval.forward(x.clone().without_autodiff());
        assert_eq!(
            values(inspect(&eval.weight).unwrap().u),
            u,
            "eval does not iterate"
        );

        let baked = remove_spectral_norm(conv);
        assert!(inspect(&baked.weight).is_none());
        assert_eq!(values(baked.weight.val()), values(normalized));
    }
}

/// The gradient of `Σ G ⊙ W/σ(W)`, `σ = ⟨u, A(W) v⟩` with u, v fixed, against central finite
/// differences of the same function computed with the layer's own forward.
#[test]
fn operator_mode_gradient_matches_finite_differences() {
    operator_gradient_check(None);
}

/// The target bound in operator mode, against finite differences of `Σ G ⊙ W_eff` with
/// `W_eff = c · W / σ`, and with the clamp `W / max(1, σ / c)` on both sides of its kink (at
/// the kink itself the matrix-mode test checks the subgradient, with a σ free of rounding).
#[test]
fn operator_mode_target_bound_gradients_match_finite_differences() {
    for target in [(1.7, false, false), (0.5, true, true), (2.0, true, true)] {
        operator_gradient_check(Some(target));
    }
}

/// `target`: `(c, clamp, c relative to the starting σ)`.
fn operator_gradient_check(target: Option<(f64, bool, bool)>) {
    use spectral_norm::{
        SpectralNorm, SpectralNormConfig, set_power_iteration, spectral_norm_conv,
    };
    let device = device();
    let layer = f64_conv(&device, 2);
    let conv = spectral_norm_conv(&layer, vec![5, 5], &SpectralNormConfig::new()).unwrap();
    let _ = conv.weight.val(); // one training use: u, v from the iteration
    let conv = set_power_iteration(conv, false);
    let state = conv.weight.reparameterization::<SpectralNorm>().unwrap();
    let (u, v) = (values(state.u()), values(state.v()));
    let w = values(conv.weight.base());
    let g = pseudo_random(w.len(), 21);
    let shape = [3, 2, 3, 3];

    let plain = device.clone().inner();
    let reference = conv.valid();
    let sigma_of = |w: &[f64]| -> f64 {
        let weight = f64_tensor(w.to_vec(), shape, &plain);
        let layer = conv_with(&reference, weight.clone()).valid();
        let input = f64_tensor(v.clone(), [1, 2, 5, 5], &plain);
        let av = values(layer.forward(input));
        av.iter().zip(&u).map(|(a, b)| a * b).sum()
    };
    let sigma0 = sigma_of(&w);
    let (c, clamp) = match target {
        None => (1.0, false),
        Some((c, clamp, relative)) => (if relative { c * sigma0 } else { c }, clamp),
    };
    let conv = if target.is_some() {
        let config = SpectralNormConfig::new()
            .with_target_bound(c)
            .with_clamp(clamp);
        let conv = set_power_iteration(
            spectral_norm_conv(&layer, vec![5, 5], &config).unwrap(),
            false,
        );
        let state = conv.weight.reparameterization::<SpectralNorm>().unwrap();
        state
            .set_vectors(
                f64_tensor(u.clone(), [u.len()], &device),
                f64_tensor(v.clone(), [v.len()], &device),
            )
            .unwrap();
        conv
    } else {
        conv
    };
    let loss = |w: &[f64]| -> f64 {
        let sigma = sigma_of(w);
        let scale = if clamp {
            1.0 / (sigma / c).max(1.0)
        } else {
            c / sigma
        };
        w.iter().zip(&g).map(|(wi, gi)| gi * wi).sum::<f64>() * scale
    };
    let h = 1e-6;
    let numeric: Vec<f64> = (0..w.len())
        .map(|i| {
            let (mut plus, mut minus) = (w.clone(), w.clone());
            plus[i] += h;
            minus[i] -= h;
            (loss(&plus) - loss(&minus)) / (2.0 * h)
        })
        .collect();

    let normalized = conv.weight.val();
    let grads = (normalized * f64_tensor(g.clone(), shape, &device))
        .sum()
        .backward();
    let analytic = values(conv.weight.base().grad(&grads).unwrap());
    let scale = numeric.iter().fold(0f64, |m, x| m.max(x.abs()));
    for (i, (a, n)) in analytic.iter().zip(&numeric).enumerate() {
        assert!(
            (a - n).abs() <= 1e-6 * scale,
            "{target:?} dW[{i}]: {a} vs {n}"
        );
    }
}

#[test]
fn operator_mode_refuses_what_does_not_fit() {
    use burn::nn::LinearConfig;
    use spectral_norm::{SpectralNormConfig, spectral_norm_conv, spectral_norm_operator};
    let device = device();
    let sn = SpectralNormConfig::new();
    let conv = f64_conv(&device, 1);
    let refused =
        |error: SpectralNormError| matches!(error, SpectralNormError::InvalidGeometry { .. });
    // No spatial axes for a 2-D kernel; a dim in operator mode; a Linear weight; an input
    // smaller than the kernel without padding.
    assert!(refused(spectral_norm_conv(&conv, vec![], &sn).unwrap_err()));
    assert!(refused(
        spectral_norm_conv(&conv, vec![6, 6], &sn.clone().with_dim(Some(0))).unwrap_err()
    ));
    let linear = LinearConfig::new(4, 3).init(&device);
    let error = spectral_norm_operator(&linear, &sn, ConvOperator::conv(vec![4])).unwrap_err();
    assert!(refused(error));
    let valid = Conv2dConfig::new([2, 3], [3, 3]).init(&device);
    assert!(refused(
        spectral_norm_conv(&valid, vec![2, 2], &sn).unwrap_err()
    ));
}

/// u and v of the operator mode are saved and loaded with the module's record, as the matrix
/// view's are: a fresh layer loaded from the record evaluates to the same weight.
#[test]
fn operator_mode_vectors_round_trip_through_records() {
    use spectral_norm::{SpectralNormConfig, inspect, spectral_norm_conv};
    let device = device();
    let sn = SpectralNormConfig::new();
    let trained = spectral_norm_conv(&f64_conv(&device, 2), vec![5, 5], &sn).unwrap();
    for _ in 0..3 {
        let _ = trained.weight.val();
    }
    let record = trained.clone().into_record();
    let fresh = spectral_norm_conv(&f64_conv(&device, 2), vec![5, 5], &sn).unwrap();
    let loaded = fresh.load_record(record);
    let (a, b) = (
        inspect(&trained.weight).unwrap(),
        inspect(&loaded.weight).unwrap(),
    );
    assert_eq!(values(a.u), values(b.u));
    assert_eq!(values(a.v), values(b.v));
    assert_eq!(values(a.weight), values(b.weight));
}

/// A Lipschitz probe on a small network of two operator-normalized convolutions and a Linear
/// head with ReLUs between (1-Lipschitz): on random pairs of inputs, `‖f(x) − f(y)‖ ≤ bound ·
/// ‖x − y‖` with `bound` the [`FeedForwardBound`] of the weights the layers use.
#[test]
fn the_product_of_certified_bounds_bounds_a_networks_lipschitz_constant() {
    use burn::nn::LinearConfig;
    use burn::tensor::activation::relu;
    use spectral_norm::{
        ConvLayer, FeedForwardBound, SpectralNormConfig, inspect, spectral_norm, spectral_norm_conv,
    };
    let device = device();
    let sn = SpectralNormConfig::new().with_n_power_iterations(5);
    let first = Conv2dConfig::new([2, 4], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(&device)
        .map(&mut ToF64);
    let second = Conv2dConfig::new([4, 3], [3, 3])
        .with_stride([2, 2])
        .init(&device)
        .map(&mut ToF64);
    let head = LinearConfig::new(12, 5).init(&device).map(&mut ToF64);
    let first = spectral_norm_conv(&first, vec![6, 6], &sn).unwrap();
    let second = spectral_norm_conv(&second, vec![6, 6], &sn).unwrap();
    let head = spectral_norm(&head, &sn).unwrap();
    for _ in 0..10 {
        let _ = (first.weight.val(), second.weight.val(), head.weight.val());
    }
    let (first, second, head) = (first.valid(), second.valid(), head.valid());
    let used = |param| inspect(param).unwrap().weight;
    let mut net = FeedForwardBound::new(vec![2, 6, 6]);
    net.conv(
        "first",
        used(&first.weight),
        &first.conv_operator(vec![6, 6]),
    )
    .unwrap();
    // The second conv takes the first's output; a wrong input size is refused, not multiplied.
    let wrong = net.conv(
        "second",
        used(&second.weight),
        &second.conv_operator(vec![7, 7]),
    );
    assert!(matches!(
        wrong,
        Err(SpectralNormError::InvalidGeometry { .. })
    ));
    assert_eq!(net.layers().len(), 1);
    net.conv(
        "second",
        used(&second.weight),
        &second.conv_operator(vec![6, 6]),
    )
    .unwrap();
    assert_eq!(net.output(), [3, 2, 2]);
    net.linear("head", inspect(&head.weight).unwrap().weight)
        .unwrap();
    let bound = net.bound();
    assert!(bound < 1.3, "three normalized layers: {bound}");
    let plain = device.clone().inner();
    let f = |x: Tensor<4>| {
        let features = relu(second.forward(relu(first.forward(x))));
        head.forward(features.flatten::<2>(1, 3))
    };
    let norm = |t: Tensor<2>| values(t).iter().map(|v| v * v).sum::<f64>().sqrt();
    for seed in 0..20 {
        let x = f64_tensor(pseudo_random(72, 100 + seed), [1, 2, 6, 6], &plain);
        let y = f64_tensor(pseudo_random(72, 200 + seed), [1, 2, 6, 6], &plain);
        let (out, input) = (
            norm(f(x.clone()) - f(y.clone())),
            norm((x - y).flatten::<2>(1, 3)),
        );
        assert!(
            out <= bound * input * (1.0 + 1e-12),
            "pair {seed}: {out} > {bound} · {input}"
        );
    }
}

/// Warm-up at attach runs the operator mode's iteration too: σ before any use is the
/// converged operator norm, not the matrix view's.
#[test]
fn operator_mode_warm_up_converges_at_attach() {
    use spectral_norm::{SpectralNormConfig, inspect, spectral_norm_conv};
    let device = device();
    let conv = f64_conv(&device, 1);
    let sn = SpectralNormConfig::new().with_warmup_iterations(3_000);
    let normalized = spectral_norm_conv(&conv, vec![6, 6], &sn).unwrap();
    let sigma = inspect(&normalized.weight).unwrap().sigma;
    let reference = conv.valid();
    let svd = dense([1, 2, 6, 6], |x| reference.forward(x))
        .singular_values()
        .max();
    assert!((sigma - svd).abs() < 1e-3 * svd, "{sigma} vs {svd}");
}

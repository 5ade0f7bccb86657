//! f16 and bf16 weights: the arithmetic runs in f32 on the widened weight, `u` and `v` are f32,
//! and the weight used is the f32 result rounded once. Each case is checked against the same
//! layer built in f32 from the widened values (same start vectors), and σ against an SVD.

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::DType;
use common::*;
use spectral_norm::{
    SpectralNorm, SpectralNormConfig, SpectralNormOpConfig, inspect, spectral_norm,
    spectral_norm_conv,
};

const HALF: [DType; 2] = [DType::F16, DType::BF16];

/// The significand's precision: the spacing of values in [1, 2).
fn epsilon(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => 2f64.powi(-10),
        DType::BF16 => 2f64.powi(-7),
        _ => unreachable!(),
    }
}

fn tensor<const D: usize>(values: Vec<f64>, shape: [usize; D], dtype: DType) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), (&device(), dtype))
}

/// A Linear `[64, 32]` whose entries reach ±100: ‖Wᵀu‖² is far beyond f16's largest value
/// (65504), so a sum of squares in f16 would overflow.
fn linear(dtype: DType) -> (Linear, Vec<f64>) {
    let raw: Vec<f64> = pseudo_random(64 * 32, 5)
        .iter()
        .map(|x| 100.0 * x)
        .collect();
    // The values the half weight holds, which the f32 reference is built from.
    let held = values(tensor(raw, [64, 32], dtype));
    let layer = LinearConfig::new(64, 32).with_bias(false).init(&device());
    let weight = Param::from_tensor(tensor(held.clone(), [64, 32], dtype));
    (Linear { weight, ..layer }, held)
}

fn linear_in_f32(held: &[f64]) -> Linear {
    let layer = LinearConfig::new(64, 32).with_bias(false).init(&device());
    let weight = Param::from_tensor(tensor(held.to_vec(), [64, 32], DType::F32));
    Linear { weight, ..layer }
}

fn state<const D: usize>(weight: &Param<Tensor<D>>) -> &SpectralNorm {
    weight.reparameterization::<SpectralNorm>().unwrap()
}

/// Both layers start from the same unit vectors.
fn same_start(a: &Param<Tensor<2>>, b: &Param<Tensor<2>>, rows: usize, cols: usize) {
    let unit = |len, seed| {
        let x = pseudo_random(len, seed);
        let n = norm(&x);
        tensor(x.iter().map(|x| x / n).collect(), [len], DType::F32)
    };
    let (u, v) = (unit(rows, 11), unit(cols, 12));
    state(a).set_vectors(u.clone(), v.clone()).unwrap();
    state(b).set_vectors(u, v).unwrap();
}

/// `actual` (a half result) is `expected` (the f32 result) rounded to the half dtype: within
/// one spacing of the half values around it.
fn assert_rounded(actual: &[f64], expected: &[f64], dtype: DType, what: &str) {
    assert_eq!(actual.len(), expected.len());
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let spacing = epsilon(dtype) * e.abs().max(f64::MIN_POSITIVE);
        assert!(
            (a - e).abs() <= spacing,
            "{what} {dtype:?} [{i}]: {a} is not {e} rounded"
        );
    }
}

fn assert_f32_close(actual: &[f64], expected: &[f64], what: &str) {
    let scale = expected.iter().fold(0f64, |m, x| m.max(x.abs()));
    for (a, e) in actual.iter().zip(expected) {
        assert!((a - e).abs() <= 1e-5 * scale, "{what}: {a} vs {e}");
    }
}

#[test]
fn half_weights_train_as_their_f32_widening_does() {
    for dtype in HALF {
        let config = SpectralNormConfig::new().with_n_power_iterations(3);
        let (half, held) = linear(dtype);
        let half = spectral_norm(&half, &config).unwrap();
        let full = spectral_norm(&linear_in_f32(&held), &config).unwrap();
        same_start(&half.weight, &full.weight, 32, 64);

        let x = |dtype| tensor(pseudo_random(4 * 64, 7), [4, 64], dtype);
        let weight_half = half.weight.val();
        let weight_full = full.weight.val();
        assert_eq!(weight_half.dtype(), dtype);
        let (y_half, y_full) = (
            x(dtype).matmul(weight_half.clone()),
            x(DType::F32).matmul(weight_full.clone()),
        );
        assert_eq!(y_half.dtype(), dtype);

        for (name, a, b) in [
            ("u", state(&half.weight).u(), state(&full.weight).u()),
            ("v", state(&half.weight).v(), state(&full.weight).v()),
        ] {
            assert_eq!(a.dtype(), DType::F32, "{name} is kept in f32");
            let a = values(a);
            assert!(a.iter().all(|x| x.is_finite()), "{name} {dtype:?} finite");
            assert_f32_close(&a, &values(b), name);
        }
        assert_rounded(&values(weight_half), &values(weight_full), dtype, "W/σ");

        // The gradient through σ: the f32 gradient, rounded to the weight's dtype.
        let grad_of = |layer: &Linear, weight: Tensor<2>, dtype| {
            let r = tensor(pseudo_random(64 * 32, 9), [64, 32], dtype);
            let grads = (weight * r).sum().backward();
            values(layer.weight.grad(&grads).unwrap())
        };
        let g_half = grad_of(&half, half.weight.val(), dtype);
        let g_full = grad_of(&full, full.weight.val(), DType::F32);
        let scale = g_full.iter().fold(0f64, |m, x| m.max(x.abs()));
        for (a, e) in g_half.iter().zip(&g_full) {
            // Rounded inputs to the backward (W/σ's cotangent in the half dtype) add a few
            // spacings of the largest entry.
            assert!(
                (a - e).abs() <= 4.0 * epsilon(dtype) * scale,
                "∂W {dtype:?}: {a} vs {e}"
            );
        }
        let _ = (y_half, y_full);
    }
}

#[test]
fn a_warmed_up_half_sigma_is_the_svd_of_the_held_values() {
    for dtype in HALF {
        let (half, held) = linear(dtype);
        let config = SpectralNormConfig::new().with_warmup_iterations(200);
        let half = spectral_norm(&half, &config).unwrap();
        let exact = top_singular_value(&matrix_view(&held, &[64, 32], 1));
        let sigma = inspect(&half.weight).unwrap().sigma;
        assert!(exact > 256.0, "σ² overflows f16 in this case");
        assert!(
            (sigma - exact).abs() <= 1e-4 * exact,
            "{dtype:?}: {sigma} vs {exact}"
        );
    }
}

#[test]
fn eps_keeps_half_vectors_finite_where_f32_would() {
    // A zero weight: `0 / max(0, eps)` is 0 in f32, but eps = 1e-12 is 0 in f16 and would give
    // 0 / 0 = NaN vectors.
    for dtype in HALF {
        let layer = LinearConfig::new(3, 2).with_bias(false).init(&device());
        let weight = Param::from_tensor(tensor(vec![0.0; 6], [3, 2], dtype));
        let layer = spectral_norm(&Linear { weight, ..layer }, &SpectralNormConfig::new()).unwrap();
        let _ = layer.weight.val();
        let snapshot = inspect(&layer.weight).unwrap();
        assert!(values(snapshot.u).iter().all(|&x| x == 0.0), "{dtype:?}");
        assert!(values(snapshot.v).iter().all(|&x| x == 0.0), "{dtype:?}");
    }
}

#[test]
fn half_conv_weights_in_both_modes_match_f32() {
    for dtype in HALF {
        let raw: Vec<f64> = pseudo_random(6 * 4 * 3 * 3, 21)
            .iter()
            .map(|x| 40.0 * x)
            .collect();
        let held = values(tensor(raw, [6, 4, 3, 3], dtype));
        let conv = |dtype| {
            let layer: Conv2d = Conv2dConfig::new([4, 6], [3, 3])
                .with_bias(false)
                .init(&device());
            let weight = Param::from_tensor(tensor(held.clone(), [6, 4, 3, 3], dtype));
            Conv2d { weight, ..layer }
        };
        let config = SpectralNormConfig::new().with_warmup_iterations(100);
        let matrix = spectral_norm(&conv(dtype), &config).unwrap();
        let exact = top_singular_value(&matrix_view(&held, &[6, 4, 3, 3], 0));
        let sigma = inspect(&matrix.weight).unwrap().sigma;
        assert!(
            (sigma - exact).abs() <= 1e-4 * exact,
            "matrix {dtype:?}: {sigma} vs {exact}"
        );

        let operator = |dtype| spectral_norm_conv(&conv(dtype), vec![6, 6], &config).unwrap();
        let (half, full) = (operator(dtype), operator(DType::F32));
        let start = inspect(&full.weight).unwrap();
        state(&half.weight)
            .set_vectors(start.u.clone(), start.v.clone())
            .unwrap();
        let (w_half, w_full) = (half.weight.val(), full.weight.val());
        assert_eq!(w_half.dtype(), dtype);
        assert_rounded(&values(w_half), &values(w_full), dtype, "operator W/σ");
        let (s_half, s_full) = (
            inspect(&half.weight).unwrap(),
            inspect(&full.weight).unwrap(),
        );
        assert!((s_half.sigma - s_full.sigma).abs() <= 1e-5 * s_full.sigma);
    }
}

#[test]
fn a_learned_scale_on_a_half_weight_is_kept_in_f32_and_trained() {
    for dtype in HALF {
        let (layer, _) = linear(dtype);
        let config = SpectralNormConfig::new().with_learned_scale(true);
        let layer = spectral_norm(&layer, &config).unwrap();
        let weight = layer.weight.val();
        assert_eq!(weight.dtype(), dtype);
        let r = tensor(pseudo_random(64 * 32, 9), [64, 32], dtype);
        let grads = GradientsParams::from_grads((weight * r).sum().backward(), &layer);
        let layer = AdamConfig::new().init().step(1e-2, layer, grads);
        let gamma = state(&layer.weight).gamma().unwrap();
        assert!(
            (gamma - 1.0).abs() > 1e-3,
            "{dtype:?}: the optimizer moved γ to {gamma}"
        );
        let mut dtypes = ParamDtypes(Vec::new());
        layer.visit(&mut dtypes);
        // The weight, then its state: u, v and γ.
        let f32 = DType::F32;
        let want = [
            (vec![64, 32], dtype),
            (vec![32], f32),
            (vec![64], f32),
            (vec![1], f32),
        ];
        assert_eq!(dtypes.0, want);
        assert_eq!(layer.weight.val().dtype(), dtype);
    }
}

/// The shape and dtype of every float parameter of a module, in visiting order.
struct ParamDtypes(Vec<(Vec<usize>, DType)>);

impl ModuleVisitor for ParamDtypes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let base = param.base();
        self.0.push((base.dims().to_vec(), base.dtype()));
    }
}

#[test]
fn paddles_op_on_a_half_weight_is_its_f32_result_rounded() {
    for dtype in HALF {
        let (_, held) = linear(dtype);
        let op = SpectralNormOpConfig::new(vec![64, 32])
            .with_power_iters(4)
            .init_with_dtype(&device(), dtype)
            .unwrap();
        assert_eq!(op.weight_u().dtype(), DType::F32);
        let half = op.forward(tensor(held.clone(), [64, 32], dtype)).unwrap();
        let full = op.forward(tensor(held, [64, 32], DType::F32)).unwrap();
        assert_eq!(half.dtype(), dtype);
        assert_rounded(&values(half), &values(full), dtype, "op");
    }
}

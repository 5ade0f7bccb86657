//! Training and evaluation modes, records, optimizers, threads and removal.

mod common;

use burn::module::Flag;
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::DType;
use common::*;
use spectral_norm::{
    SpectralNorm, SpectralNormConfig, inspect, remove_spectral_norm, set_power_iteration,
    spectral_norm,
};

fn normalized_linear(device: &Device) -> Linear {
    let layer = LinearConfig::new(5, 4).init(device);
    spectral_norm(&layer, &SpectralNormConfig::new()).unwrap()
}

fn u_of(layer: &Linear) -> Vec<f64> {
    values(inspect(&layer.weight).unwrap().u)
}

fn input(device: &Device) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(
            pseudo_random(10, 3).iter().map(|&x| x as f32).collect(),
            [2, 5],
        ),
        device,
    )
}

#[test]
fn training_forwards_advance_u_and_eval_forwards_do_not() {
    let device = device();
    let layer = normalized_linear(&device);
    let u0 = u_of(&layer);
    let _ = layer.forward(input(&device));
    let u1 = u_of(&layer);
    assert_ne!(u0, u1, "a training forward runs the power iteration");

    let eval = layer.valid();
    let a = values(eval.forward(input(&device).without_autodiff()));
    let b = values(eval.forward(input(&device).without_autodiff()));
    assert_eq!(a, b, "eval is deterministic");
    assert_eq!(u_of(&eval), u1, "eval does not iterate");
}

#[test]
fn eval_after_training_uses_the_same_weight_to_rounding() {
    // Training takes σ = u·(W v) from the fused power-iteration sweep, evaluation from a fresh
    // product: equal up to f32 rounding, not necessarily bitwise.
    let device = device();
    let layer = normalized_linear(&device);
    let trained = values(layer.weight.val());
    let eval = values(layer.valid().weight.val());
    assert_eq!(trained.len(), eval.len());
    for (t, e) in trained.iter().zip(&eval) {
        assert!((t - e).abs() <= 1e-6 * t.abs().max(1e-3), "{t} vs {e}");
    }
}

#[test]
fn freeze_and_set_power_iteration_stop_the_iteration_but_keep_gradients() {
    let device = device();
    let layer = normalized_linear(&device);
    let u0 = u_of(&layer);
    let frozen = layer.clone().freeze();
    let _ = frozen.forward(input(&device));
    assert_eq!(u_of(&frozen), u0);

    let paused = set_power_iteration(layer, false);
    let grads = paused.forward(input(&device)).sum().backward();
    assert_eq!(u_of(&paused), u0);
    assert!(
        paused.weight.base().grad(&grads).is_some(),
        "gradient still reaches W"
    );

    let resumed = set_power_iteration(paused, true);
    let _ = resumed.forward(input(&device));
    assert_ne!(u_of(&resumed), u0);
}

#[test]
fn two_forwards_then_one_backward_sum_their_own_gradients() {
    // The GAN discriminator pattern: D(real) and D(fake), one loss, one backward. Each use
    // must keep the u, v it computed with; the gradient is the sum of the two closed forms.
    let device = device();
    let w = pseudo_random(12, 5);
    let layer = LinearConfig::new(3, 4).with_bias(false).init(&device);
    let layer = Linear {
        weight: Param::from_tensor(f64_tensor(w.clone(), [3, 4], &device)),
        ..layer
    };
    let layer = spectral_norm(&layer, &SpectralNormConfig::new()).unwrap();
    let (x1, x2) = (pseudo_random(6, 6), pseudo_random(6, 7));
    let (g1, g2) = (pseudo_random(8, 8), pseudo_random(8, 9));

    let y1 = layer.forward(f64_tensor(x1.clone(), [2, 3], &device));
    let first = inspect(&layer.weight).unwrap();
    let y2 = layer.forward(f64_tensor(x2.clone(), [2, 3], &device));
    let second = inspect(&layer.weight).unwrap();
    let loss = (y1 * f64_tensor(g1.clone(), [2, 4], &device)).sum()
        + (y2 * f64_tensor(g2.clone(), [2, 4], &device)).sum();
    let grads = loss.backward();
    let got = values(layer.weight.base().grad(&grads).unwrap());

    // Reference in plain f64: dL/dW_sn = xᵀ G; dW = (dW_sn − ⟨dW_sn, W/σ⟩ v uᵀ) / σ, where the
    // Linear weight [in, out] is Mᵀ (u indexes outputs, v inputs).
    let closed = |x: &[f64], g: &[f64], u: &[f64], v: &[f64], sigma: f64| -> Vec<f64> {
        let mut dw = [0.0; 12];
        for i in 0..3 {
            for o in 0..4 {
                dw[i * 4 + o] = (0..2).map(|b| x[b * 3 + i] * g[b * 4 + o]).sum();
            }
        }
        let inner: f64 = dw.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() / sigma;
        (0..12)
            .map(|k| (dw[k] - inner * v[k / 4] * u[k % 4]) / sigma)
            .collect()
    };
    let part1 = closed(&x1, &g1, &values(first.u), &values(first.v), first.sigma);
    let part2 = closed(&x2, &g2, &values(second.u), &values(second.v), second.sigma);
    for k in 0..12 {
        let want = part1[k] + part2[k];
        assert!((got[k] - want).abs() < 1e-12, "{k}: {} vs {want}", got[k]);
    }
}

#[derive(Default)]
struct Paths(Vec<String>, Vec<String>);

impl ModuleVisitor for Paths {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.1.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.1.pop();
    }
    fn visit_float<const D: usize>(&mut self, _: &Param<Tensor<D>>) {
        self.0.push(self.1.join("."));
    }
}

#[test]
fn records_hold_u_and_v_as_after_the_last_forward_and_round_trip_bitwise() {
    let device = device();
    let layer = normalized_linear(&device);
    for _ in 0..3 {
        let _ = layer.forward(input(&device));
    }
    let mut paths = Paths::default();
    layer.visit(&mut paths);
    assert_eq!(
        paths.0,
        [
            "weight",
            "weight.spectral_norm.u",
            "weight.spectral_norm.v",
            "bias"
        ]
    );

    // Straight after a forward, no sync: the record must not be one update stale.
    let live_u = u_of(&layer);
    let dir = std::env::temp_dir().join(format!("spectral-norm-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("layer.bpk");
    layer.clone().save_file(&file).unwrap();

    let fresh = normalized_linear(&device);
    assert_ne!(u_of(&fresh), live_u);
    let loaded = fresh.load_file(&file);
    assert_eq!(u_of(&loaded), live_u);
    let x = input(&device).without_autodiff();
    assert_eq!(
        values(loaded.valid().forward(x.clone())),
        values(layer.valid().forward(x))
    );
    // Burn may read the file lazily: remove it only once every value has been used.
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_optimizer_step_keeps_the_state_and_training_continues() {
    let device = device();
    let mut layer = normalized_linear(&device);
    let mut adam = AdamConfig::new().init();
    let w0 = values(layer.weight.base());
    for _ in 0..3 {
        let grads = layer
            .forward(input(&device))
            .powi_scalar(2)
            .sum()
            .backward();
        let grads = GradientsParams::from_grads(grads, &layer);
        let u_before = u_of(&layer);
        layer = adam.step(1e-2, layer, grads);
        assert_eq!(u_of(&layer), u_before, "the optimizer never touches u");
    }
    assert_ne!(values(layer.weight.base()), w0, "W is trained");
    let sigma = inspect(&layer.weight).unwrap().sigma;
    let _ = layer.forward(input(&device));
    assert!(sigma > 0.0 && inspect(&layer.weight).is_some());
}

#[test]
fn concurrent_forwards_act_as_some_serial_order() {
    // Each training forward maps u to f(u) for the same W, so 2 × 50 forwards from two threads
    // must end where 100 forwards in a row do, if every read-iterate-write is atomic.
    let device = device();
    // 256 × 256: the top singular values are close, so 100 steps are far from converged and
    // a lost update would show.
    let layer = LinearConfig::new(256, 256).init(&device);
    let layer = spectral_norm(&layer, &SpectralNormConfig::new()).unwrap();
    let serial = set_power_iteration(layer.clone(), true); // `map` copies: independent vectors
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                for _ in 0..50 {
                    let _ = layer.forward(Tensor::<2>::ones([1, 256], &device));
                }
            });
        }
    });
    for _ in 0..100 {
        let _ = serial.forward(Tensor::<2>::ones([1, 256], &device));
    }
    let (state, expected) = (
        inspect(&layer.weight).unwrap(),
        inspect(&serial.weight).unwrap(),
    );
    assert!((norm(&values(state.u.clone())) - 1.0).abs() < 1e-5);
    assert!((norm(&values(state.v.clone())) - 1.0).abs() < 1e-5);
    for (got, want) in [(state.u, expected.u), (state.v, expected.v)] {
        let (got, want) = (values(got), values(want));
        assert!(
            got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn clones_share_the_vectors_and_valid_copies_do_not() {
    let device = device();
    let layer = normalized_linear(&device);
    let clone = layer.clone();
    let snapshot = layer.valid();
    let before = u_of(&snapshot);
    let _ = clone.forward(input(&device));
    assert_eq!(u_of(&layer), u_of(&clone));
    assert_ne!(u_of(&layer), before);
    assert_eq!(u_of(&snapshot), before);
}

#[test]
fn removal_bakes_the_eval_weight_and_drops_the_state() {
    let device = device();
    let plain = LinearConfig::new(5, 4).init(&device);
    let params = plain.num_params();
    let layer = spectral_norm(&plain, &SpectralNormConfig::new()).unwrap();
    assert_eq!(
        layer.num_params(),
        params + 4 + 5,
        "u and v are recorded like running stats"
    );
    let _ = layer.forward(input(&device));
    let expected = values(inspect(&layer.weight).unwrap().weight);
    let u = u_of(&layer);
    let baked = remove_spectral_norm(layer);
    assert_eq!(baked.num_params(), params);
    assert!(inspect(&baked.weight).is_none());
    assert_eq!(values(baked.weight.val()), expected);
    assert!(baked.weight.base().is_require_grad(), "still trainable");
    assert_eq!(u.len(), 4);
}

#[test]
fn vectors_take_the_weight_dtype() {
    let device = device();
    let layer = LinearConfig::new(3, 2).init(&device);
    let layer = Linear {
        weight: Param::from_tensor(f64_tensor(pseudo_random(6, 1), [3, 2], &device)),
        ..layer
    };
    let layer = spectral_norm(&layer, &SpectralNormConfig::new()).unwrap();
    let state = inspect(&layer.weight).unwrap();
    assert_eq!(state.u.dtype(), DType::F64);
    assert_eq!(state.v.dtype(), DType::F64);
    assert!((norm(&values(state.u)) - 1.0).abs() < 1e-15);
}

/// `inspect` gives the vectors in the weight's dtype, whatever they were stored in, and exactly
/// the weight that evaluation uses, with the σ it divides by.
#[test]
fn inspect_reports_what_evaluation_uses() {
    let device = device();
    for dtype in [DType::F32, DType::F64] {
        let layer = LinearConfig::new(6, 5).init(&device);
        let weight = Tensor::from_data(
            TensorData::new(pseudo_random(30, 4), [6, 5]),
            (&device, dtype),
        );
        let layer = Linear {
            weight: Param::from_tensor(weight),
            ..layer
        };
        let layer = spectral_norm(&layer, &SpectralNormConfig::new()).unwrap();
        let state = layer.weight.reparameterization::<SpectralNorm>().unwrap();
        // Vectors from elsewhere in another dtype (an f32 checkpoint of an f64 model).
        let other = if dtype == DType::F32 {
            DType::F64
        } else {
            DType::F32
        };
        let vector = |len, seed| {
            Tensor::<1>::from_data(
                TensorData::new(pseudo_random(len, seed), [len]),
                (&device, other),
            )
        };
        state.set_vectors(vector(5, 5), vector(6, 6)).unwrap();

        let snapshot = inspect(&layer.weight).unwrap();
        assert_eq!((snapshot.u.dtype(), snapshot.v.dtype()), (dtype, dtype));
        let eval = layer.valid().weight.val();
        assert_eq!(
            values(snapshot.weight.clone()),
            values(eval),
            "{dtype:?}: bitwise the eval weight"
        );
        let w = values(layer.weight.base());
        let rescaled: Vec<f64> = values(snapshot.weight)
            .iter()
            .map(|x| x * snapshot.sigma)
            .collect();
        let tolerance = if dtype == DType::F32 { 1e-6 } else { 1e-14 };
        for (a, b) in rescaled.iter().zip(&w) {
            assert!(
                (a - b).abs() <= tolerance * b.abs().max(1e-3),
                "{dtype:?}: W/σ · σ = W"
            );
        }
        // σ = u·(W v) from the stored vectors, in f64.
        let m = matrix_view(&w, &[6, 5], 1);
        let (u, v) = (values(snapshot.u), values(snapshot.v));
        let expected: f64 = (0..5)
            .map(|i| u[i] * (0..6).map(|j| m[(i, j)] * v[j]).sum::<f64>())
            .sum();
        assert!(
            (snapshot.sigma - expected).abs() <= 10.0 * tolerance * expected.abs(),
            "{dtype:?}: σ"
        );
    }
}

/// A module of the user's that happens to be called `spectral_norm` and has a training flag is
/// not a spectral-norm state: `set_power_iteration` leaves its flag alone.
#[derive(Module, Debug)]
struct Gate {
    training: Param<Flag>,
}

#[derive(Module, Debug)]
struct Block {
    spectral_norm: Gate,
    fc: Linear,
}

#[test]
fn set_power_iteration_changes_only_spectral_norm_states() {
    let device = device();
    let block = Block {
        spectral_norm: Gate {
            training: Param::from_bool(true),
        },
        fc: normalized_linear(&device),
    };
    let block = set_power_iteration(block, false);
    assert!(block.spectral_norm.training.is_enabled(), "the user's flag");
    let state = block
        .fc
        .weight
        .reparameterization::<SpectralNorm>()
        .unwrap();
    assert!(!state.is_iterating());
    let u = u_of(&block.fc);
    let _ = block.fc.forward(input(&device));
    assert_eq!(u_of(&block.fc), u, "no iteration");
}

/// `W / σ` with `σ = u·(M v)` from the layer's stored W, u and v, in f64 with nalgebra, and
/// the relative error that an f32 computation of it may have. The rounding of `u·(M v)` in f32
/// is bounded by `(rows + cols) · 2⁻²⁴ · |u|ᵀ|M||v|`, which is far above `2⁻²⁴ σ` when the
/// stored vectors no longer fit W (after an optimizer step) and the dot product cancels; the
/// tolerance is twice that bound, plus the division's own rounding.
fn reference_eval_weight(layer: &Linear) -> (Vec<f64>, f64) {
    let snapshot = inspect(&layer.weight).unwrap();
    let weight = values(layer.weight.base());
    let matrix = matrix_view(&weight, &layer.weight.base().dims(), 1);
    let u = nalgebra::DVector::from_vec(values(snapshot.u));
    let v = nalgebra::DVector::from_vec(values(snapshot.v));
    let sigma = u.dot(&(&matrix * &v));
    let magnitude = u.abs().dot(&(matrix.abs() * v.abs()));
    let unit = f64::from(f32::EPSILON) / 2.0;
    let terms = (matrix.nrows() + matrix.ncols()) as f64;
    let tolerance = 2.0 * terms * unit * magnitude / sigma.abs() + 2.0 * unit;
    (weight.iter().map(|w| w / sigma).collect(), tolerance)
}

fn assert_close(actual: &[f64], (expected, tolerance): &(Vec<f64>, f64)) {
    for (a, e) in actual.iter().zip(expected) {
        assert!(
            (a - e).abs() <= tolerance * e.abs().max(1e-2),
            "{a} vs {e} (relative tolerance {tolerance:e})"
        );
    }
}

#[test]
fn the_eval_weight_is_never_stale_after_a_step_a_record_load_or_train() {
    let device = device();
    let mut layer = normalized_linear(&device);
    let mut adam = AdamConfig::new().init();
    let mut previous = Vec::new();
    for _ in 0..2 {
        let eval = layer.valid();
        let first = values(eval.weight.val());
        assert_close(&first, &reference_eval_weight(&eval));
        assert_eq!(
            values(eval.weight.val()),
            first,
            "a repeated eval use is stable"
        );
        assert_ne!(first, previous, "an optimizer step changed the eval weight");
        previous = first;
        let grads = layer
            .forward(input(&device))
            .powi_scalar(2)
            .sum()
            .backward();
        let grads = GradientsParams::from_grads(grads, &layer);
        layer = adam.step(1e-1, layer, grads);
    }

    // A record loaded into an evaluation module that has already used (and cached) its weight.
    let eval = layer.valid();
    let cached = values(eval.weight.val());
    let other = LinearConfig::new(5, 4).init(&device);
    let other = spectral_norm(&other, &SpectralNormConfig::new()).unwrap();
    let dir = std::env::temp_dir().join(format!("spectral-norm-stale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("other.bpk");
    other.clone().save_file(&file).unwrap();
    let loaded = eval.load_file(&file);
    let served = values(loaded.weight.val());
    assert_ne!(served, cached);
    assert_close(&served, &reference_eval_weight(&other.valid()));

    // Back to training: the vectors advance, and the next evaluation uses the new ones.
    let trained = loaded.train();
    let _ = trained.forward(input(&device));
    let eval = trained.valid();
    assert_close(&values(eval.weight.val()), &reference_eval_weight(&eval));
    assert_ne!(values(eval.weight.val()), served);
    // Burn may read the file lazily: remove it only once every value has been used.
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Warm-up runs the power iteration once at attach: with 15 steps on a weight whose top
/// singular value stands well apart (rank one plus small noise), σ before any use is the
/// SVD's; with none (the default) it comes from the random start, far below. Nothing about
/// the later uses changes: the state holds the same settings either way.
#[test]
fn warm_up_iterations_run_at_attach() {
    let device = device();
    let (a, b) = (pseudo_random(16, 1), pseudo_random(12, 2));
    let noise = pseudo_random(16 * 12, 3);
    let values: Vec<f64> = (0..16 * 12)
        .map(|i| 3.0 * a[i / 12] * b[i % 12] + 0.01 * noise[i])
        .collect();
    let (layer, svd) = fixed_linear(values, [16, 12], &device);
    let sigma_at_attach = |config: SpectralNormConfig| {
        let layer = spectral_norm(&layer, &config).unwrap();
        let state = layer.weight.reparameterization::<SpectralNorm>().unwrap();
        assert_eq!(state.n_power_iterations().get(), 1);
        inspect(&layer.weight).unwrap().sigma
    };
    let warm = sigma_at_attach(SpectralNormConfig::pytorch());
    assert!((warm - svd).abs() <= 1e-9 * svd, "{warm} vs {svd}");
    let cold = sigma_at_attach(SpectralNormConfig::new());
    assert!(cold.abs() < 0.9 * svd, "a random start: {cold} vs {svd}");
}

/// A learned scale γ: the used weight is γ · W / σ; its gradient is `Σ G ⊙ W / σ` (for the
/// u, v the forward used); the optimizer trains it; records carry it; removal bakes it in.
#[test]
fn a_learned_scale_is_trained_recorded_and_baked() {
    let device = device();
    let plain = LinearConfig::new(5, 4).init(&device);
    let config = SpectralNormConfig::new().with_learned_scale(true);
    let mut layer = spectral_norm(&plain, &config).unwrap();
    let gamma = |layer: &Linear| {
        let state = layer.weight.reparameterization::<SpectralNorm>().unwrap();
        state.gamma().unwrap()
    };
    assert_eq!(gamma(&layer), 1.0);
    assert!(
        spectral_norm(&plain, &SpectralNormConfig::new())
            .unwrap()
            .weight
            .reparameterization::<SpectralNorm>()
            .unwrap()
            .gamma()
            .is_none()
    );

    let g = Tensor::<2>::from_data(TensorData::new(pseudo_random(20, 31), [5, 4]), &device);
    let used = layer.weight.val();
    let grads = (used * g.clone()).sum().backward();
    let normalized = inspect(&layer.weight).unwrap().weight; // γ = 1: W / σ, same u, v
    let expected: f64 = values(normalized * g.without_autodiff()).iter().sum();
    // γ's gradient, found through the module's parameters:
    let grads = GradientsParams::from_grads(grads, &layer);
    let mut adam = AdamConfig::new().init();
    let mut found = None;
    layer.visit(&mut GammaGrad {
        grads: &grads,
        found: &mut found,
    });
    let got = found.expect("γ has a gradient");
    assert!(
        (got - expected).abs() <= 1e-5 * expected.abs().max(1.0),
        "{got} vs {expected}"
    );

    layer = adam.step(1e-2, layer, grads);
    let trained = gamma(&layer);
    assert!(
        (trained - 1.0).abs() > 1e-4,
        "the optimizer moved γ: {trained}"
    );

    let fresh = spectral_norm(&plain, &config).unwrap();
    let loaded = fresh.load_record(layer.clone().into_record());
    assert_eq!(gamma(&loaded), trained);

    let eval = layer.valid();
    let expected = values(inspect(&eval.weight).unwrap().weight);
    let baked = remove_spectral_norm(eval);
    assert_eq!(values(baked.weight.val()), expected);
}

/// Finds the gradient of the one-element parameter (γ) among a module's parameters.
struct GammaGrad<'a> {
    grads: &'a GradientsParams,
    found: &'a mut Option<f64>,
}

impl ModuleVisitor for GammaGrad<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if param.shape().num_elements() == 1
            && let Some(grad) = self.grads.get::<D>(param.id)
        {
            *self.found = Some(values(grad)[0]);
        }
    }
}

/// A convergence tolerance iterates each training use until σ's relative change is within it
/// (σ then matches the SVD), capped; without one a use takes exactly `n_power_iterations`
/// steps; `inspect` reports the steps; bad values are typed errors.
#[test]
fn a_convergence_tolerance_iterates_until_sigma_settles() {
    use spectral_norm::SpectralNormError;
    let device = device();
    let (layer, svd) = fixed_linear(pseudo_random(12 * 10, 41), [12, 10], &device);
    let use_once = |config: SpectralNormConfig| {
        let layer = spectral_norm(&layer, &config).unwrap();
        assert_eq!(inspect(&layer.weight).unwrap().last_steps, 0);
        let _ = layer.weight.val();
        inspect(&layer.weight).unwrap()
    };
    let plain = use_once(SpectralNormConfig::new().with_n_power_iterations(2));
    assert_eq!(plain.last_steps, 2);
    let converged = use_once(
        SpectralNormConfig::new()
            .with_convergence_tolerance(Some(1e-12))
            .with_max_power_iterations(10_000),
    );
    assert!(
        converged.last_steps > 2 && converged.last_steps < 10_000,
        "{}",
        converged.last_steps
    );
    assert!(
        (converged.sigma - svd).abs() <= 1e-6 * svd,
        "{} vs {svd}",
        converged.sigma
    );
    let capped = use_once(
        SpectralNormConfig::new()
            .with_convergence_tolerance(Some(1e-15))
            .with_max_power_iterations(3),
    );
    assert_eq!(capped.last_steps, 3);
    for (tolerance, cap) in [(f64::NAN, 10), (0.0, 10), (-1.0, 10)] {
        let config = SpectralNormConfig::new()
            .with_convergence_tolerance(Some(tolerance))
            .with_max_power_iterations(cap);
        assert!(matches!(
            spectral_norm(&layer, &config),
            Err(SpectralNormError::InvalidTolerance { .. })
        ));
    }
    let config = SpectralNormConfig::new()
        .with_convergence_tolerance(Some(1e-6))
        .with_max_power_iterations(0);
    assert!(matches!(
        spectral_norm(&layer, &config),
        Err(SpectralNormError::ZeroMaxIterations)
    ));
}

/// A bias-free f64 Linear layer with these weights (`[in, out]`) and its top singular value
/// by the SVD.
fn fixed_linear(values: Vec<f64>, shape: [usize; 2], device: &Device) -> (Linear, f64) {
    let svd = top_singular_value(&matrix_view(&values, &shape, 1));
    let layer = Linear {
        weight: Param::from_tensor(f64_tensor(values, shape, device)),
        bias: None,
    };
    (layer, svd)
}

//! The state on the Flex fast path against the same state on the generic path (Burn tensor
//! operations), on the same inputs: outputs, stored vectors and gradients, for every
//! matrix-view layout; the eval cache's validity; and the reuse of output storage.

use core::num::NonZeroUsize;

use burn::module::Reparameterization;
use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::accel::generic_only;
use crate::estimator::{Estimator, MatrixView};
use crate::flex::{ALLOCATIONS, CACHE_LINE};
use crate::reparameterization::SpectralNorm;
use crate::scratch::KEPT_OUTPUTS;

#[path = "../tests/common/mod.rs"]
mod common;
use common::{pseudo_random, values};

fn tensor<const D: usize>(
    values: Vec<f64>,
    shape: [usize; D],
    dtype: DType,
    device: &Device,
) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), (device, dtype))
}

fn state(shape: &[usize], dim: usize, n: usize, dtype: DType, device: &Device) -> SpectralNorm {
    let rows = shape[dim];
    let cols = shape.iter().product::<usize>() / rows;
    let unit = |v: Vec<f64>| {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.into_iter().map(|x| x / norm).collect::<Vec<_>>()
    };
    let inner = device.clone().inner();
    SpectralNorm::new(
        Estimator::MatrixView(MatrixView::new(dim)),
        (
            tensor(unit(pseudo_random(rows, 1)), [rows], dtype, &inner),
            tensor(unit(pseudo_random(cols, 2)), [cols], dtype, &inner),
        ),
        NonZeroUsize::new(n).unwrap(),
        1e-12,
        crate::target::NormTarget::PADDLE,
        None,
        None,
    )
}

/// A use of `w` on the generic path only.
fn generic<const D: usize>(sn: &SpectralNorm, w: &Tensor<D>) -> Tensor<D> {
    generic_only(|| sn.apply(w.clone()))
}

/// A use of `w` on the fast path, or on the generic path only.
fn use_weight<const D: usize>(sn: &SpectralNorm, w: &Tensor<D>, fast: bool) -> Tensor<D> {
    if fast {
        sn.apply(w.clone())
    } else {
        generic(sn, w)
    }
}

fn assert_close(fast: &[f64], generic: &[f64], tolerance: f64, what: &str) {
    assert_eq!(fast.len(), generic.len(), "{what}: lengths");
    let scale = generic.iter().fold(0f64, |m, x| m.max(x.abs())).max(1e-30);
    for (i, (a, b)) in fast.iter().zip(generic).enumerate() {
        assert!(
            (a - b).abs() <= tolerance * scale,
            "{what}[{i}]: fast {a} vs generic {b}"
        );
    }
}

/// How the gradient `G` reaches the weight's node.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Incoming {
    /// Contiguous, as a Linear's weight gradient.
    Contiguous,
    /// The `swap_dims(0, 1)` view of a contiguous tensor, as a convolution's.
    Swapped,
}

/// One training use through each path, then the gradient of `Σ G ⊙ (W/σ)` for a fixed `G`.
fn compare_training<const D: usize>(shape: [usize; D], dim: usize, n: usize, dtype: DType) {
    compare_training_with(shape, dim, n, dtype, Incoming::Contiguous);
}

fn compare_training_with<const D: usize>(
    shape: [usize; D],
    dim: usize,
    n: usize,
    dtype: DType,
    incoming: Incoming,
) {
    let device = Device::flex().autodiff();
    let tolerance = if dtype == DType::F64 { 1e-12 } else { 2e-5 };
    let numel = shape.iter().product();
    let weight = pseudo_random(numel, 3);
    let g = tensor(pseudo_random(numel, 4), shape, dtype, &device);
    let run = |fast: bool| {
        let sn = state(&shape, dim, n, dtype, &device);
        let w = tensor(weight.clone(), shape, dtype, &device).require_grad();
        let out = use_weight(&sn, &w, fast);
        let loss = match incoming {
            Incoming::Contiguous => (out.clone() * g.clone()).sum(),
            // Same loss; the backward of swap_dims hands G on as a swapped view.
            Incoming::Swapped => {
                let g = g.clone().swap_dims(0, 1).into_data();
                let g = Tensor::<D>::from_data(g, (&device, dtype));
                (out.clone().swap_dims(0, 1) * g).sum()
            }
        };
        let grads = loss.backward();
        let grad = w.grad(&grads).unwrap();
        if fast && incoming == Incoming::Swapped && shape[0] > 1 && shape[1] > 1 && dim < 2 {
            let layout = grad
                .clone()
                .try_into_primitive::<burn::backend::Flex>()
                .unwrap();
            assert!(
                !layout.is_contiguous(),
                "the swapped gradient is updated where it lies, not copied"
            );
        }
        (values(out), values(grad), values(sn.u()), values(sn.v()))
    };
    let (fast, generic) = (run(true), run(false));
    let case = format!("{shape:?} dim {dim} n {n} {dtype:?} {incoming:?}");
    assert_close(&fast.0, &generic.0, tolerance, &format!("W/σ {case}"));
    assert_close(&fast.1, &generic.1, tolerance * 10.0, &format!("dW {case}"));
    assert_close(&fast.2, &generic.2, tolerance, &format!("u {case}"));
    assert_close(&fast.3, &generic.3, tolerance, &format!("v {case}"));
}

#[test]
fn swapped_gradients_as_convolutions_give_them_match_the_generic_path() {
    for dtype in [DType::F32, DType::F64] {
        compare_training_with([4, 3, 2, 2], 0, 1, dtype, Incoming::Swapped); // Conv2d
        compare_training_with([3, 4, 3, 3], 1, 2, dtype, Incoming::Swapped); // ConvTranspose2d
        compare_training_with([5, 6, 3], 0, 1, dtype, Incoming::Swapped); // Conv1d
        compare_training_with([7, 5], 1, 1, dtype, Incoming::Swapped); // a transposed matrix
        compare_training_with([2, 3, 4], 2, 1, dtype, Incoming::Swapped); // copied, then in place
        compare_training_with([1, 4, 3], 0, 1, dtype, Incoming::Swapped); // one output channel
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    pool.install(|| {
        compare_training_with([64, 130, 3, 3], 0, 1, DType::F32, Incoming::Swapped);
        compare_training_with([130, 64, 3, 3], 1, 1, DType::F32, Incoming::Swapped);
    });
}

#[test]
fn fast_path_matches_generic_path_for_every_layout() {
    for dtype in [DType::F32, DType::F64] {
        for n in [1, 3] {
            compare_training([7, 5], 1, n, dtype); // Linear [in, out]: M = Wᵀ
            compare_training([7, 5], 0, n, dtype); // M = W
            compare_training([4, 3, 2, 2], 0, n, dtype); // Conv2d
            compare_training([3, 4, 2, 2], 1, n, dtype); // ConvTranspose2d: blocks
            compare_training([2, 3, 4], 2, n, dtype); // last axis of a 3-D weight
            compare_training([40, 33], 1, n, dtype); // longer than the unrolled lanes
            compare_training([10, 37], 0, n, dtype); // M's rows in fours plus two; lanes plus a tail
        }
    }
}

#[test]
fn eval_matches_generic_and_is_cached_until_an_input_changes() {
    let device = Device::flex();
    let shape = [6, 5];
    let sn = state(&shape, 1, 1, DType::F32, &device);
    let w = tensor(pseudo_random(30, 5), shape, DType::F32, &device);
    let first = sn.apply(w.clone());
    assert_close(
        &values(first.clone()),
        &values(generic(&sn, &w)),
        2e-6,
        "eval W/σ",
    );
    let storage = |t: Tensor<2>| {
        t.try_into_primitive::<burn::backend::Flex>()
            .unwrap()
            .data_arc()
    };
    let again = sn.apply(w.clone());
    assert!(
        std::sync::Arc::ptr_eq(&storage(first.clone()), &storage(again)),
        "served from the cache"
    );

    // New vectors (as a record load or a training use would store): recomputed, and right.
    sn.set_vectors(sn.u().neg(), sn.v()).unwrap();
    let flipped = sn.apply(w.clone());
    assert!(!std::sync::Arc::ptr_eq(
        &storage(first.clone()),
        &storage(flipped.clone())
    ));
    assert_close(
        &values(flipped.clone()),
        &values(generic(&sn, &w)),
        2e-6,
        "after u changed",
    );

    // Any write to a vector's buffer counts, even of the same values.
    let cached = sn.apply(w.clone());
    assert!(std::sync::Arc::ptr_eq(
        &storage(flipped.clone()),
        &storage(cached)
    ));
    sn.set_vectors(sn.u(), sn.v()).unwrap();
    let rewritten = sn.apply(w.clone());
    assert!(
        !std::sync::Arc::ptr_eq(&storage(flipped.clone()), &storage(rewritten)),
        "recomputed after v was written"
    );

    // A different weight tensor with the same values is not trusted to be the same weight.
    let other = tensor(pseudo_random(30, 6), shape, DType::F32, &device);
    let out = sn.apply(other.clone());
    assert_close(
        &values(out),
        &values(generic(&sn, &other)),
        2e-6,
        "after W changed",
    );
}

#[test]
fn weights_large_enough_to_split_across_threads_match_the_generic_path() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    pool.install(|| {
        compare_training([700, 400], 1, 2, DType::F32); // Linear: blocks split by rows of W
        compare_training([700, 400], 0, 2, DType::F32); // dim 0: rows of M split
        compare_training([40, 70, 10, 10], 1, 1, DType::F64); // ConvTranspose: blocks
    });
}

/// Two training uses before one backward (a discriminator on real and on fake data): each
/// backward uses its own vectors and σ, and the first output keeps its values although the
/// second use writes into reused storage.
#[test]
fn backward_of_an_earlier_use_matches_the_generic_path() {
    let device = Device::flex().autodiff();
    for (shape, dim) in [([6usize, 5usize], 1usize), ([5, 4], 0)] {
        let numel = shape.iter().product();
        let weight = pseudo_random(numel, 7);
        let g1 = tensor(pseudo_random(numel, 8), shape, DType::F64, &device);
        let g2 = tensor(pseudo_random(numel, 9), shape, DType::F64, &device);
        let run = |fast: bool| {
            let sn = state(&shape, dim, 2, DType::F64, &device);
            let w = tensor(weight.clone(), shape, DType::F64, &device).require_grad();
            let apply = |w: &Tensor<2>| use_weight(&sn, w, fast);
            let first = apply(&w);
            let second = apply(&w);
            let loss = (first.clone() * g1.clone()).sum() + (second * g2.clone()).sum();
            (values(w.grad(&loss.backward()).unwrap()), values(first))
        };
        let (fast, generic) = (run(true), run(false));
        let case = format!("{shape:?} dim {dim}");
        assert_close(&fast.0, &generic.0, 1e-11, &format!("dW {case}"));
        assert_close(&fast.1, &generic.1, 1e-12, &format!("first W/σ {case}"));
    }
}

/// `W / σ` starts on a cache line in training and in eval, whatever the weight's own offset.
#[test]
fn outputs_start_on_a_cache_line() {
    let shape = [8, 3, 3, 3];
    let values = pseudo_random(216, 7);
    for device in [Device::flex().autodiff(), Device::flex()] {
        let sn = state(&shape, 0, 1, DType::F32, &device);
        for _ in 0..2 {
            let w = tensor(values.clone(), shape, DType::F32, &device);
            let out = sn.apply(w.clone()).without_autodiff();
            assert_eq!(address(out) % CACHE_LINE, 0);
        }
    }
}

/// Output storage allocated on this thread so far.
fn allocations() -> usize {
    ALLOCATIONS.with(|count| count.get())
}

/// A training-mode state for the fast path, a twin for the generic path that advances alongside
/// it, and a trainable weight.
fn twins(
    shape: [usize; 2],
    dim: usize,
    dtype: DType,
    seed: u64,
) -> (SpectralNorm, SpectralNorm, Tensor<2>) {
    let device = Device::flex().autodiff();
    let weight = tensor(
        pseudo_random(shape[0] * shape[1], seed),
        shape,
        dtype,
        &device,
    );
    let fresh = || state(&shape, dim, 1, dtype, &device);
    (fresh(), fresh(), weight.require_grad())
}

/// Two training uses before each backward (a discriminator on real and on fake data): from the
/// second step on, both write into storage kept from the first step, so no step allocates a
/// W-sized tensor; the outputs stay right.
#[test]
fn two_uses_per_step_reuse_their_storage() {
    let (sn, reference, w) = twins([6, 5], 1, DType::F32, 10);
    let step = || {
        let first = sn.apply(w.clone());
        let second = sn.apply(w.clone());
        for out in [&first, &second] {
            let expected = generic(&reference, &w);
            assert_close(&values(out.clone()), &values(expected), 2e-6, "W/σ");
        }
        drop((first.sum() + second.sum()).backward());
    };
    let before = allocations();
    step();
    assert_eq!(
        allocations(),
        before + 2,
        "the first step allocates for each use"
    );
    for _ in 0..3 {
        step();
    }
    assert_eq!(allocations(), before + 2, "later steps reuse that storage");
    assert_eq!(sn.kept_outputs(), 2);
}

/// Outputs that the caller keeps are never written over, and at most `KEPT_OUTPUTS` of them
/// are kept for reuse.
#[test]
fn outputs_held_by_the_caller_are_not_reused_and_not_all_kept() {
    let (sn, reference, w) = twins([5, 4], 0, DType::F64, 11);
    let held: Vec<_> = (0..KEPT_OUTPUTS + 2)
        .map(|_| {
            let expected = values(generic(&reference, &w));
            (sn.apply(w.clone()), expected)
        })
        .collect();
    assert_eq!(sn.kept_outputs(), KEPT_OUTPUTS);
    for (out, expected) in held {
        assert_close(&values(out), &expected, 1e-12, "held W/σ");
    }
}

/// Burn's optimizers map the whole module on every step (`Module::map`): the kept storage must
/// survive that, or every step after an optimizer step allocates (and page-faults) a fresh
/// W-sized tensor. The result stays what the generic path gives for the same weights.
#[test]
fn optimizer_steps_keep_the_output_storage() {
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{AdamConfig, GradientsParams};

    let device = Device::flex().autodiff();
    let layer = LinearConfig::new(24, 16).init(&device);
    let mut layer: Linear =
        crate::spectral_norm(&layer, &crate::SpectralNormConfig::new()).unwrap();
    let mut optimizer = AdamConfig::new().init();
    let x = tensor(pseudo_random(8 * 24, 12), [8, 24], DType::F32, &device);
    let mut step = |layer: Linear| {
        let grads = layer.forward(x.clone()).square().sum().backward();
        let grads = GradientsParams::from_grads(grads, &layer);
        optimizer.step(1e-2, layer, grads)
    };
    let before = allocations();
    layer = step(layer);
    assert_eq!(allocations(), before + 1, "the first use allocates");
    for _ in 0..3 {
        layer = step(layer);
    }
    assert_eq!(
        allocations(),
        before + 1,
        "uses after optimizer steps reuse the storage"
    );

    // Still right: the fast path's W/σ against the generic path's for the stepped weight.
    let frozen = crate::set_power_iteration(layer.clone(), false);
    let fast = values(frozen.weight.val());
    let slow = values(generic_only(|| frozen.weight.val()));
    assert_close(&fast, &slow, 2e-6, "W/σ after optimizer steps");
    assert_eq!(layer.num_params(), 24 * 16 + 16 + 16 + 24);
}

/// Where `tensor`'s first element lies.
fn address<const D: usize>(tensor: Tensor<D>) -> usize {
    let primitive = tensor
        .without_autodiff()
        .try_into_primitive::<burn::backend::Flex>()
        .unwrap();
    primitive.bytes().as_ptr() as usize + primitive.layout().start_offset() * 4
}

/// Attaching gives W storage of its own on a cache line (a weight of Burn's own starts 16 bytes
/// past one when it is large), with the same values and id and still trainable; the user's
/// layer keeps its weight where it was; and Burn's optimizers update W in place, so it stays
/// on the line through training.
#[test]
fn attaching_moves_the_weight_onto_a_cache_line_where_training_keeps_it() {
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{AdamConfig, GradientsParams, SgdConfig};

    let device = Device::flex().autodiff();
    let plain = LinearConfig::new(256, 128).init(&device);
    let original = (address(plain.weight.val()), values(plain.weight.val()));
    assert_ne!(
        original.0 % CACHE_LINE,
        0,
        "Burn's own weight is off a line here"
    );
    let layer: Linear = crate::spectral_norm(&plain, &crate::SpectralNormConfig::new()).unwrap();
    let moved = address(layer.weight.base());
    assert_eq!(moved % CACHE_LINE, 0);
    assert_eq!(values(layer.weight.base()), original.1);
    assert_eq!(layer.weight.id, plain.weight.id);
    assert!(layer.weight.base().is_require_grad());
    assert_eq!(
        (address(plain.weight.val()), values(plain.weight.val())),
        original,
        "the user's layer is left as it was"
    );

    let x = tensor(pseudo_random(4 * 256, 13), [4, 256], DType::F32, &device);
    let grads = |layer: &Linear| {
        let grads = layer.forward(x.clone()).square().sum().backward();
        GradientsParams::from_grads(grads, layer)
    };
    let mut adam = AdamConfig::new().init();
    let mut sgd = SgdConfig::new().init();
    let mut layer = layer;
    for _ in 0..2 {
        let g = grads(&layer);
        layer = adam.step(1e-3, layer, g);
        let g = grads(&layer);
        layer = sgd.step(1e-3, layer, g);
    }
    assert_ne!(
        values(layer.weight.base()),
        original.1,
        "the steps trained W"
    );
    assert_eq!(address(layer.weight.base()), moved, "updated in place");

    // A record loaded into a normalized layer lands on a line too.
    let trained = values(layer.weight.base());
    let fresh: Linear = crate::spectral_norm(&plain, &crate::SpectralNormConfig::new()).unwrap();
    let loaded = fresh.load_record(layer.into_record());
    assert_eq!(values(loaded.weight.base()), trained);
    assert_eq!(
        address(loaded.weight.base()) % CACHE_LINE,
        0,
        "loaded onto a line"
    );
    assert!(loaded.weight.base().is_require_grad());
}

/// A load mapper that the weight had before spectral norm was attached still runs on load,
/// before the move onto a cache line.
#[test]
fn a_weights_own_load_mapper_still_runs() {
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};

    let device = Device::flex().autodiff();
    let mut plain = LinearConfig::new(256, 128).init(&device);
    let config = crate::SpectralNormConfig::new();
    let record = crate::spectral_norm(&plain, &config).unwrap().into_record();
    let saved = values(plain.weight.val());
    plain.weight = plain.weight.load_mapper(|weight| weight * 2.0);
    let layer: Linear = crate::spectral_norm(&plain, &config).unwrap();
    let loaded = layer.load_record(record);
    let doubled: Vec<f64> = saved.iter().map(|x| x * 2.0).collect();
    assert_eq!(values(loaded.weight.base()), doubled);
    assert_eq!(address(loaded.weight.base()) % CACHE_LINE, 0);
}

/// Finite entries within `tolerance` of the reference (relative to its largest finite entry);
/// non-finite ones exactly the reference's: NaN for NaN, the same infinity.
fn assert_same_outcome(fast: &[f64], generic: &[f64], tolerance: f64, what: &str) {
    assert_eq!(fast.len(), generic.len(), "{what}: lengths");
    let scale = generic
        .iter()
        .filter(|x| x.is_finite())
        .fold(0f64, |m, x| m.max(x.abs()))
        .max(f64::MIN_POSITIVE);
    for (i, (a, b)) in fast.iter().zip(generic).enumerate() {
        let same = if b.is_nan() {
            a.is_nan()
        } else if b.is_infinite() {
            a == b
        } else {
            a.is_finite() && (a - b).abs() <= tolerance * scale
        };
        assert!(same, "{what}[{i}]: fast {a} vs generic {b}");
    }
}

/// Weights whose squares overflow or underflow in their dtype. Paddle's plain sums of squares
/// make an overflowing norm infinite, so `v = Wᵀu / ∞ = ±0`, `u = 0`, `σ = 0` and `W/σ = ±∞`
/// (NaN where W is 0); at 1e-15 in f32, `σ²` underflows and the gradient is NaN. The fast path
/// must give exactly the infinities and NaNs that the generic path (Burn's autodiff through the
/// same operations) gives, in every layout, forward and backward.
#[test]
fn overflow_and_underflow_give_the_generic_paths_infinities_and_nans() {
    let device = Device::flex().autodiff();
    let cases = [
        (1e30, DType::F32),
        (1e-30, DType::F32),
        (1e15, DType::F32),
        (1e-15, DType::F32),
        (1e200, DType::F64),
        (1e-200, DType::F64),
    ];
    let layouts: [([usize; 4], usize, Incoming); 4] = [
        ([1, 1, 6, 5], 3, Incoming::Contiguous), // a Linear [in, out]: blocks
        ([1, 1, 6, 5], 2, Incoming::Contiguous), // rows of M stored
        ([4, 3, 2, 2], 0, Incoming::Swapped),    // a Conv2d's gradient
        ([3, 4, 2, 2], 1, Incoming::Swapped),    // a ConvTranspose2d's
    ];
    for (scale, dtype) in cases {
        for (shape, dim, incoming) in layouts {
            let numel = shape.iter().product();
            // One zero entry, so that 0 / 0 shows where W/σ is NaN rather than infinite.
            let mut weight: Vec<f64> = pseudo_random(numel, 13).iter().map(|x| x * scale).collect();
            weight[0] = 0.0;
            let run = |fast: bool| {
                let sn = state(&shape, dim, 1, dtype, &device);
                let w = tensor(weight.clone(), shape, dtype, &device).require_grad();
                let out = use_weight(&sn, &w, fast);
                let loss = match incoming {
                    Incoming::Contiguous => out.clone().sum(),
                    Incoming::Swapped => out.clone().swap_dims(0, 1).sum(),
                };
                let grad = w.grad(&loss.backward()).unwrap();
                (values(out), values(grad), values(sn.u()), values(sn.v()))
            };
            let (fast, reference) = (run(true), run(false));
            let tolerance = if dtype == DType::F64 { 1e-12 } else { 2e-5 };
            let case = format!("{scale:e} {dtype:?} {shape:?} dim {dim}");
            assert_same_outcome(&fast.0, &reference.0, tolerance, &format!("W/σ {case}"));
            assert_same_outcome(
                &fast.1,
                &reference.1,
                tolerance * 10.0,
                &format!("dW {case}"),
            );
            assert_same_outcome(&fast.2, &reference.2, tolerance, &format!("u {case}"));
            assert_same_outcome(&fast.3, &reference.3, tolerance, &format!("v {case}"));
            if scale == 1e30 || scale == 1e200 {
                // Paddle's outcome, as its conformance suite records it.
                assert!(fast.2.iter().all(|&x| x == 0.0), "u = 0: {case}");
                assert!(fast.3.iter().all(|&x| x == 0.0), "v = ±0: {case}");
                assert!(fast.0[0].is_nan(), "0 / 0: {case}");
                assert!(
                    fast.0[1..].iter().all(|x| x.is_infinite()),
                    "W/σ = ±∞: {case}"
                );
            }
            if scale == 1e-15 && dtype == DType::F32 {
                assert!(
                    fast.0.iter().all(|x| x.is_finite()),
                    "finite weight: {case}"
                );
                assert!(fast.1.iter().any(|x| x.is_nan()), "NaN gradient: {case}");
            }
        }
    }
}

#[test]
fn half_weights_iterate_on_the_fast_path_and_their_eval_is_cached() {
    let shape = [40, 33];
    let weight = pseudo_random(40 * 33, 3);
    for dtype in [DType::F16, DType::BF16] {
        let spacing = if dtype == DType::F16 {
            2f64.powi(-10)
        } else {
            2f64.powi(-7)
        };
        let device = Device::flex().autodiff();
        let w = tensor(weight.clone(), shape, dtype, &device);
        let widened = crate::precision::widen(w.clone().without_autodiff());
        let u = tensor(
            pseudo_random(33, 1),
            [33],
            DType::F32,
            &device.clone().inner(),
        );
        let iterations = NonZeroUsize::MIN;
        assert!(crate::accel::iterate(&widened, 1, &u, iterations, 1e-12).is_some());

        let g = tensor(pseudo_random(40 * 33, 4), shape, dtype, &device);
        let run = |fast: bool| {
            let sn = state(&shape, 1, 2, DType::F32, &device);
            let w = w.clone().require_grad();
            let out = use_weight(&sn, &w, fast);
            assert_eq!(out.dtype(), dtype);
            let grads = (out.clone() * g.clone()).sum().backward();
            let grad = values(w.grad(&grads).unwrap());
            (values(out), grad, values(sn.u()), values(sn.v()))
        };
        let (fast, generic) = (run(true), run(false));
        assert_close(&fast.0, &generic.0, spacing, "half W/σ");
        assert_close(&fast.1, &generic.1, 4.0 * spacing, "half dW");
        assert_close(&fast.2, &generic.2, 2e-5, "half u");
        assert_close(&fast.3, &generic.3, 2e-5, "half v");

        let device = Device::flex();
        let sn = state(&shape, 1, 1, DType::F32, &device);
        let w = tensor(weight.clone(), shape, dtype, &device);
        let storage = |t: Tensor<2>| {
            t.try_into_primitive::<burn::backend::Flex>()
                .unwrap()
                .data_arc()
        };
        let (first, again) = (sn.apply(w.clone()), sn.apply(w.clone()));
        assert_eq!(again.dtype(), dtype);
        assert!(std::sync::Arc::ptr_eq(&storage(first), &storage(again)));
    }
}

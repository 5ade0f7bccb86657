//! Kernel launches per training use of the generic path on wgpu, counted by cubecl's launch
//! observer: on a GPU this count, not arithmetic, decides what a use of a small weight costs.
//! docs/performance.md's table gives the same numbers; this test holds the code to them.
//!
//! One test in its own binary: the observer sees every launch in the process, so no other
//! test may run beside it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use burn::module::Param;
use burn::nn::LinearConfig;
use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
use burn::prelude::*;
use cubecl_runtime::logging::{LaunchObservation, LaunchObserver};
use spectral_norm::{SpectralNormConfig, spectral_norm};
use wgpu_check::wgpu_device;

/// Launches by kernel name.
#[derive(Default)]
struct Launches(Mutex<BTreeMap<String, usize>>);

impl LaunchObserver for Launches {
    fn launched(&self, kernel: &'static str) {
        *self.0.lock().unwrap().entry(short(kernel)).or_default() += 1;
    }
}

/// A kernel's type name without its paths: `KernelBinop<DivOp>`, `MatmulEntry<…>`.
fn short(kernel: &str) -> String {
    let last = |path: &str| path.rsplit("::").next().unwrap_or(path).to_owned();
    match kernel.split_once('<') {
        None => last(kernel),
        Some((head, generics)) => {
            let first = generics.split([',', '<', '>']).next().unwrap_or("");
            format!("{}<{}>", last(head), last(first))
        }
    }
}

/// The kernels `work` launches on `device`, by name. The device is synchronized before the
/// count ends, so that work queued for later (by Burn's kernel fusion) is counted too.
fn launched_by<T>(device: &Device, work: impl FnOnce() -> T) -> (T, BTreeMap<String, usize>) {
    let launches = Arc::new(Launches::default());
    let observation = LaunchObservation::new(launches.clone());
    let out = work();
    device.sync().expect("the device runs what was queued");
    drop(observation);
    let by_name = launches.0.lock().unwrap().clone();
    (out, by_name)
}

fn total(by_name: &BTreeMap<String, usize>) -> usize {
    by_name.values().sum()
}

/// Uses before the counted one: the first compiles and autotunes every kernel; with fusion,
/// the next ones let it settle on how it fuses the use.
const WARM_UP_USES: usize = 5;

/// Launches of one training use of `weight` (`Param::val()`: power iteration, σ, `W/σ`) and of
/// its share of the backward of a sum of `W/σ` (the launches of the same backward on a plain
/// weight of that shape taken off), after [`WARM_UP_USES`].
fn one_use<const D: usize>(weight: &Param<Tensor<D>>) -> [usize; 2] {
    let device = weight.base().device();
    let plain = Tensor::<D>::ones(weight.base().shape(), &device).require_grad();
    for _ in 0..WARM_UP_USES {
        let grads = weight.val().sum().backward();
        weight.base().grad(&grads).expect("W is trained");
        let grads = plain.clone().sum().backward();
        plain.grad(&grads).expect("a plain weight is trained");
    }
    device.sync().expect("the device runs what was queued");
    let (used, forward) = launched_by(&device, || weight.val());
    let loss = used.sum();
    device.sync().expect("the device runs what was queued");
    let (grads, backward) = launched_by(&device, || loss.backward());
    weight.base().grad(&grads).expect("W is trained");

    let loss = plain.clone().sum();
    device.sync().expect("the device runs what was queued");
    let (grads, plain_backward) = launched_by(&device, || loss.backward());
    plain.grad(&grads).expect("a plain weight is trained");
    println!("  forward: {forward:?}\n  backward: {backward:?}\n  plain: {plain_backward:?}");
    [total(&forward), total(&backward) - total(&plain_backward)]
}

/// One training use of a layer built on the device with `n` power iterations: the launches
/// forward and in the backward ([`one_use`]).
type UseWith = fn(&Device, usize) -> [usize; 2];

fn config(n: usize) -> SpectralNormConfig {
    SpectralNormConfig::new().with_n_power_iterations(n)
}

fn linear(device: &Device, n: usize) -> [usize; 2] {
    let fc = spectral_norm(&LinearConfig::new(48, 32).init(device), &config(n)).unwrap();
    one_use(&fc.weight)
}

/// 2²¹ elements: each product is one batched matmul over 8 row blocks (`matrix.rs`).
fn large_linear(device: &Device, n: usize) -> [usize; 2] {
    let fc = spectral_norm(&LinearConfig::new(1024, 2048).init(device), &config(n)).unwrap();
    one_use(&fc.weight)
}

fn conv(device: &Device, n: usize) -> [usize; 2] {
    let conv = spectral_norm(&Conv2dConfig::new([4, 6], [3, 3]).init(device), &config(n));
    one_use(&conv.unwrap().weight)
}

/// `dim = 1` of `[in, out, k, k]`: a middle axis.
fn conv_transpose(device: &Device, n: usize) -> [usize; 2] {
    let conv = ConvTranspose2dConfig::new([4, 6], [3, 3]).init(device);
    let conv = spectral_norm(&conv, &config(n)).unwrap();
    one_use(&conv.weight)
}

/// What a use launches (docs/performance.md's counts): per power step two products and two
/// normalizations, then σ and `W/σ`, forward; SN's share of the backward. A product that sums
/// partial results (a large weight split into row blocks, or `dim` a middle axis) adds one
/// reduction per step and its gradient in the backward.
struct Expected {
    per_step: usize,
    outside_steps: usize,
    backward: usize,
}

/// Without fusion each tensor operation is one kernel: a normalization is six (square, sum,
/// square root, compare, masked fill, divide), σ two, `W/σ` one. With Burn's fusion a
/// normalization launches two (a fused reduction and the divide): the square, square root,
/// compare and fill launch no kernel of their own.
fn expected(splits_a_product: bool) -> Expected {
    let extra = usize::from(splits_a_product);
    if cfg!(feature = "fusion") {
        Expected {
            per_step: 6 + extra,
            outside_steps: 4,
            backward: 6 + 2 * extra,
        }
    } else {
        Expected {
            per_step: 14 + extra,
            outside_steps: 3,
            backward: 13 + 3 * extra,
        }
    }
}

#[test]
fn a_training_use_launches_the_kernels_the_performance_table_counts() {
    let device = wgpu_device();
    let cases: [(&str, UseWith, bool); 4] = [
        ("Linear 48→32", linear, false),
        ("Linear 1024→2048, split", large_linear, true),
        ("Conv2d 4→6 3×3", conv, false),
        ("ConvTranspose2d 4→6 3×3, dim 1", conv_transpose, true),
    ];
    let mut wrong = Vec::new();
    for (name, use_with, splits_a_product) in cases {
        let counts = expected(splits_a_product);
        for n in [1, 3] {
            println!("{name}, n = {n}:");
            let got = use_with(&device, n);
            let expected = [counts.per_step * n + counts.outside_steps, counts.backward];
            println!("  {got:?} (forward, backward), expected {expected:?}");
            if got != expected {
                wrong.push(format!("{name}, n = {n}: {got:?}, expected {expected:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "launch counts differ: {wrong:#?}");
}

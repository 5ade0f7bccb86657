//! Criterion benches of what the options cost (Flex backend, one thread): one training use of
//! the weight (`Param::val()` on the autodiff device) and the backward of `Σ R ⊙ weight` for a
//! fixed `R`, each beside the default (f32, Paddle's settings) on the same layer and beside the
//! plain weight (`plain_*`: the same product, sum and backward without spectral norm, whose
//! time every row includes). The options: f16 and bf16 weights (widened to f32 on every use,
//! then the fast path on the widening, then rounded back), a convergence tolerance (steady
//! state after a warm-up; the steps it took per use are printed), the clamp to a target bound
//! (inactive here: Burn's initial weights have σ < 2) and a learned scale.
//!
//! `cargo bench -p spectral-norm-bench --bench knobs`

use burn::module::Module;
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::{DType, Distribution};
use criterion::{Criterion, criterion_group, criterion_main};
use spectral_norm::{SpectralNorm, SpectralNormConfig, spectral_norm};

fn linear(dtype: DType, device: &Device) -> Linear {
    let layer = LinearConfig::new(1024, 1024).with_bias(false).init(device);
    let weight = Param::from_tensor(layer.weight.val().cast(dtype).detach());
    Linear { weight, ..layer }
}

fn conv(dtype: DType, device: &Device) -> Conv2d {
    let layer = Conv2dConfig::new([512, 512], [3, 3])
        .with_bias(false)
        .init(device);
    let weight = Param::from_tensor(layer.weight.val().cast(dtype).detach());
    Conv2d { weight, ..layer }
}

/// The cases: a name, the weight's dtype and the configuration.
fn cases() -> Vec<(&'static str, DType, SpectralNormConfig)> {
    let paddle = SpectralNormConfig::new;
    vec![
        ("f32", DType::F32, paddle()),
        ("f16", DType::F16, paddle()),
        ("bf16", DType::BF16, paddle()),
        (
            "f32_tolerance_1e-4",
            DType::F32,
            paddle()
                .with_warmup_iterations(50)
                .with_convergence_tolerance(Some(1e-4)),
        ),
        (
            "f32_clamp_c2",
            DType::F32,
            paddle().with_target_bound(2.0).with_clamp(true),
        ),
        (
            "f32_learned_scale",
            DType::F32,
            paddle().with_learned_scale(true),
        ),
    ]
}

fn knobs(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    device.seed(0);
    group(c, "lin1024", |dtype| linear(dtype, &device), |l| &l.weight);
    group(
        c,
        "conv512x512x3x3",
        |dtype| conv(dtype, &device),
        |l| &l.weight,
    );
}

/// The plain weight in each dtype, then every case, on layers that `make` builds.
fn group<L: Module, const D: usize>(
    c: &mut Criterion,
    name: &str,
    make: impl Fn(DType) -> L,
    weight: impl Fn(&L) -> &Param<Tensor<D>>,
) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut group = c.benchmark_group(name);
    let mut bench = |case: &str, layer: L| {
        let weight = weight(&layer);
        let r = Tensor::random(
            weight.dims(),
            Distribution::Default,
            (&weight.device(), weight.dtype()),
        );
        group.bench_function(case, |b| {
            b.iter(|| pool.install(|| drop((weight.val() * r.clone()).sum().backward())))
        });
        if let Some(state) = weight.reparameterization::<SpectralNorm>() {
            println!(
                "{name}/{case}: {} power-iteration steps in the last use",
                state.last_steps()
            );
        }
    };
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        bench(&format!("plain_{dtype:?}"), make(dtype));
    }
    for (case, dtype, config) in cases() {
        bench(case, spectral_norm(&make(dtype), &config).unwrap());
    }
    group.finish();
}

criterion_group!(benches, knobs);
criterion_main!(benches);

//! Criterion benches of the operator mode (Flex backend, f32, the generic path: the operator
//! mode has no fast path): per training use of the weight, against the matrix view on the same
//! layer and against the layer's own training step at batch 64; and the certified bound's time.
//!
//! `cargo bench -p spectral-norm-bench --bench operator`; the 512-channel group takes many
//! minutes (its step at batch 64 is hundreds of GFLOP, and its bound is a certified 512-sided
//! eigenproblem per frequency, 145 of them at 16 × 16).

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use criterion::{Criterion, criterion_group, criterion_main};
use spectral_norm::{
    ConvLayer, SpectralNormConfig, conv_operator_bound, inspect, spectral_norm, spectral_norm_conv,
};

fn layer(channels: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([channels, channels], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

fn operator_mode(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    device.seed(0);
    for (channels, size) in [(64, 32), (512, 16)] {
        let sn = SpectralNormConfig::new();
        let plain = layer(channels, &device);
        let operator = spectral_norm_conv(&plain, vec![size, size], &sn).unwrap();
        let matrix = spectral_norm(&plain, &sn).unwrap();
        let mut group = c.benchmark_group(format!("conv{channels}x{channels}x3x3@{size}x{size}"));
        group.sample_size(10);
        group.bench_function("sn_train_operator", |b| {
            b.iter(|| drop(operator.weight.val()))
        });
        group.bench_function("sn_train_matrix", |b| b.iter(|| drop(matrix.weight.val())));
        let x = Tensor::<4>::random([64, channels, size, size], Distribution::Default, &device);
        group.bench_function("step_plain_batch64", |b| {
            b.iter(|| drop(plain.forward(x.clone()).sum().backward()))
        });
        let weight = inspect(&operator.weight).unwrap().weight;
        let op = plain.conv_operator(vec![size, size]);
        group.bench_function("certified_bound", |b| {
            b.iter(|| conv_operator_bound(weight.clone(), &op).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, operator_mode);
criterion_main!(benches);

//! Criterion benches of spectral norm on Burn's Flex backend (f32, one thread): the computation
//! alone in training mode, a training step, and an eval forward, for a few of peers.py's shapes,
//! and a step that uses the layer twice before its backward.
//! `cargo run --release -p spectral-norm-bench` prints the side-by-side comparison instead.

use criterion::{Criterion, criterion_group, criterion_main};
use spectral_norm_bench::workload::{self, SHAPES};

fn spectral_norm(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    for name in ["lin256", "lin1024", "conv256x128x3x3"] {
        let shape = SHAPES.iter().find(|s| s.name == name).unwrap();
        for n in [1, 5] {
            let mut calls = workload::calls(shape, n, 1);
            let mut group = c.benchmark_group(format!("{name}/n={n}"));
            group.bench_function("sn_train", |b| b.iter(|| pool.install(&mut calls.sn_train)));
            group.bench_function("step_plain", |b| {
                b.iter(|| pool.install(&mut calls.step_plain))
            });
            group.bench_function("step_sn", |b| b.iter(|| pool.install(&mut calls.step_sn)));
            group.bench_function("eval_plain", |b| {
                b.iter(|| pool.install(&mut calls.eval_plain))
            });
            group.bench_function("eval_sn", |b| b.iter(|| pool.install(&mut calls.eval_sn)));
            group.finish();
        }
    }
    // A discriminator's step: the layer used on real and on fake data before one backward.
    let shape = SHAPES.iter().find(|s| s.name == "conv256x128x3x3").unwrap();
    let mut calls = workload::calls(shape, 1, 2);
    let mut group = c.benchmark_group("conv256x128x3x3/n=1/uses=2");
    group.bench_function("step_plain", |b| {
        b.iter(|| pool.install(&mut calls.step_plain))
    });
    group.bench_function("step_sn", |b| b.iter(|| pool.install(&mut calls.step_sn)));
    group.finish();
}

criterion_group!(benches, spectral_norm);
criterion_main!(benches);

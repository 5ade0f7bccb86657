//! This machine's memory bandwidth at a weight's own size: the floor for spectral norm is
//! `n + 1` reads of `W` and one write of `W / σ`, and a weight that fits in cache is re-read at
//! the cache's rate (~84 GB/s for one core up to 4 MiB here), not DRAM's (~22 GB/s).

use std::hint::black_box;
use std::time::Instant;

use rayon::prelude::*;

/// Sum of a slice with independent accumulators, so the loop is bound by loads, not by the
/// latency of one dependent addition chain; compiled for AVX2 where the CPU has it, so the
/// measured rate is the memory's, not the core's.
fn read_all(values: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn wide(values: &[f32]) -> f32 {
            read_lanes(values)
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { wide(values) };
        }
    }
    read_lanes(values)
}

#[inline(always)]
fn read_lanes(values: &[f32]) -> f32 {
    let mut lanes = [0f32; 32];
    let chunks = values.chunks_exact(32);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *lane += x;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Median rate (bytes per second) of `pass` over a buffer of `bytes`, split over the current
/// rayon pool's threads, after one untimed pass: re-reads of a buffer that fits in cache run
/// at the cache's rate, as the power iteration's sweeps over a small `W` do.
fn rate_at(bytes: usize, pass: impl Fn(&mut [f32]) + Sync) -> f64 {
    let mut values = vec![1.0f32; (bytes / 4).max(32)];
    let threads = rayon::current_num_threads();
    let per_thread = values.len().div_ceil(threads);
    let mut run = || {
        let start = Instant::now();
        values.par_chunks_mut(per_thread).for_each(&pass);
        start.elapsed().as_secs_f64()
    };
    run();
    // Enough passes for ~50 ms, at least 9, so that small buffers are not timer-bound.
    let mut rates: Vec<f64> = Vec::new();
    let started = Instant::now();
    while rates.len() < 9 || (started.elapsed().as_secs_f64() < 0.05 && rates.len() < 10_000) {
        rates.push(bytes as f64 / run());
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// Median read bandwidth (bytes per second) re-reading a buffer of `bytes`.
pub fn read_bandwidth_at(bytes: usize) -> f64 {
    rate_at(bytes, |chunk| {
        black_box(read_all(chunk));
    })
}

/// Median write bandwidth (bytes per second) overwriting a buffer of `bytes`.
pub fn write_bandwidth_at(bytes: usize) -> f64 {
    rate_at(bytes, |chunk| {
        chunk.fill(black_box(2.0));
        black_box(&chunk[0]);
    })
}

/// The least one training use can cost for an f32 weight of `numel` elements and `n` power
/// iterations, in µs: `n + 1` reads of `W` (the sweeps and the division's read) and one write
/// of `W / σ`, each at the bandwidth measured at `W`'s size.
pub fn floor_us(numel: usize, n: usize) -> f64 {
    let bytes = numel * 4;
    let reads = (n + 1) as f64 * bytes as f64 / read_bandwidth_at(bytes);
    let write = bytes as f64 / write_bandwidth_at(bytes);
    (reads + write) * 1e6
}

//! This machine's memory read bandwidth: the floor for spectral norm is `n + 1` reads of `W`.

use std::hint::black_box;
use std::time::Instant;

use rayon::prelude::*;

/// Bytes read per measurement: far beyond any last-level cache.
const BYTES: usize = 512 << 20;

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

/// Median read bandwidth in bytes per second with the threads of the current rayon pool.
pub fn read_bandwidth() -> f64 {
    let values = vec![1.0f32; BYTES / 4];
    let threads = rayon::current_num_threads();
    let per_thread = values.len().div_ceil(threads);
    let mut rates: Vec<f64> = (0..9)
        .map(|_| {
            let start = Instant::now();
            let total: f32 = values.par_chunks(per_thread).map(read_all).sum();
            black_box(total);
            BYTES as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

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

/// Median write bandwidth (bytes per second) overwriting a buffer of `bytes`: the faster of
/// ordinary stores and streaming stores. An ordinary store reads its line before writing it,
/// and the `memset` that `fill` becomes (glibc 2.36) used ordinary stores at every size
/// measured, so a W-sized write far beyond the cache was priced at up to 3× what the machine
/// can do (Intel Xeon VM, 2026-12-07: 64 MiB–1 GiB at 8–10 GB/s by `memset`, 22–24 GB/s
/// streamed).
pub fn write_bandwidth_at(bytes: usize) -> f64 {
    let ordinary = rate_at(bytes, |chunk| {
        chunk.fill(black_box(2.0));
        black_box(&chunk[0]);
    });
    // A trial fill on a scratch array says whether this CPU can stream at all.
    if !fill_streaming(&mut [0.0; 8], 0.0) {
        return ordinary;
    }
    let streamed = rate_at(bytes, |chunk| {
        fill_streaming(chunk, black_box(2.0));
        black_box(&chunk[0]);
    });
    ordinary.max(streamed)
}

/// `values.fill(value)` with streaming stores where the CPU has AVX; `false` (nothing
/// written) where it has not.
fn fill_streaming(values: &mut [f32], value: f32) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx")]
        fn streamed(values: &mut [f32], value: f32) {
            use std::arch::x86_64::{_mm_sfence, _mm256_set1_ps, _mm256_stream_ps};
            // Streaming stores need 32-byte aligned addresses: the head up to the first such
            // address and the short tail take ordinary stores.
            let head = values.as_ptr().align_offset(32).min(values.len());
            let (head, rest) = values.split_at_mut(head);
            head.fill(value);
            let mut lanes = rest.chunks_exact_mut(8);
            let splat = _mm256_set1_ps(value);
            for chunk in &mut lanes {
                // SAFETY: `chunk` is 8 f32s (32 bytes) starting on a 32-byte boundary: `rest`
                // starts on one and every chunk before this one is 32 bytes long.
                unsafe { _mm256_stream_ps(chunk.as_mut_ptr(), splat) };
            }
            lanes.into_remainder().fill(value);
            // Streaming stores are weakly ordered: make them visible before the pass ends.
            _mm_sfence();
        }
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU supports AVX, checked just above.
            unsafe { streamed(values, value) };
            return true;
        }
    }
    let _ = (values, value);
    false
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

#[cfg(test)]
mod tests {
    use super::fill_streaming;

    /// Every element is written, whatever the alignment of the slice and its length around
    /// the vector width, and nothing outside it.
    #[test]
    fn streaming_fill_writes_exactly_the_slice() {
        let mut buffer = vec![1.0f32; 128];
        for start in 0..9 {
            for len in [0, 1, 7, 8, 9, 15, 16, 17, 40, 100] {
                buffer.fill(1.0);
                if !fill_streaming(&mut buffer[start..start + len], 2.0) {
                    return; // no AVX: nothing is written, nothing to check
                }
                for (i, x) in buffer.iter().enumerate() {
                    let inside = (start..start + len).contains(&i);
                    assert_eq!(
                        *x,
                        if inside { 2.0 } else { 1.0 },
                        "start {start} len {len} at {i}"
                    );
                }
            }
        }
    }
}

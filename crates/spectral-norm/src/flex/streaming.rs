//! `out = w / by` with non-temporal stores, for outputs far larger than the last-level cache.
//!
//! An ordinary store first reads the destination's cache line from memory (to own it), so
//! writing `W / σ` of a 64 MiB weight moves 64 MiB more than it needs to and evicts everything
//! else on the way. Streaming stores write whole lines straight to memory: the same values
//! (the same IEEE division, lane by lane), about a third less time for large weights. For
//! weights that fit in cache ordinary stores are better: the layer reads `W / σ` right after.

/// Element types with a streaming division.
pub(crate) trait StreamingDivide: Sized {
    /// `out = w / by` elementwise with streaming stores; `false` (and nothing written) where
    /// the CPU cannot.
    fn divide_streaming(w: &[Self], by: Self, out: &mut [Self]) -> bool;
}

#[cfg(target_arch = "x86_64")]
macro_rules! streaming_divide {
    ($t:ty, $lanes:expr, $set1:ident, $loadu:ident, $div:ident, $stream:ident) => {
        impl StreamingDivide for $t {
            fn divide_streaming(w: &[$t], by: $t, out: &mut [$t]) -> bool {
                use std::arch::x86_64::*;

                #[target_feature(enable = "avx")]
                fn run(w: &[$t], by: $t, out: &mut [$t]) {
                    let n = out.len().min(w.len());
                    // Streaming stores need 32-byte aligned addresses: the unaligned head and
                    // the short tail take ordinary stores.
                    let head = out.as_ptr().align_offset(32).min(n);
                    let body_end = head + (n - head) / $lanes * $lanes;
                    let divisor = $set1(by);
                    for (o, x) in out[..head].iter_mut().zip(w) {
                        *o = *x / by;
                    }
                    for i in (head..body_end).step_by($lanes) {
                        // SAFETY: i + lanes ≤ n ≤ both lengths, and out + i is 32-byte aligned
                        // (head aligned it and lanes elements are 32 bytes).
                        unsafe {
                            let x = $loadu(w.as_ptr().add(i));
                            $stream(out.as_mut_ptr().add(i), $div(x, divisor));
                        }
                    }
                    for (o, x) in out[body_end..n].iter_mut().zip(&w[body_end..n]) {
                        *o = *x / by;
                    }
                    // Streaming stores are weakly ordered: make them visible before returning.
                    _mm_sfence();
                }

                if !std::arch::is_x86_feature_detected!("avx") {
                    return false;
                }
                // SAFETY: the CPU supports AVX, checked just above.
                unsafe { run(w, by, out) };
                true
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
streaming_divide!(
    f32,
    8,
    _mm256_set1_ps,
    _mm256_loadu_ps,
    _mm256_div_ps,
    _mm256_stream_ps
);
#[cfg(target_arch = "x86_64")]
streaming_divide!(
    f64,
    4,
    _mm256_set1_pd,
    _mm256_loadu_pd,
    _mm256_div_pd,
    _mm256_stream_pd
);

#[cfg(not(target_arch = "x86_64"))]
impl StreamingDivide for f32 {
    fn divide_streaming(_: &[f32], _: f32, _: &mut [f32]) -> bool {
        false
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl StreamingDivide for f64 {
    fn divide_streaming(_: &[f64], _: f64, _: &mut [f64]) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::StreamingDivide;

    /// Bitwise the same as plain division, for every alignment of the output and lengths
    /// around the vector width.
    fn check<T>(values: Vec<T>, by: T, bits: fn(&T) -> u64)
    where
        T: StreamingDivide + Copy + core::ops::Div<Output = T>,
    {
        let expected: Vec<u64> = values.iter().map(|x| bits(&(*x / by))).collect();
        for start in 0..5 {
            for len in [0, 1, 3, 7, 8, 9, 31, 64, 100] {
                let w = &values[start..start + len];
                let mut buffer = vec![values[0]; len + 5];
                let out = &mut buffer[start..start + len];
                if !T::divide_streaming(w, by, out) {
                    return; // no AVX: nothing to compare
                }
                let out: Vec<u64> = out.iter().map(bits).collect();
                assert_eq!(
                    out,
                    &expected[start..start + len],
                    "start {start} len {len}"
                );
            }
        }
    }

    #[test]
    fn streaming_division_equals_plain_division_bitwise() {
        let f32s: Vec<f32> = (0..120).map(|i| (i as f32 * 0.37).sin() * 1e3).collect();
        let bits32 = |x: &f32| u64::from(x.to_bits());
        check(f32s, 3.3f32, bits32);
        let f64s: Vec<f64> = (0..120).map(|i| (i as f64 * 0.37).cos() * 1e-3).collect();
        check(f64s, 0.7f64, |x| x.to_bits());
        let special = [f32::NAN, f32::INFINITY, 0.0, -0.0, 1e-40];
        check(special.repeat(24), 1e-30f32, bits32);
    }
}

//! The inner loops, written so that they vectorize, and compiled twice: for AVX2 where the CPU
//! has it and for the baseline. Both builds run the same operations in the same order (no FMA
//! contraction), so results are bitwise identical; AVX2 only makes the vectors twice as wide.

use super::real::Real;

/// Independent partial sums per dot product: enough for the loop to vectorize.
const LANES: usize = 16;

/// Defines `$name`, which runs `$body` compiled for AVX2 when the CPU has it and for the
/// baseline otherwise.
macro_rules! with_avx2 {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? = $body:ident;) => {
        $(#[$doc])*
        $vis fn $name<T: Real>($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn wide<T: Real>($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    return unsafe { wide($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

pub(crate) use with_avx2;

with_avx2! {
    /// `a · b` with independent partial sums, so the loop vectorizes.
    pub(crate) fn dot(a: &[T], b: &[T]) -> T = dot_lanes;
}

with_avx2! {
    /// `y += alpha · x`.
    pub(crate) fn axpy(alpha: T, x: &[T], y: &mut [T]) = axpy_loop;
}

with_avx2! {
    /// `out = w / by`, elementwise.
    pub(crate) fn divide_slice(w: &[T], by: T, out: &mut [T]) = divide_loop;
}

with_avx2! {
    /// `g = (g − k·x) / by`, elementwise: one row of the backward's rank-one correction.
    pub(crate) fn correct(g: &mut [T], k: T, x: &[T], by: T) = correct_loop;
}

#[inline(always)]
pub(crate) fn dot_lanes<T: Real>(a: &[T], b: &[T]) -> T {
    let mut lanes = [T::default(); LANES];
    let (head_a, tail_a) = a.split_at(a.len() - a.len() % LANES);
    let (head_b, tail_b) = b.split_at(head_a.len());
    for (ca, cb) in head_a.chunks_exact(LANES).zip(head_b.chunks_exact(LANES)) {
        for k in 0..LANES {
            lanes[k] += ca[k] * cb[k];
        }
    }
    let mut total = T::default();
    for lane in lanes {
        total += lane;
    }
    for (x, y) in tail_a.iter().zip(tail_b) {
        total += *x * *y;
    }
    total
}

#[inline(always)]
pub(crate) fn axpy_loop<T: Real>(alpha: T, x: &[T], y: &mut [T]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * *xi;
    }
}

#[inline(always)]
fn divide_loop<T: Real>(w: &[T], by: T, out: &mut [T]) {
    for (o, x) in out.iter_mut().zip(w) {
        *o = *x / by;
    }
}

#[inline(always)]
pub(crate) fn correct_loop<T: Real>(g: &mut [T], k: T, x: &[T], by: T) {
    for (gx, xx) in g.iter_mut().zip(x) {
        *gx = (*gx - k * *xx) / by;
    }
}

/// Four consecutive rows of `len` from a group of `4 · len`.
#[inline(always)]
pub(crate) fn four_rows<T>(group: &[T], len: usize) -> [&[T]; 4] {
    let (r0, rest) = group.split_at(len);
    let (r1, rest) = rest.split_at(len);
    let (r2, r3) = rest.split_at(len);
    [r0, r1, r2, r3]
}

/// `[r0 · x, r1 · x, r2 · x, r3 · x]`, each bitwise equal to [`dot_lanes`] (same lanes, same
/// order) but interleaved: `x` is loaded once for four rows and the four rows' lanes are
/// independent chains, where one dot alone waits on its additions.
#[inline(always)]
pub(crate) fn dot4_lanes<T: Real>([r0, r1, r2, r3]: [&[T]; 4], x: &[T]) -> [T; 4] {
    let mut lanes = [[T::default(); LANES]; 4];
    let head = x.len() - x.len() % LANES;
    let chunks = r0[..head]
        .chunks_exact(LANES)
        .zip(r1[..head].chunks_exact(LANES))
        .zip(r2[..head].chunks_exact(LANES))
        .zip(r3[..head].chunks_exact(LANES))
        .zip(x[..head].chunks_exact(LANES));
    for ((((c0, c1), c2), c3), cx) in chunks {
        for k in 0..LANES {
            lanes[0][k] += c0[k] * cx[k];
            lanes[1][k] += c1[k] * cx[k];
            lanes[2][k] += c2[k] * cx[k];
            lanes[3][k] += c3[k] * cx[k];
        }
    }
    let mut totals = [T::default(); 4];
    for (total, (lanes, row)) in totals.iter_mut().zip(lanes.iter().zip([r0, r1, r2, r3])) {
        for lane in lanes {
            *total += *lane;
        }
        for (a, b) in row[head..].iter().zip(&x[head..]) {
            *total += *a * *b;
        }
    }
    totals
}

/// `y += a r0 + b r1 + c r2 + d r3`.
#[inline(always)]
pub(crate) fn axpy4_loop<T: Real>([a, b, c, d]: [T; 4], [r0, r1, r2, r3]: [&[T]; 4], y: &mut [T]) {
    for ((((yk, w0), w1), w2), w3) in y.iter_mut().zip(r0).zip(r1).zip(r2).zip(r3) {
        *yk += a * *w0 + b * *w1 + c * *w2 + d * *w3;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_interleaved_dots_equal_four_single_dots_bit_for_bit() {
        for len in [0, 3, 16, 37, 100] {
            let values = |seed: usize| -> Vec<f32> {
                (0..len)
                    .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 * 1e-3 - 0.5)
                    .collect()
            };
            let rows: Vec<Vec<f32>> = (1..=4).map(values).collect();
            let x = values(9);
            let four = dot4_lanes([&rows[0], &rows[1], &rows[2], &rows[3]], &x);
            for (row, got) in rows.iter().zip(four) {
                assert_eq!(got.to_bits(), dot_lanes(row, &x).to_bits(), "len {len}");
            }
        }
    }
}

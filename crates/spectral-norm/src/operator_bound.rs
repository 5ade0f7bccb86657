//! A certified upper bound on a convolution's operator norm, from the circular convolution it
//! is a restriction of.
//!
//! A zero-padded, strided convolution on inputs of size `n` is: embed the input in zeros to
//! the padded size (an isometry), correlate, keep every `s`-th output and only the first `out`
//! of those. Embedding it instead in a circle of `N` points (a multiple of the stride, large
//! enough that the input fits, no kept output repeats, and every read that wraps lands in the
//! leading padding, zero in both: `N = n + b` suffices for the usual 3×3 with padding 1), the
//! kept outputs are unchanged, so the map is a restriction of the circular strided
//! correlation on `N`, whose norm bounds it; so does every larger such circle. That circular map is exact to compute: split the input into its
//! `s` phases per axis (space-to-depth, the polyphase rewrite, so the stride is kept rather
//! than dropped), and it becomes a stride-1 circular correlation from `channels · s` phase
//! channels on `N / s` points, which the discrete Fourier transform diagonalizes into one
//! small matrix per frequency (Sedghi, Gupta and Long, ICLR 2019): the norm is the largest
//! singular value over the frequencies. A transposed convolution is the adjoint of a
//! convolution on its output size and has that convolution's norm. Groups are blocks of the
//! map, so its norm is the largest over the groups. Each frequency's largest singular value
//! is certified from above by a Cholesky factorization (see `certified_largest`), not taken
//! on trust from an eigensolver.

use burn::prelude::*;
use nalgebra::{Complex, DMatrix};

use crate::error::SpectralNormError;
use crate::operator::{ConvKind, ConvOperator};

/// Relative margin for the rounding in building each frequency's matrix from the weight (a
/// sum of a few taps times unit twiddles, accurate to a small multiple of f64 rounding).
const ROUNDING_MARGIN: f64 = 1e-12;

/// How many circle sizes per axis are tried (the smallest and the next ones, a stride apart)
/// when one costs at most `CHEAP_WORK` multiply-adds.
const WIDER_CIRCLES: usize = 4;
const CHEAP_WORK: usize = 1 << 22;

/// A certified upper bound on the norm of the convolution `operator` with `weight` (no bias)
/// on inputs of its size: at or above the true operator norm, and close to it; the gap is what
/// the circular wrap adds. On the tested layers (inputs of 2 to 9 per axis, 2×2 and 3×3
/// kernels) it is 1.00–1.18×; on a 32×32 input, 1.004×. Cost: per group and frequency of the
/// `Π N / stride` grid (half of it: conjugate frequencies agree), one Hermitian eigensolve and
/// one Cholesky factorization of a `(out / groups)`-sided complex matrix (or the other side,
/// if smaller), spread over the cores; on 2 cores a 64→64 3×3 layer at 32×32 takes about
/// 0.15 s and a 512→512 one at 16×16 about 14 s. On layers that cheap to bound (up to about
/// 4 million multiply-adds) the next three circle sizes per axis are tried as well and the
/// least is kept. Non-finite weights give a non-finite bound.
///
/// ```
/// use burn::prelude::*;
/// use spectral_norm::{ConvOperator, conv_operator_bound, conv_operator_norm};
///
/// let device = Device::flex();
/// let values: Vec<f64> = (0..72).map(|i| ((i * 37 % 19) as f64 - 9.0) / 10.0).collect();
/// let w = Tensor::<4>::from_data(TensorData::new(values, [4, 2, 3, 3]), (&device, burn::tensor::DType::F64));
/// let op = ConvOperator::conv(vec![8, 8]).with_padding(vec![(1, 1); 2]);
/// let bound = conv_operator_bound(w.clone(), &op).unwrap();
/// let estimate = conv_operator_norm(w, &op, 1e-12, 100_000).unwrap().sigma;
/// assert!(bound >= estimate && bound <= 1.2 * estimate);
/// ```
///
/// # Errors
///
/// [`SpectralNormError::InvalidGeometry`] as [`ConvOperator::output_shape`].
pub fn conv_operator_bound<const D: usize>(
    weight: Tensor<D>,
    operator: &ConvOperator,
) -> Result<f64, SpectralNormError> {
    let dims = weight.dims().to_vec();
    let output = operator.output_shape(&dims)?;
    // The convolution whose norm this is: the operator itself, or the one a transposed
    // operator is the adjoint of (on the transposed operator's output size).
    let (input_size, padding) = match operator.kind {
        ConvKind::Conv => (operator.input_size.clone(), operator.padding.clone()),
        ConvKind::Transposed => (output[1..].to_vec(), operator.padding.clone()),
    };
    let values = weight
        .without_autodiff()
        .try_into_vec_as::<f64>()
        .map_err(|e| SpectralNormError::InvalidGeometry {
            why: format!("weight values: {e:?}"),
        })?;
    let per_group = dims[0] / operator.groups;
    let smallest = Circular::new(&dims, &input_size, &padding, operator, &vec![0; D - 2]);
    // Every larger circle bounds the map too, and on small inputs, where the wrap weighs
    // most, another one is often tighter: the bound is the least of those that are cheap.
    let widen = if smallest.work(per_group) <= CHEAP_WORK {
        WIDER_CIRCLES
    } else {
        1
    };
    let norm = grid(&vec![widen; D - 2])
        .iter()
        .map(|wider| {
            let geometry = Circular::new(&dims, &input_size, &padding, operator, wider);
            (0..operator.groups)
                .map(|group| geometry.norm(&values, group * per_group..(group + 1) * per_group))
                .fold(0.0, largest)
        })
        .fold(f64::INFINITY, |a, b| if b.is_nan() { b } else { a.min(b) });
    Ok(norm * (1.0 + ROUNDING_MARGIN))
}

/// A certified upper bound on the largest singular value of a matrix (a Linear layer's
/// weight, either layout: a matrix and its transpose share it), within about 1e-10 of it: the
/// Lipschitz constant of `x ↦ x·W` from above.
///
/// ```
/// use burn::prelude::*;
/// use spectral_norm::matrix_norm_bound;
///
/// let w = Tensor::<2>::from_data([[3.0, 0.0], [0.0, 1.0]], &Device::flex());
/// let bound = matrix_norm_bound(w);
/// assert!(bound >= 3.0 && bound < 3.0 + 1e-8);
/// ```
pub fn matrix_norm_bound(weight: Tensor<2>) -> f64 {
    let [rows, cols] = weight.dims();
    let values = weight
        .without_autodiff()
        .into_data()
        .iter::<f64>()
        .collect::<Vec<_>>();
    let matrix = DMatrix::from_fn(rows, cols, |r, c| Complex::from(values[r * cols + c]));
    certified_largest(&matrix) * (1.0 + ROUNDING_MARGIN)
}

/// The circular strided correlation a convolution is a restriction of, in polyphase form.
struct Circular {
    /// Weight `[rows, cols, kernel…]` as a convolution's: rows are outputs, cols inputs.
    cols: usize,
    kernel: Vec<usize>,
    stride: Vec<usize>,
    /// Points per axis after the polyphase split: `N / stride`.
    points: Vec<usize>,
    /// Per axis and tap: the tap's shift on the split grid and its phase, `t·d = a·s + φ`.
    taps: Vec<Vec<(usize, usize)>>,
}

impl Circular {
    fn new(
        dims: &[usize],
        input_size: &[usize],
        padding: &[(usize, usize)],
        operator: &ConvOperator,
        wider: &[usize],
    ) -> Self {
        let kernel = dims[2..].to_vec();
        let points = (0..kernel.len())
            .map(|axis| {
                let (n, (before, after)) = (input_size[axis], padding[axis]);
                let (stride, reach) = (
                    operator.stride[axis],
                    operator.dilation[axis] * (kernel[axis] - 1) + 1,
                );
                let outputs = (n + before + after - reach) / stride + 1;
                smallest_circle(n, before, stride, outputs, reach) / stride + wider[axis]
            })
            .collect();
        let taps = (0..kernel.len())
            .map(|axis| {
                (0..kernel[axis])
                    .map(|t| {
                        let offset = t * operator.dilation[axis];
                        let stride = operator.stride[axis];
                        (offset / stride, offset % stride)
                    })
                    .collect()
            })
            .collect();
        Self {
            cols: dims[1],
            kernel,
            stride: operator.stride.clone(),
            points,
            taps,
        }
    }

    /// Multiply-adds of one `norm` for `rows` output channels: a Gram matrix per frequency.
    fn work(&self, rows: usize) -> usize {
        let phases: usize = self.stride.iter().product();
        let side = rows.min(self.cols * phases);
        let frequencies: usize = self.points.iter().product();
        frequencies * side * side * rows.max(self.cols * phases)
    }

    /// The largest singular value over the frequencies, for the output channels `rows`. A
    /// real weight's symbol at `−f` is the conjugate of the one at `f`, with the same singular
    /// values, so only one of each pair is computed; the rest run on every core.
    fn norm(&self, values: &[f64], rows: core::ops::Range<usize>) -> f64 {
        let frequencies: Vec<Vec<usize>> = grid(&self.points)
            .into_iter()
            .filter(|f| {
                let negated: Vec<usize> = f
                    .iter()
                    .zip(&self.points)
                    .map(|(&i, &p)| (p - i) % p)
                    .collect();
                *f <= negated
            })
            .collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(frequencies.len());
        let chunk = frequencies.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let workers: Vec<_> = frequencies
                .chunks(chunk)
                .map(|part| {
                    let rows = rows.clone();
                    scope.spawn(move || {
                        part.iter()
                            .map(|f| certified_largest(&self.symbol(values, rows.clone(), f)))
                            .fold(0.0, largest)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or(f64::NAN))
                .fold(0.0, largest)
        })
    }

    /// The circular map's matrix at one frequency: `rows × (cols · phases)`.
    fn symbol(
        &self,
        values: &[f64],
        rows: core::ops::Range<usize>,
        frequency: &[usize],
    ) -> DMatrix<Complex<f64>> {
        let phases: usize = self.stride.iter().product();
        let taps_per_channel: usize = self.kernel.iter().product();
        let mut matrix = DMatrix::<Complex<f64>>::zeros(rows.len(), self.cols * phases);
        for (t, tap) in grid(&self.kernel).iter().enumerate() {
            let (mut angle, mut phase) = (0.0, 0);
            for axis in 0..self.kernel.len() {
                let (shift, phase_on_axis) = self.taps[axis][tap[axis]];
                angle += frequency[axis] as f64 * shift as f64 / self.points[axis] as f64;
                phase = phase * self.stride[axis] + phase_on_axis;
            }
            let twiddle = Complex::from_polar(1.0, 2.0 * core::f64::consts::PI * angle);
            for (r, row) in rows.clone().enumerate() {
                for c in 0..self.cols {
                    let w = values[(row * self.cols + c) * taps_per_channel + t];
                    matrix[(r, c * phases + phase)] += twiddle * w;
                }
            }
        }
        matrix
    }
}

/// The smallest circle `N` (a multiple of `stride`) on which the circular correlation agrees
/// with the zero-padded one at every kept output: the input fits (`N ≥ before + n`), no
/// output repeats (`N ≥ stride · outputs`), and a read that wraps past `N` lands in the
/// leading padding, which is zero in both (`N > last read − before`).
fn smallest_circle(n: usize, before: usize, stride: usize, outputs: usize, reach: usize) -> usize {
    let last_read = stride * (outputs - 1) + reach - 1;
    let circle = (before + n)
        .max(stride * outputs)
        .max((last_read + 1).saturating_sub(before));
    circle.div_ceil(stride) * stride
}

/// An upper bound on the largest singular value of `m`, certified and within about 1e-10 of
/// it. With `G = M·Mᴴ` (the smaller side), a Hermitian eigensolver gives `λ̃ ≈ λmax(G)`, to
/// rounding but not provably from above; a Cholesky factorization of `μ·I − G` that succeeds
/// proves `λmax(G) < μ`, so `μ` is raised from just above `λ̃` until one does. `‖M‖²_F = tr G ≥ λmax` ends the search. Rounding: the computed
/// `G` is within `(cols + 2)·ε·tr G` of the exact one, and a Cholesky factorization that
/// succeeds in floating point on `A − (n + 2)·ε·tr A·I` proves `A` positive definite (Rump,
/// "Verification of positive definiteness", BIT 2006); both are added to `μ`.
fn certified_largest(m: &DMatrix<Complex<f64>>) -> f64 {
    let gram = if m.nrows() <= m.ncols() {
        gram_of_rows(m)
    } else {
        gram_of_rows(&m.adjoint())
    };
    let n = gram.nrows();
    let trace: f64 = (0..n).map(|i| gram[(i, i)].re).sum();
    if !trace.is_finite() || trace == 0.0 {
        return trace.sqrt();
    }
    let slack = (m.ncols() + m.nrows() + 2 * n + 8) as f64 * f64::EPSILON * trace;
    let estimate = gram.clone().symmetric_eigenvalues().max();
    let mut margin = 1e-10;
    loop {
        let mu = estimate * (1.0 + margin) + 2.0 * slack;
        if mu >= trace + slack {
            return (trace + slack).sqrt();
        }
        let shifted = DMatrix::<Complex<f64>>::identity(n, n) * Complex::from(mu - slack) - &gram;
        if shifted.cholesky().is_some() {
            return mu.sqrt();
        }
        margin *= 100.0;
    }
}

/// `M·Mᴴ` from real products, which run on nalgebra's blocked f64 kernel (its complex product
/// does not): with `M = X + iY`, `M·Mᴴ = (X·Xᵀ + Y·Yᵀ) + i(Y·Xᵀ − X·Yᵀ)`.
fn gram_of_rows(m: &DMatrix<Complex<f64>>) -> DMatrix<Complex<f64>> {
    let (re, im) = (m.map(|z| z.re), m.map(|z| z.im));
    let real = &re * re.transpose() + &im * im.transpose();
    let imaginary = &im * re.transpose() - &re * im.transpose();
    real.zip_map(&imaginary, Complex::new)
}

/// The larger of two values, NaN if either is: `f64::max` would drop a NaN, and with it the
/// frequency (or group) that made the bound non-finite.
fn largest(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Every multi-index of a grid of these sizes, last axis fastest.
fn grid(sizes: &[usize]) -> Vec<Vec<usize>> {
    let mut all = vec![Vec::new()];
    for &size in sizes {
        all = all
            .into_iter()
            .flat_map(|prefix| (0..size).map(move |i| [prefix.clone(), vec![i]].concat()))
            .collect();
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, cols: usize, seed: usize) -> DMatrix<Complex<f64>> {
        DMatrix::from_fn(rows, cols, |i, j| {
            let k = (i * 131 + j * 71 + seed * 17) as f64;
            Complex::new((k * 0.618_034).fract() - 0.5, (k * 0.414_214).fract() - 0.5)
        })
    }

    /// The certificate against nalgebra's SVD: never below, within 1e-9 above, on tall, wide,
    /// rank-one and zero matrices.
    #[test]
    fn the_certified_largest_value_is_the_svds_from_above() {
        let rank_one = &matrix(6, 1, 3) * matrix(1, 9, 4);
        for m in [
            matrix(7, 40, 1),
            matrix(40, 7, 2),
            rank_one,
            matrix(5, 5, 0) * Complex::from(0.0),
        ] {
            let svd = m.singular_values().max();
            let bound = certified_largest(&m);
            assert!(
                bound >= svd && bound <= svd * (1.0 + 1e-9) + 1e-300,
                "{bound} vs {svd}"
            );
        }
    }

    /// A NaN or infinite weight gives a NaN or infinite bound, never a finite one that would
    /// certify nothing.
    #[test]
    fn non_finite_weights_give_a_non_finite_bound() {
        let device = Device::flex();
        let op = ConvOperator::conv(vec![6, 6]).with_padding(vec![(1, 1); 2]);
        for bad in [f64::NAN, f64::INFINITY] {
            let mut values = vec![0.5; 2 * 2 * 9];
            values[7] = bad;
            let weight = Tensor::<4>::from_data(TensorData::new(values, [2, 2, 3, 3]), &device);
            let bound = conv_operator_bound(weight, &op).unwrap();
            assert!(!bound.is_finite(), "{bad}: {bound}");
        }
    }

    /// Padding wider than the kernel: outputs made only of padding must not repeat on the
    /// circle (N ≥ stride · outputs), or the bound would fall below the norm. A 1-tap kernel
    /// on one sample padded by 3 each side has 7 outputs, one of them nonzero: norm |w|.
    #[test]
    fn padding_wider_than_the_kernel_keeps_the_bound_above() {
        let device = Device::flex();
        let weight = Tensor::<3>::from_data(TensorData::new(vec![-2.5f64], [1, 1, 1]), &device);
        let op = ConvOperator::conv(vec![1]).with_padding(vec![(3, 3)]);
        let bound = conv_operator_bound(weight, &op).unwrap();
        assert!((bound - 2.5).abs() <= 1e-9, "{bound}");
        assert_eq!(smallest_circle(1, 3, 1, 7, 1), 7);
        // 16 inputs, padding 1, 3 taps: the last read (17) wraps onto the leading pad.
        assert_eq!(smallest_circle(16, 1, 1, 16, 3), 17);
    }
}

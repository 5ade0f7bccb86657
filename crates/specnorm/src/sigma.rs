//! σ, the largest singular value of a matrix, and how it was obtained: nalgebra's SVD when the
//! matrix is small enough for it to take well under a second, otherwise power iteration run to
//! convergence. Every σ carries its method and tolerance so that reports can state them.

use burn::prelude::*;
use burn::tensor::DType;
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

/// The largest `min(rows, cols)² · max(rows, cols)` for which σ comes from an SVD: 512³, a
/// 512 × 512 matrix (about 0.1 s in release builds on one core) or a thinner one of the same
/// cost (64 × 32768). Above it, power iteration.
pub const SVD_MAX_WORK: u128 = 512 * 512 * 512;

/// Relative accuracy claimed for σ from the SVD. nalgebra's bidiagonal QR iterates to f64
/// rounding and is backward stable, so σ_max is exact to a small multiple of `n · ε` relative
/// (≈ 1e-13 for n = 512); the tests check this bound against matrices of known spectrum.
pub const SVD_TOLERANCE: f64 = 1e-12;

/// Power iteration stops when two successive estimates differ by at most this, relative.
pub const POWER_TOLERANCE: f64 = 1e-9;

/// Power iteration gives up (and says so) after this many steps.
pub const POWER_MAX_ITERATIONS: usize = 100_000;

/// How a σ was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// All singular values by nalgebra's SVD; σ is the largest.
    Svd,
    /// Power iteration from a fixed random start.
    PowerIteration {
        /// Steps taken.
        iterations: usize,
        /// Whether the relative change fell below [`POWER_TOLERANCE`] before
        /// [`POWER_MAX_ITERATIONS`].
        converged: bool,
    },
    /// The matrix has a NaN (σ is NaN) or an infinite entry (σ is infinite).
    NonFinite,
}

/// A largest singular value and how it was obtained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sigma {
    /// σ.
    pub value: f64,
    /// The method that gave it.
    pub method: Method,
}

impl Sigma {
    /// The method's name, as the reports print it.
    pub fn method_name(&self) -> &'static str {
        match self.method {
            Method::Svd => "svd",
            Method::PowerIteration { .. } => "power",
            Method::NonFinite => "non-finite",
        }
    }

    /// The relative tolerance the method met: the SVD's accuracy, or power iteration's
    /// stopping rule (a change between steps, not a proven error bound); `None` when power
    /// iteration did not converge or the entries are not finite.
    pub fn tolerance(&self) -> Option<f64> {
        match self.method {
            Method::Svd => Some(SVD_TOLERANCE),
            Method::PowerIteration {
                converged: true, ..
            } => Some(POWER_TOLERANCE),
            _ => None,
        }
    }
}

/// σ of the `rows × cols` matrix whose entries are `values`, row-major.
///
/// # Panics
///
/// If `values.len() != rows * cols` (a caller's bug, not a property of a file).
pub fn largest_singular_value(values: &[f64], rows: usize, cols: usize) -> Sigma {
    assert_eq!(values.len(), rows * cols, "matrix of {rows} × {cols}");
    if let Some(value) = non_finite(values) {
        return Sigma {
            value,
            method: Method::NonFinite,
        };
    }
    if rows == 0 || cols == 0 {
        return Sigma {
            value: 0.0,
            method: Method::Svd,
        };
    }
    let (small, large) = (rows.min(cols) as u128, rows.max(cols) as u128);
    if small * small * large <= SVD_MAX_WORK
        && let Some(value) = by_svd(values, rows, cols)
    {
        return Sigma {
            value,
            method: Method::Svd,
        };
    }
    power_iteration(values, rows, cols)
}

/// NaN if any entry is NaN, else infinity if any is infinite, else `None`.
fn non_finite(values: &[f64]) -> Option<f64> {
    if values.iter().any(|x| x.is_nan()) {
        Some(f64::NAN)
    } else if values.iter().any(|x| x.is_infinite()) {
        Some(f64::INFINITY)
    } else {
        None
    }
}

/// The SVD of the tall orientation (nalgebra is faster when rows ≥ cols); `None` if it does
/// not converge within a generous step limit.
fn by_svd(values: &[f64], rows: usize, cols: usize) -> Option<f64> {
    let matrix = DMatrix::from_row_slice(rows, cols, values);
    let tall = if rows >= cols {
        matrix
    } else {
        matrix.transpose()
    };
    let steps = 100 * rows.max(cols);
    let svd = tall.try_svd(false, false, f64::EPSILON, steps)?;
    Some(svd.singular_values.max())
}

/// A power iteration's start of `len` N(0, 1) draws (f64, Flex) from a fixed seed, not from
/// the device's generator: other users of that would change the report from run to run.
pub fn fixed_start(len: usize) -> Tensor<1> {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let start: Vec<f64> = (0..len).map(|_| StandardNormal.sample(&mut rng)).collect();
    Tensor::<1>::from_data(TensorData::new(start, [len]), (&Device::flex(), DType::F64))
}

/// Power iteration (the library's, in f64 on the Flex backend) from a start drawn with a fixed
/// seed, until two estimates differ by at most [`POWER_TOLERANCE`] relative.
fn power_iteration(values: &[f64], rows: usize, cols: usize) -> Sigma {
    let device = Device::flex();
    let matrix = Tensor::<2>::from_data(
        TensorData::new(values.to_vec(), [rows, cols]),
        (&device, DType::F64),
    );
    let start = fixed_start(rows);
    let outcome = spectral_norm::power_iteration_from(
        matrix,
        0,
        start,
        POWER_TOLERANCE,
        POWER_MAX_ITERATIONS,
    );
    match outcome {
        Ok(outcome) => Sigma {
            value: outcome.sigma,
            method: Method::PowerIteration {
                iterations: outcome.iterations,
                converged: outcome.converged,
            },
        },
        // Only for an empty axis, which `largest_singular_value` answers before.
        Err(_) => Sigma {
            value: 0.0,
            method: Method::Svd,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn normalize(x: &mut [f64]) {
        let norm = dot(x, x).sqrt();
        x.iter_mut().for_each(|e| *e /= norm);
    }

    /// An orthogonal `n × n` matrix: the product of a few Householder reflections
    /// `I − 2 w wᵀ` with random unit `w`, built here without nalgebra.
    fn orthogonal(n: usize, rng: &mut StdRng) -> Vec<f64> {
        let mut q: Vec<f64> = (0..n * n)
            .map(|k| if k % (n + 1) == 0 { 1.0 } else { 0.0 })
            .collect();
        for _ in 0..n.min(6) {
            let mut w: Vec<f64> = (0..n).map(|_| StandardNormal.sample(rng)).collect();
            normalize(&mut w);
            // q ← q (I − 2 w wᵀ): each row r becomes r − 2 (r·w) wᵀ.
            for row in q.chunks_exact_mut(n) {
                let projection = 2.0 * dot(row, &w);
                row.iter_mut()
                    .zip(&w)
                    .for_each(|(x, wi)| *x -= projection * wi);
            }
        }
        q
    }

    /// `U diag(s) Vᵀ` for random orthogonal `U` (`rows × rows`) and `V` (`cols × cols`);
    /// `s` may be shorter than `min(rows, cols)`, the rest being zero.
    fn with_singular_values(rows: usize, cols: usize, s: &[f64], seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let (u, v) = (orthogonal(rows, &mut rng), orthogonal(cols, &mut rng));
        let mut m = vec![0.0; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                m[i * cols + j] = (0..s.len())
                    .map(|k| u[i * rows + k] * s[k] * v[j * cols + k])
                    .sum();
            }
        }
        m
    }

    fn relative_error(got: f64, want: f64) -> f64 {
        (got - want).abs() / want
    }

    #[test]
    fn svd_meets_its_tolerance_on_known_spectra() {
        for (rows, cols, seed) in [(7, 5, 1), (5, 7, 2), (40, 40, 3), (120, 30, 4)] {
            let n = rows.min(cols);
            // Close top pair: the case where power iteration would be slowest.
            let s: Vec<f64> = (0..n).map(|k| 3.0 - 0.001 * k as f64).collect();
            let m = with_singular_values(rows, cols, &s, seed);
            let sigma = largest_singular_value(&m, rows, cols);
            assert_eq!(sigma.method, Method::Svd, "{rows}×{cols}");
            assert!(
                relative_error(sigma.value, 3.0) <= SVD_TOLERANCE,
                "{rows}×{cols}: {}",
                sigma.value
            );
        }
    }

    #[test]
    fn big_matrices_use_power_iteration_to_its_tolerance() {
        // 600 × 600 exceeds SVD_MAX_WORK; a clear spectral gap makes it converge quickly.
        let (rows, cols) = (600, 600);
        assert!((rows as u128).pow(3) > SVD_MAX_WORK);
        let s = [5.0, 1.0, 0.9, 0.5, 0.25];
        let m = with_singular_values(rows, cols, &s, 5);
        let sigma = largest_singular_value(&m, rows, cols);
        let Method::PowerIteration {
            converged: true, ..
        } = sigma.method
        else {
            panic!("{sigma:?}");
        };
        assert_eq!(sigma.tolerance(), Some(POWER_TOLERANCE));
        assert!(relative_error(sigma.value, 5.0) < 1e-8, "{}", sigma.value);
    }

    #[test]
    fn the_threshold_is_by_cost_not_by_element_count() {
        // More elements than 512 × 512, but thin: cheap for the SVD.
        let (rows, cols) = (4, 70_000);
        assert!(rows * cols > 512 * 512);
        let wide = vec![1.0; rows * cols];
        let sigma = largest_singular_value(&wide, rows, cols);
        assert_eq!(sigma.method, Method::Svd);
        // All ones: σ = √(rows · cols).
        let want = ((rows * cols) as f64).sqrt();
        assert!(relative_error(sigma.value, want) <= SVD_TOLERANCE);
    }

    #[test]
    fn degenerate_and_non_finite_matrices() {
        let zero = largest_singular_value(&[0.0; 6], 2, 3);
        assert_eq!((zero.value, zero.method), (0.0, Method::Svd));
        let nan = largest_singular_value(&[1.0, f64::NAN, f64::INFINITY, 0.0], 2, 2);
        assert!(nan.value.is_nan() && nan.tolerance().is_none());
        let inf = largest_singular_value(&[1.0, f64::NEG_INFINITY], 1, 2);
        assert_eq!((inf.value, inf.method), (f64::INFINITY, Method::NonFinite));
        assert_eq!(largest_singular_value(&[-3.0], 1, 1).value, 3.0);
    }
}

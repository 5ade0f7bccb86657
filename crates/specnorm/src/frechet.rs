//! The Fréchet distance between two sets of feature vectors, each taken as a Gaussian (Heusel et
//! al. 2017's FID, in the feature space of our own digit classifier):
//! `‖μ₁ − μ₂‖² + tr(Σ₁) + tr(Σ₂) − 2 tr((Σ₁^½ Σ₂ Σ₁^½)^½)`.

use nalgebra::{DMatrix, DVector};

/// Mean and covariance (divided by n − 1) of `count` vectors of `dim` values, flattened.
pub fn moments(features: &[f32], dim: usize) -> (DVector<f64>, DMatrix<f64>) {
    let count = features.len() / dim;
    let rows = DMatrix::from_row_iterator(count, dim, features.iter().map(|&x| f64::from(x)));
    let mean = rows.row_mean().transpose();
    let mut centred = rows;
    for mut row in centred.row_iter_mut() {
        row -= mean.transpose();
    }
    let covariance = centred.transpose() * &centred / (count.max(2) - 1) as f64;
    (mean, covariance)
}

/// The Fréchet distance between the Gaussians of two feature sets.
pub fn frechet_distance(a: &[f32], b: &[f32], dim: usize) -> f64 {
    let (mean_a, cov_a) = moments(a, dim);
    let (mean_b, cov_b) = moments(b, dim);
    distance_of_moments(&mean_a, &cov_a, &mean_b, &cov_b)
}

/// The Fréchet distance from means and covariances (symmetric positive semi-definite).
pub fn distance_of_moments(
    mean_a: &DVector<f64>,
    cov_a: &DMatrix<f64>,
    mean_b: &DVector<f64>,
    cov_b: &DMatrix<f64>,
) -> f64 {
    let root_a = psd_sqrt(cov_a);
    let inner = &root_a * cov_b * &root_a;
    // Σ₁^½ Σ₂ Σ₁^½ is symmetric PSD, so the trace of its root is the sum of its eigenvalues'
    // roots; rounding can leave tiny negative eigenvalues, which count as zero.
    let cross = symmetric(&inner)
        .symmetric_eigenvalues()
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .sum::<f64>();
    let distance = (mean_a - mean_b).norm_squared() + cov_a.trace() + cov_b.trace() - 2.0 * cross;
    distance.max(0.0)
}

fn symmetric(m: &DMatrix<f64>) -> DMatrix<f64> {
    (m + m.transpose()) * 0.5
}

/// The PSD square root by eigendecomposition (negative rounding eigenvalues clipped to zero).
fn psd_sqrt(m: &DMatrix<f64>) -> DMatrix<f64> {
    let eigen = symmetric(m).symmetric_eigen();
    let roots = eigen.eigenvalues.map(|l| l.max(0.0).sqrt());
    &eigen.eigenvectors * DMatrix::from_diagonal(&roots) * eigen.eigenvectors.transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commuting_covariances_give_the_closed_form() {
        // Diagonal covariances: Σ (√a − √b)² plus the squared mean gap.
        let (a, b) = ([4.0, 9.0, 0.25], [1.0, 16.0, 0.0]);
        let mean_a = DVector::from_vec(vec![1.0, 0.0, 2.0]);
        let mean_b = DVector::from_vec(vec![0.0, 0.0, 0.0]);
        let expected = 1.0 + 4.0 + 1.0 + 1.0 + 0.25;
        let got = distance_of_moments(
            &mean_a,
            &DMatrix::from_diagonal(&DVector::from_vec(a.to_vec())),
            &mean_b,
            &DMatrix::from_diagonal(&DVector::from_vec(b.to_vec())),
        );
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    }

    #[test]
    fn non_commuting_covariances_match_the_two_by_two_formula() {
        // For a 2 × 2 PSD matrix M, tr √M = √(tr M + 2 √det M).
        let cov_a = DMatrix::from_row_slice(2, 2, &[2.0, 0.5, 0.5, 1.0]);
        let cov_b = DMatrix::from_row_slice(2, 2, &[1.0, -0.3, -0.3, 3.0]);
        let m = psd_sqrt(&cov_a) * &cov_b * psd_sqrt(&cov_a);
        assert!((m.trace() - (&cov_a * &cov_b).trace()).abs() < 1e-12);
        let det = cov_a.determinant() * cov_b.determinant();
        let cross = ((&cov_a * &cov_b).trace() + 2.0 * det.sqrt()).sqrt();
        let expected = cov_a.trace() + cov_b.trace() - 2.0 * cross;
        let zero = DVector::zeros(2);
        let got = distance_of_moments(&zero, &cov_a, &zero, &cov_b);
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    }

    #[test]
    fn a_set_is_at_distance_zero_from_itself_and_shifts_add_their_square() {
        let set: Vec<f32> = (0..300).map(|i| ((i * 37) % 101) as f32 / 10.0).collect();
        assert!(frechet_distance(&set, &set, 3) < 1e-9);
        let shifted: Vec<f32> = set.iter().map(|x| x + 2.0).collect();
        // Every coordinate moves by 2: the distance is 3 · 2² (up to the f32 rounding of x + 2).
        assert!((frechet_distance(&set, &shifted, 3) - 12.0).abs() < 1e-4);
    }
}

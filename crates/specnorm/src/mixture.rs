//! Mixtures of 2-D Gaussians for mode-collapse benchmarks (the ring of Metz et al. 2017, which
//! Miyato et al. 2018 also use, and PacGAN's 5 × 5 grid) and PacGAN's quality measures
//! (Lin et al. 2018, §5.1).

use rand::Rng;
use rand_distr::{Distribution, Normal};

/// Equally likely isotropic Gaussians of one standard deviation.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixture {
    /// The modes' centres.
    pub means: Vec<[f32; 2]>,
    /// Standard deviation of every mode.
    pub std: f32,
}

/// Where a set of samples falls: per mode, its high-quality samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    /// Per mode, the samples within 3 standard deviations of it (it being the nearest mode).
    pub per_mode: Vec<usize>,
    /// Samples scored.
    pub samples: usize,
}

impl Mixture {
    /// Eight modes on a circle of `radius`.
    pub fn ring(radius: f32, std: f32) -> Self {
        let means = (0..8)
            .map(|k| {
                let angle = k as f32 * std::f32::consts::TAU / 8.0;
                [radius * angle.cos(), radius * angle.sin()]
            })
            .collect();
        Self { means, std }
    }

    /// PacGAN's ring: the unit circle, σ = 0.01.
    pub fn pacgan_ring() -> Self {
        Self::ring(1.0, 0.01)
    }

    /// PacGAN's grid: 25 modes at {−4, −2, 0, 2, 4}², σ = 0.05.
    pub fn pacgan_grid() -> Self {
        let steps = [-4.0, -2.0, 0.0, 2.0, 4.0];
        let means = steps
            .iter()
            .flat_map(|&x| steps.iter().map(move |&y| [x, y]))
            .collect();
        Self { means, std: 0.05 }
    }

    /// `count` samples, flattened `[count, 2]`.
    pub fn sample(&self, count: usize, rng: &mut impl Rng) -> Vec<f32> {
        let noise = Normal::new(0.0, self.std).expect("a positive standard deviation");
        (0..count)
            .flat_map(|_| {
                let [x, y] = self.means[rng.random_range(0..self.means.len())];
                [x + noise.sample(rng), y + noise.sample(rng)]
            })
            .collect()
    }

    /// Coverage of flattened `[n, 2]` samples: each is assigned to its nearest mode, and
    /// counts as high quality within 3σ of it.
    pub fn coverage(&self, samples: &[f32]) -> Coverage {
        let mut per_mode = vec![0; self.means.len()];
        for point in samples.chunks_exact(2) {
            let nearest = self
                .means
                .iter()
                .map(|[x, y]| ((point[0] - x).powi(2) + (point[1] - y).powi(2)).sqrt())
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((mode, distance)) = nearest
                && distance < 3.0 * self.std
            {
                per_mode[mode] += 1;
            }
        }
        Coverage {
            per_mode,
            samples: samples.len() / 2,
        }
    }
}

impl Coverage {
    /// PacGAN's count: modes holding at least one high-quality sample.
    pub fn modes_covered(&self) -> usize {
        self.per_mode.iter().filter(|&&n| n > 0).count()
    }

    /// Modes holding at least `share` of the samples as high-quality ones.
    pub fn modes_with_share(&self, share: f32) -> usize {
        let threshold = ((self.samples as f32 * share).ceil() as usize).max(1);
        self.per_mode.iter().filter(|&&n| n >= threshold).count()
    }

    /// Share of the samples that are high quality.
    pub fn high_quality(&self) -> f32 {
        self.per_mode.iter().sum::<usize>() as f32 / self.samples.max(1) as f32
    }

    /// PacGAN's reverse KL: KL(p ‖ uniform), p the distribution of the high-quality samples
    /// over the modes (0 when they are spread evenly, ln K when all sit in one mode). `None`
    /// without a single high-quality sample, where it is undefined.
    pub fn reverse_kl(&self) -> Option<f64> {
        let total = self.per_mode.iter().sum::<usize>() as f64;
        let modes = self.per_mode.len() as f64;
        (total > 0.0).then(|| {
            self.per_mode
                .iter()
                .filter(|&&n| n > 0)
                .map(|&n| {
                    let p = n as f64 / total;
                    p * (p * modes).ln()
                })
                .sum()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_mixtures_themselves_cover_every_mode_with_high_quality() {
        for mixture in [
            Mixture::ring(2.0, 0.05),
            Mixture::pacgan_ring(),
            Mixture::pacgan_grid(),
        ] {
            let samples = mixture.sample(5000, &mut rand::rngs::StdRng::seed_from_u64(1));
            let coverage = mixture.coverage(&samples);
            assert_eq!(coverage.modes_covered(), mixture.means.len());
            // 3σ of a 2-D Gaussian holds 1 − e^{−4.5} = 98.9 % of it.
            assert!(
                (coverage.high_quality() - 0.989).abs() < 0.01,
                "{coverage:?}"
            );
            assert!(coverage.reverse_kl().unwrap() < 0.01);
        }
    }

    #[test]
    fn the_grid_is_pacgans() {
        let grid = Mixture::pacgan_grid();
        assert_eq!(grid.means.len(), 25);
        assert!(grid.means.contains(&[-4.0, 4.0]) && grid.means.contains(&[0.0, -2.0]));
        assert_eq!(
            Mixture::pacgan_ring().means[2].map(|c| c.round()),
            [0.0, 1.0]
        );
    }

    #[test]
    fn a_collapsed_generator_covers_one_mode_at_reverse_kl_ln_k() {
        let ring = Mixture::ring(2.0, 0.05);
        let [x, y] = ring.means[3];
        let samples: Vec<f32> = (0..100).flat_map(|_| [x, y]).collect();
        let coverage = ring.coverage(&samples);
        assert_eq!(coverage.per_mode, [0, 0, 0, 100, 0, 0, 0, 0]);
        assert_eq!(
            (coverage.modes_covered(), coverage.high_quality()),
            (1, 1.0)
        );
        assert!((coverage.reverse_kl().unwrap() - 8f64.ln()).abs() < 1e-12);
        // Two modes, 3:1: KL = ¾ ln(¾·8) + ¼ ln(¼·8).
        let [a, b] = [ring.means[0], ring.means[1]];
        let two: Vec<f32> = [a, a, a, b].iter().flatten().copied().collect();
        let expected = 0.75 * 6f64.ln() + 0.25 * 2f64.ln();
        assert!((ring.coverage(&two).reverse_kl().unwrap() - expected).abs() < 1e-12);
        let origin = ring.coverage(&[0.0; 200]);
        assert_eq!((origin.modes_covered(), origin.high_quality()), (0, 0.0));
        assert_eq!(origin.reverse_kl(), None);
    }

    #[test]
    fn the_share_rule_needs_one_percent_of_the_samples() {
        let coverage = Coverage {
            per_mode: vec![1, 2, 0, 97],
            samples: 200,
        };
        assert_eq!(coverage.modes_covered(), 3);
        assert_eq!(coverage.modes_with_share(0.01), 2);
    }
}

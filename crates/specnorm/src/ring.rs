//! The 2-D ring of 8 Gaussians (Metz et al. 2017; Miyato et al. 2018 use the same benchmark for
//! mode collapse) and its quality measures.

use rand::Rng;
use rand_distr::{Distribution, Normal};

/// Eight Gaussians of standard deviation `std` centred on a circle of radius `radius`.
#[derive(Debug, Clone, Copy)]
pub struct Ring {
    /// Radius of the circle the modes sit on.
    pub radius: f32,
    /// Standard deviation of each mode.
    pub std: f32,
}

/// How well a set of samples covers the ring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coverage {
    /// Modes holding at least 1% of the samples as high-quality samples.
    pub modes_covered: usize,
    /// Share of samples within 3 standard deviations of some mode.
    pub high_quality: f32,
}

impl Ring {
    /// The centre of mode `k` (0..8).
    pub fn mode(&self, k: usize) -> [f32; 2] {
        let angle = k as f32 * std::f32::consts::TAU / 8.0;
        [self.radius * angle.cos(), self.radius * angle.sin()]
    }

    /// `count` samples, flattened `[count, 2]`.
    pub fn sample(&self, count: usize, rng: &mut impl Rng) -> Vec<f32> {
        let noise = Normal::new(0.0, self.std).expect("a positive standard deviation");
        (0..count)
            .flat_map(|_| {
                let [x, y] = self.mode(rng.random_range(0..8));
                [x + noise.sample(rng), y + noise.sample(rng)]
            })
            .collect()
    }

    /// Coverage of flattened `[n, 2]` samples.
    pub fn coverage(&self, samples: &[f32]) -> Coverage {
        let mut per_mode = [0usize; 8];
        let count = samples.len() / 2;
        for point in samples.chunks_exact(2) {
            let (mode, distance) = (0..8)
                .map(|k| {
                    let [x, y] = self.mode(k);
                    (k, ((point[0] - x).powi(2) + (point[1] - y).powi(2)).sqrt())
                })
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .expect("eight modes");
            if distance <= 3.0 * self.std {
                per_mode[mode] += 1;
            }
        }
        let threshold = (count as f32 * 0.01).ceil() as usize;
        Coverage {
            modes_covered: per_mode.iter().filter(|&&n| n >= threshold.max(1)).count(),
            high_quality: per_mode.iter().sum::<usize>() as f32 / count.max(1) as f32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_ring_itself_covers_every_mode_with_high_quality() {
        let ring = Ring {
            radius: 2.0,
            std: 0.05,
        };
        let samples = ring.sample(4000, &mut rand::rngs::StdRng::seed_from_u64(1));
        let coverage = ring.coverage(&samples);
        assert_eq!(coverage.modes_covered, 8);
        assert!(coverage.high_quality > 0.98, "{coverage:?}"); // 3σ of a 2-D Gaussian: 98.9%
    }

    #[test]
    fn a_collapsed_generator_covers_one_mode() {
        let ring = Ring {
            radius: 2.0,
            std: 0.05,
        };
        let [x, y] = ring.mode(3);
        let samples: Vec<f32> = (0..100).flat_map(|_| [x, y]).collect();
        assert_eq!(
            ring.coverage(&samples),
            Coverage {
                modes_covered: 1,
                high_quality: 1.0
            }
        );
        let origin = vec![0.0; 200];
        assert_eq!(
            ring.coverage(&origin),
            Coverage {
                modes_covered: 0,
                high_quality: 0.0
            }
        );
    }
}

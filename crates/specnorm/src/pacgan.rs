//! `specnorm pacgan`: the 25-Gaussian grid and the 8-Gaussian ring under PacGAN's protocol
//! (Lin et al. 2018, Table 1: its data, its 2,500 samples, its measures, 10 seeds), trained with
//! and without spectral normalization, printed beside PacGAN's published rows.
//!
//! What is PacGAN's and what is ours: the mixtures, the sample count, "high quality" (within 3σ
//! of the nearest mode), "covered" (one high-quality sample) and the reverse KL are theirs. The
//! networks (the demo's 3-layer MLPs), the loss, the optimizer and the training length are
//! ours: PacGAN trains 400 epochs of 100,000 points (400,000 updates) with 4 × 400 and maxout
//! networks, far beyond a CPU minute. The published rows are a reference, not a like-for-like
//! comparison.

use anyhow::Result;
use clap::Args;
use indicatif::MultiProgress;

use crate::gan::{RunConfig, networks, train};
use crate::mixture::{Coverage, Mixture};
use crate::parsers::{at_least_one, positive};
use crate::runs::{Job, run_all};

/// Options of the PacGAN benchmark.
#[derive(Args, Debug, Clone)]
pub struct PacganArgs {
    /// Seeds per (data set, normalization); PacGAN averages 10.
    #[arg(long, default_value_t = 10, value_parser = at_least_one())]
    pub seeds: usize,
    /// Generator updates per run.
    #[arg(long, default_value_t = 6000, value_parser = at_least_one())]
    pub steps: usize,
    /// Discriminator updates per generator update.
    #[arg(long, default_value_t = 1, value_parser = at_least_one())]
    pub n_dis: usize,
    /// Adam learning rate for both networks (PacGAN's: 1e-4, over 100 times more updates).
    #[arg(long, default_value_t = 2e-4, value_parser = positive)]
    pub lr: f64,
    /// Points per batch (PacGAN's: 100).
    #[arg(long, default_value_t = 100, value_parser = at_least_one())]
    pub batch: usize,
}

/// A published row of PacGAN's Table 1: modes, high-quality share, reverse KL.
struct Published {
    name: &'static str,
    modes: f64,
    high_quality: f64,
    reverse_kl: f64,
}

const GRID_PUBLISHED: [Published; 2] = [
    published("GAN", 17.3, 94.8, 0.70),
    published("PacGAN4", 24.8, 93.6, 0.04),
];
const RING_PUBLISHED: [Published; 2] = [
    published("GAN", 6.3, 98.2, 0.45),
    published("PacGAN4", 7.8, 95.9, 0.07),
];

const fn published(
    name: &'static str,
    modes: f64,
    high_quality: f64,
    reverse_kl: f64,
) -> Published {
    Published {
        name,
        modes,
        high_quality,
        reverse_kl,
    }
}

/// Means over seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct Averages {
    /// Modes covered.
    pub modes: f64,
    /// High-quality samples, percent.
    pub high_quality: f64,
    /// Reverse KL, over the seeds where it is defined.
    pub reverse_kl: Option<f64>,
    /// Seeds without a single high-quality sample (reverse KL undefined).
    pub undefined: usize,
}

/// Averages the coverages of several seeds.
pub fn average(coverages: &[Coverage]) -> Averages {
    let n = coverages.len().max(1) as f64;
    let kls: Vec<f64> = coverages.iter().filter_map(Coverage::reverse_kl).collect();
    Averages {
        modes: coverages
            .iter()
            .map(|c| c.modes_covered() as f64)
            .sum::<f64>()
            / n,
        high_quality: coverages
            .iter()
            .map(|c| 100.0 * f64::from(c.high_quality()))
            .sum::<f64>()
            / n,
        reverse_kl: (!kls.is_empty()).then(|| kls.iter().sum::<f64>() / kls.len() as f64),
        undefined: coverages.len() - kls.len(),
    }
}

/// Runs the benchmark and prints the tables.
pub fn run(args: &PacganArgs) -> Result<()> {
    let sets = [
        ("grid", Mixture::pacgan_grid(), &GRID_PUBLISHED),
        ("ring", Mixture::pacgan_ring(), &RING_PUBLISHED),
    ];
    let mut jobs = Vec::new();
    for (set, (name, _, _)) in sets.iter().enumerate() {
        for spectral_norm in [true, false] {
            for seed in 0..args.seeds as u64 {
                let sn = if spectral_norm { "SN" } else { "no SN" };
                jobs.push(Job {
                    label: format!("{name} {sn} seed {seed}"),
                    steps: args.steps,
                    config: (set, config(args, spectral_norm, seed)),
                });
            }
        }
    }
    let bars = MultiProgress::new();
    let samples = run_all(&jobs, &bars, |(set, config), bar| {
        train(networks(config), &sets[*set].1, config, bar).samples
    })?;
    let coverages: Vec<Coverage> = jobs
        .iter()
        .zip(&samples)
        .map(|(job, samples)| sets[job.config.0].1.coverage(samples))
        .collect();
    println!(
        "\nPacGAN's protocol (2,500 samples, high quality within 3σ, a mode covered by one such \
         sample, reverse KL over the modes), {} seeds; our MLPs, {} generator steps, {} D steps \
         each, Adam lr {}, batch {}. PacGAN's rows: their networks, 400 epochs.",
        args.seeds, args.steps, args.n_dis, args.lr, args.batch
    );
    for (set, (name, data, published)) in sets.iter().enumerate() {
        let per_run = &coverages[set * 2 * args.seeds..(set + 1) * 2 * args.seeds];
        let (with, without) = per_run.split_at(args.seeds);
        println!(
            "\n{name} ({} modes)        modes   high quality   reverse KL",
            data.means.len()
        );
        for (label, averages) in [
            ("ours, with SN", average(with)),
            ("ours, without SN", average(without)),
        ] {
            let kl = averages
                .reverse_kl
                .map_or_else(|| "—".to_string(), |kl| format!("{kl:.2}"));
            let undefined = match averages.undefined {
                0 => String::new(),
                n => format!(" ({n} seeds with no high-quality sample)"),
            };
            println!(
                "{label:<22} {:>6.1} {:>13.1}% {:>12}{undefined}",
                averages.modes, averages.high_quality, kl
            );
        }
        for row in published.iter() {
            println!(
                "{:<22} {:>6.1} {:>13.1}% {:>12.2}",
                format!("PacGAN paper, {}", row.name),
                row.modes,
                row.high_quality,
                row.reverse_kl
            );
        }
    }
    Ok(())
}

fn config(args: &PacganArgs, spectral_norm: bool, seed: u64) -> RunConfig {
    RunConfig {
        spectral_norm,
        seed,
        steps: args.steps,
        n_dis: args.n_dis,
        batch: args.batch,
        lr: args.lr,
        beta1: 0.5,
        beta2: 0.999,
        record_every: args.steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_skip_undefined_reverse_kl() {
        let collapsed = Coverage {
            per_mode: vec![10, 0, 0, 0],
            samples: 10,
        };
        let even = Coverage {
            per_mode: vec![5, 5, 5, 5],
            samples: 40,
        };
        let empty = Coverage {
            per_mode: vec![0; 4],
            samples: 20,
        };
        let averages = average(&[collapsed, even, empty]);
        assert_eq!(averages.modes, 5.0 / 3.0);
        assert!((averages.high_quality - 50.0).abs() < 1e-9);
        assert!((averages.reverse_kl.unwrap() - 4f64.ln() / 2.0).abs() < 1e-12);
        assert_eq!(averages.undefined, 1);
    }
}

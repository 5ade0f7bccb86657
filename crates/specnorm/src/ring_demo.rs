//! `specnorm ring`: the same GAN trained twice, with and without spectral normalization in the
//! discriminator, then plots and a summary.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::MultiProgress;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::gan::{DISCRIMINATOR_LAYERS, History, RunConfig, networks, train};
use crate::mixture::{Coverage, Mixture};
use crate::parsers::{at_least_one, positive};
use crate::plots;
use crate::runs::{Job, run_all};

/// Options of the ring demo. The defaults are setting E of Miyato et al. (Adam α = 0.001,
/// β₁ = 0.5, β₂ = 0.999, five discriminator updates per generator update), one of the
/// aggressive settings in which the paper reports unnormalized GANs failing.
#[derive(Args, Debug, Clone)]
pub struct RingArgs {
    /// Seed for initialization, data and noise (both runs use the same one).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Generator updates per run.
    #[arg(long, default_value_t = 1500, value_parser = at_least_one())]
    pub steps: usize,
    /// Discriminator updates per generator update.
    #[arg(long, default_value_t = 5, value_parser = at_least_one())]
    pub n_dis: usize,
    /// Adam learning rate for both networks.
    #[arg(long, default_value_t = 1e-3, value_parser = positive)]
    pub lr: f64,
    /// Adam β₁.
    #[arg(long, default_value_t = 0.5)]
    pub beta1: f32,
    /// Adam β₂.
    #[arg(long, default_value_t = 0.999)]
    pub beta2: f32,
    /// Points per batch.
    #[arg(long, default_value_t = 128, value_parser = at_least_one())]
    pub batch: usize,
    /// Folder for the PNG plots (created if missing).
    #[arg(long, default_value = "report-ring")]
    pub out: PathBuf,
}

/// One finished run.
struct Run {
    name: &'static str,
    history: History,
    coverage: Coverage,
}

/// Runs the demo and prints the summary.
pub fn run(args: &RingArgs) -> Result<()> {
    let ring = Mixture::ring(2.0, 0.05);
    let jobs: Vec<Job<RunConfig>> = [("with SN", true), ("without SN", false)]
        .into_iter()
        .map(|(name, spectral_norm)| Job {
            label: name.to_string(),
            steps: args.steps,
            config: RunConfig {
                spectral_norm,
                seed: args.seed,
                steps: args.steps,
                n_dis: args.n_dis,
                batch: args.batch,
                lr: args.lr,
                beta1: args.beta1,
                beta2: args.beta2,
                record_every: (args.steps / 60).max(1),
            },
        })
        .collect();
    let histories = run_all(&jobs, &MultiProgress::new(), |config, bar| {
        train(networks(config), &ring, config, bar)
    })?;
    let runs: Vec<Run> = ["with SN", "without SN"]
        .into_iter()
        .zip(histories)
        .map(|(name, history)| Run {
            name,
            coverage: ring.coverage(&history.samples),
            history,
        })
        .collect();

    let real = ring.sample(2500, &mut StdRng::seed_from_u64(args.seed));
    write_plots(args, &real, &runs)?;
    print_summary(args, &runs);
    Ok(())
}

fn write_plots(args: &RingArgs, real: &[f32], runs: &[Run]) -> Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    plots::register_font()?;
    let pairs: Vec<(&str, &History)> = runs.iter().map(|r| (r.name, &r.history)).collect();
    plots::samples(&args.out.join("samples.png"), real, &pairs)?;
    // The paper reports σ(W/σ) between 1 and 1.05; only the SN run has a W/σ.
    plots::sigma(
        &args.out.join("sigma_normalized.png"),
        "σ(W/σ) per discriminator layer, with SN (exact, by SVD)",
        &pairs[..1],
        |(_, used)| used,
    )?;
    plots::sigma(
        &args.out.join("sigma_raw.png"),
        "σ(W) of the stored discriminator weights",
        &pairs,
        |(raw, _)| raw,
    )?;
    plots::losses(&args.out.join("losses.png"), &pairs)?;
    Ok(())
}

fn print_summary(args: &RingArgs, runs: &[Run]) {
    println!();
    println!(
        "Ring of 8 Gaussians, {} generator steps, {} D steps each, Adam lr {} β=({}, {}), seed {}",
        args.steps, args.n_dis, args.lr, args.beta1, args.beta2, args.seed
    );
    let header = "final σ per D layer (of the weight used / of the stored W)";
    println!(
        "{:<12} {:>7} {:>13}   {header}",
        "run", "modes", "high quality"
    );
    for run in runs {
        let last = run.history.sigmas.last().cloned().unwrap_or_default();
        let sigmas: Vec<String> = DISCRIMINATOR_LAYERS
            .iter()
            .zip(&last)
            .map(|(layer, (raw, used))| format!("{layer} {used:.3}/{raw:.2}"))
            .collect();
        println!(
            "{:<12} {:>5}/8 {:>12.1}%   {}",
            run.name,
            run.coverage.modes_with_share(0.01),
            100.0 * run.coverage.high_quality(),
            sigmas.join(", ")
        );
    }
    println!(
        "\nPlots in {}/: samples.png, sigma_normalized.png, sigma_raw.png, losses.png",
        args.out.display()
    );
}

//! `specnorm`: spectral normalization for Burn, shown and put to work.
//!
//! With no arguments it runs `specnorm digits` on settings D and E.

#![forbid(unsafe_code)]

mod bake;
#[cfg(test)]
mod burn_record_tests;
mod classifier;
mod conv_norm;
mod digit_plots;
mod digits;
mod digits_gan;
mod frechet;
mod gan;
mod inspect;
mod mixture;
mod networks;
mod pacgan;
mod parsers;
mod plots;
mod ring_demo;
mod runs;
mod sweep;
#[cfg(test)]
mod test_fixtures;

use std::process::ExitCode;

// The readers, σ and baking live in the library target, which the fuzz targets share.
use spectral_norm::format::escaped;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Spectral normalization (Miyato et al. 2018) for Burn, with PaddlePaddle's semantics.
///
/// Run without arguments to train a small GAN on the 8×8 handwritten digits with and without
/// spectral normalization in the discriminator, at two of Miyato et al.'s aggressive Adam
/// settings (D and E), and compare: a table of Fréchet distances and classes covered on the
/// terminal, sample grids and a chart in ./report (about 90 s on 2 cores).
#[derive(Parser)]
#[command(version, about, long_about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no command: the digits GAN's options.
    #[command(flatten)]
    digits: sweep::DigitsArgs,
}

#[derive(Subcommand)]
enum Command {
    /// A GAN on the 8×8 handwritten digits over Miyato et al.'s Adam settings A–F, with and
    /// without SN, scored by the Fréchet distance in a digit classifier's feature space
    /// (without a command: settings D and E).
    Digits(sweep::DigitsArgs),
    /// A GAN on a ring of 8 Gaussians with and without SN: σ per layer over training, losses.
    Ring(ring_demo::RingArgs),
    /// PacGAN's 25-Gaussian grid and 8-Gaussian ring, 10 seeds, with and without SN, beside
    /// PacGAN's published rows.
    Pacgan(pacgan::PacganArgs),
    /// Print σ of every weight of a checkpoint, and what its stored u, v imply.
    Inspect(inspect::InspectArgs),
    /// Write an inference-only checkpoint: each normalized weight replaced by W/σ.
    Bake(bake::BakeArgs),
    /// The operator norm of one convolution weight on inputs of a given size, its certified
    /// bound, and its matrix-view σ.
    ConvNorm(conv_norm::ConvNormArgs),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, naming the file and key (the errors carry them), with whatever came
            // from the file escaped.
            eprintln!("error: {}", escaped(&format!("{error:#}")));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Digits(args)) => sweep::run(&args, sweep::ALL),
        Some(Command::Ring(args)) => ring_demo::run(&args),
        Some(Command::Inspect(args)) => inspect::run(&args),
        Some(Command::Bake(args)) => bake::run(&args).map(|_| ()),
        Some(Command::ConvNorm(args)) => conv_norm::run(&args),
        Some(Command::Pacgan(args)) => pacgan::run(&args),
        None => sweep::run(&cli.digits, sweep::QUICK),
    }
}

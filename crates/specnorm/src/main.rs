//! `specnorm`: spectral normalization for Burn, shown and put to work.
//!
//! With no arguments it runs `specnorm demo` on its defaults.

#![forbid(unsafe_code)]

mod bake;
#[cfg(test)]
mod burn_record_tests;
mod conv_norm;
mod demo;
mod gan;
mod inspect;
mod plots;
mod ring;
#[cfg(test)]
mod test_fixtures;

use std::process::ExitCode;

// The readers, σ and baking live in the library target, which the fuzz targets share.
use spectral_norm::format::escaped;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Spectral normalization (Miyato et al. 2018) for Burn, with PaddlePaddle's semantics.
///
/// Run without arguments to train the same small GAN twice on a ring of 8 Gaussians, with and
/// without spectral normalization in the discriminator, and compare: a summary table on the
/// terminal and PNG plots (samples, σ per layer over training, losses) in ./report.
#[derive(Parser)]
#[command(version, about, long_about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no command: the demo's options.
    #[command(flatten)]
    demo: demo::DemoArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Train a GAN with and without spectral normalization and report (the default).
    Demo(demo::DemoArgs),
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
        Some(Command::Demo(args)) => demo::run(&args),
        Some(Command::Inspect(args)) => inspect::run(&args),
        Some(Command::Bake(args)) => bake::run(&args).map(|_| ()),
        Some(Command::ConvNorm(args)) => conv_norm::run(&args),
        None => demo::run(&cli.demo),
    }
}

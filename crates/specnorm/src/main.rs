//! `specnorm`: spectral normalization for Burn, shown and put to work.
//!
//! With no arguments it runs `specnorm demo` on its defaults.

mod demo;
mod gan;
mod plots;
mod ring;

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
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Demo(args)) => args,
        None => cli.demo,
    };
    demo::run(&args)
}

//! `paddle-replay`: replays PaddlePaddle spectral-norm conformance cases through the
//! `spectral-norm` crate's public API and writes the results file that the conformance suite's
//! `check.py` judges.
//!
//! ```text
//! cargo run --release -p paddle-replay -- hook cases.json results.json
//! cargo run --release -p paddle-replay -- op op_cases.json op_results.json
//! ```

#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use paddle_replay::{Replay, hook, op, replay_all};
use serde_json::Value;

/// Replay Paddle spectral-norm conformance cases and write a results file for check.py.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    suite: Suite,
}

#[derive(Subcommand)]
enum Suite {
    /// Cases of `paddle.nn.utils.spectral_norm` (the forward-pre-hook API), e.g. cases.json.
    Hook {
        /// Reference cases to replay.
        cases: PathBuf,
        /// Where to write the results.
        results: PathBuf,
    },
    /// Cases of `paddle.nn.SpectralNorm` (the op), e.g. op_cases.json.
    Op {
        /// Reference cases to replay.
        cases: PathBuf,
        /// Where to write the results.
        results: PathBuf,
    },
}

fn main() -> Result<()> {
    let (cases, results, replay): (PathBuf, PathBuf, Replay) = match Cli::parse().suite {
        Suite::Hook { cases, results } => (cases, results, hook::replay_case),
        Suite::Op { cases, results } => (cases, results, op::replay_case),
    };
    let text =
        std::fs::read_to_string(&cases).with_context(|| format!("reading {}", cases.display()))?;
    let reference: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", cases.display()))?;
    let (out, failed) = replay_all(&reference, replay)?;
    for failure in &failed {
        eprintln!("{failure}");
    }
    std::fs::write(&results, serde_json::to_string(&out)?)
        .with_context(|| format!("writing {}", results.display()))?;
    let count = out["cases"].as_array().map_or(0, Vec::len);
    println!(
        "replayed {count} cases ({} could not run) into {}",
        failed.len(),
        results.display()
    );
    Ok(())
}

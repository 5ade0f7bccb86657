//! `paddle-replay`: replays PaddlePaddle spectral-norm conformance cases through the
//! `spectral-norm` crate's public API and writes the results file that the conformance suite's
//! `check.py` judges.
//!
//! ```text
//! cargo run --release -p paddle-replay -- hook cases.json results.json
//! cargo run --release -p paddle-replay -- op op_cases.json op_results.json
//! ```

mod hook;
mod layers;
mod op;
mod tensor_json;

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::prelude::*;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

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

type Replay = fn(&Value, &Device) -> Result<Value>;

fn main() -> Result<()> {
    let (cases, results, replay): (PathBuf, PathBuf, Replay) = match Cli::parse().suite {
        Suite::Hook { cases, results } => (cases, results, hook::replay_case),
        Suite::Op { cases, results } => (cases, results, op::replay_case),
    };
    let text =
        std::fs::read_to_string(&cases).with_context(|| format!("reading {}", cases.display()))?;
    let reference: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", cases.display()))?;
    let device = Device::flex().autodiff();
    let mut failed = 0;
    let replayed: Vec<Value> = reference["cases"]
        .as_array()
        .context("no `cases` array")?
        .iter()
        .map(|case| {
            replay(case, &device).unwrap_or_else(|error| {
                failed += 1;
                eprintln!("{}: {error:#}", case["id"]);
                json!({"id": case["id"], "error": format!("{error:#}")})
            })
        })
        .collect();
    let count = replayed.len();
    let out =
        json!({"implementation": "spectral-norm (Rust, Burn flex backend)", "cases": replayed});
    std::fs::write(&results, serde_json::to_string(&out)?)
        .with_context(|| format!("writing {}", results.display()))?;
    println!(
        "replayed {count} cases ({failed} could not run) into {}",
        results.display()
    );
    Ok(())
}

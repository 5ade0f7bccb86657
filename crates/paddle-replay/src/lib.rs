//! Replays PaddlePaddle spectral-norm conformance cases through the `spectral-norm` crate's
//! public API, and judges results the way the suite's `check.py` does.
//!
//! The cases follow the schema of the conformance README (vendored in `conformance/paddle/`):
//! [`hook::replay_case`] for `paddle.nn.utils.spectral_norm`, [`op::replay_case`] for
//! `paddle.nn.SpectralNorm`. [`verdict::judge`] compares a results file with the reference.

#![forbid(unsafe_code)]

pub mod hook;
pub mod layers;
pub mod op;
pub mod tensor_json;
pub mod verdict;

use anyhow::{Context, Result};
use burn::prelude::*;
use serde_json::{Value, json};

/// Replays one case into its results entry.
pub type Replay = fn(&Value, &Device) -> Result<Value>;

/// Replays every case of a reference file; a case that cannot run gets an `error` entry.
/// Returns the results document and the ids of the cases that could not run.
pub fn replay_all(reference: &Value, replay: Replay) -> Result<(Value, Vec<String>)> {
    let device = Device::flex().autodiff();
    let mut failed = Vec::new();
    let cases: Vec<Value> = reference["cases"]
        .as_array()
        .context("no `cases` array")?
        .iter()
        .map(|case| {
            replay(case, &device).unwrap_or_else(|error| {
                failed.push(format!("{}: {error:#}", case["id"]));
                json!({"id": case["id"], "error": format!("{error:#}")})
            })
        })
        .collect();
    let results =
        json!({"implementation": "spectral-norm (Rust, Burn flex backend)", "cases": cases});
    Ok((results, failed))
}

//! `specnorm inspect FILE`: the spectral norm of every weight of a checkpoint.

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::Args;
use serde_json::json;

use crate::tensors;
use crate::weights::{TOLERANCE, axis_of, normalized, sigma_of_vectors, spectral_norm_of};

/// Options of `inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Checkpoint to read: .safetensors (Burn, Paddle or PyTorch names), .pt, .pth or .pdparams.
    pub file: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Key of the stored weight.
    pub key: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Whether it carries spectral norm (u, v stored beside it).
    pub normalized: bool,
    /// The axis of the matrix view.
    pub dim: usize,
    /// σ of the stored weight.
    pub sigma: f64,
    /// σ implied by the stored u, v (`u·(W v)`), for normalized weights.
    pub sigma_uv: Option<f64>,
    /// σ of the weight the layer uses: `W / σ_uv` when normalized, else `W`.
    pub sigma_used: f64,
}

/// The rows for every weight of rank 2 or more, plus every normalized one.
pub fn rows(file: &std::path::Path) -> Result<Vec<Row>> {
    let tensors = tensors::read(file)?;
    let named = |key: &str| {
        tensors
            .get(key)
            .ok_or_else(|| anyhow!("{}: {key}: missing", file.display()))
    };
    let sn = normalized(&tensors);
    let mut rows = Vec::new();
    for entry in &sn {
        let (weight, u, v) = (named(&entry.weight)?, named(&entry.u)?, named(&entry.v)?);
        let key = format!("{}: {}", file.display(), entry.weight);
        let dim = axis_of(weight, u.values.len(), v.values.len()).ok_or_else(|| {
            anyhow!(
                "{key}: u ({}) and v ({}) do not fit shape {:?}",
                u.values.len(),
                v.values.len(),
                weight.shape
            )
        })?;
        let sigma = spectral_norm_of(&key, weight, dim)?;
        let sigma_uv = sigma_of_vectors(&key, weight, u, v, dim)?;
        rows.push(Row {
            key: entry.weight.clone(),
            shape: weight.shape.clone(),
            normalized: true,
            dim,
            sigma,
            sigma_uv: Some(sigma_uv),
            sigma_used: sigma / sigma_uv.abs(),
        });
    }
    let state: Vec<&String> = sn.iter().flat_map(|n| [&n.weight, &n.u, &n.v]).collect();
    for (key, tensor) in &tensors {
        if tensor.shape.len() >= 2 && !state.contains(&key) {
            let sigma = spectral_norm_of(&format!("{}: {key}", file.display()), tensor, 0)?;
            rows.push(Row {
                key: key.clone(),
                shape: tensor.shape.clone(),
                normalized: false,
                dim: 0,
                sigma,
                sigma_uv: None,
                sigma_used: sigma,
            });
        }
    }
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(rows)
}

/// Runs `inspect`.
pub fn run(args: &InspectArgs) -> Result<()> {
    let rows = rows(&args.file)?;
    let bound: f64 = rows.iter().map(|r| r.sigma_used).product();
    if args.json {
        let rows: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({"key": r.key, "shape": r.shape, "spectral_norm": r.normalized, "dim": r.dim,
                       "sigma": r.sigma, "sigma_uv": r.sigma_uv,
                       "sigma_uv_relative_error": r.sigma_uv.map(|s| (s - r.sigma).abs() / r.sigma),
                       "sigma_used": r.sigma_used})
            })
            .collect();
        let report = json!({"file": args.file, "tolerance": TOLERANCE, "weights": rows, "lipschitz_bound": bound});
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("{}", args.file.display());
    println!(
        "{:<44} {:<16} {:>3} {:>4} {:>12} {:>12} {:>9} {:>10}",
        "weight", "shape", "SN", "dim", "σ(W)", "σ from u,v", "rel err", "σ used"
    );
    for r in &rows {
        let (uv, err) = match r.sigma_uv {
            Some(s) => (
                format!("{s:.6}"),
                format!("{:.2e}", (s - r.sigma).abs() / r.sigma),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<44} {:<16} {:>3} {:>4} {:>12.6} {:>12} {:>9} {:>10.6}",
            r.key,
            format!("{:?}", r.shape),
            if r.normalized { "yes" } else { "no" },
            r.dim,
            r.sigma,
            uv,
            err,
            r.sigma_used
        );
    }
    println!(
        "σ(W) by power iteration to a relative change below {TOLERANCE:e}; plain weights use dim 0.\n\
         Product of σ used (a Lipschitz upper bound for a plain feed-forward stack): {bound:.6}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{FILES, expected, fixture};

    #[test]
    fn sigmas_match_numpy_for_every_framework() {
        let expected = expected();
        for (file, framework) in FILES {
            let rows = rows(&fixture(file)).unwrap();
            let references = expected[framework]["weights"].as_object().unwrap();
            assert_eq!(
                rows.iter().filter(|r| r.normalized).count(),
                references.len(),
                "{file}"
            );
            for (key, reference) in references {
                let row = rows
                    .iter()
                    .find(|r| &r.key == key)
                    .unwrap_or_else(|| panic!("{file}: {key}"));
                let sigma = reference["sigma"].as_f64().unwrap();
                let sigma_uv = reference["sigma_uv"].as_f64().unwrap();
                assert_eq!(
                    row.dim as u64,
                    reference["dim"].as_u64().unwrap(),
                    "{file} {key}"
                );
                assert!(
                    (row.sigma - sigma).abs() < 1e-6 * sigma,
                    "{file} {key}: {} vs {sigma}",
                    row.sigma
                );
                let got_uv = row.sigma_uv.unwrap();
                assert!(
                    (got_uv - sigma_uv).abs() < 1e-6 * sigma_uv,
                    "{file} {key}: {got_uv} vs {sigma_uv}"
                );
            }
            let plain = rows.iter().find(|r| r.key == "head.weight").unwrap();
            assert!(!plain.normalized && plain.sigma_uv.is_none());
        }
    }
}

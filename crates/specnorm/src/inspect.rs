//! `specnorm inspect FILE`: the spectral norm of every weight of a checkpoint.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use specnorm::network::{self, LayerReport, Network, NetworkReport};
use specnorm::sigma::{Method, POWER_MAX_ITERATIONS, POWER_TOLERANCE, SVD_TOLERANCE, Sigma};
use specnorm::tensors;
use specnorm::weights::{self, Row};
use spectral_norm::format::escaped;

/// Options of `inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Checkpoint to read: .safetensors (Burn, Paddle or PyTorch names), .pt, .pth, .pdparams or a
    /// Burn record (.bpk).
    pub file: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The network's description (JSON: the input shape, then the layers in order with each
    /// convolution's stride, padding, …): adds every layer's operator norm and certified
    /// bound, and their product, a certified Lipschitz bound of the network.
    #[arg(long)]
    pub network: Option<PathBuf>,
}

/// The method column: `svd`, `power` (with its steps), or why σ has no tolerance.
fn method_label(sigma: &Sigma) -> String {
    match sigma.method {
        Method::Svd => "svd".into(),
        Method::PowerIteration {
            iterations,
            converged: true,
        } => format!("power {iterations}"),
        Method::PowerIteration { .. } => "power, NOT converged".into(),
        Method::NonFinite => "non-finite".into(),
    }
}

fn relative_error(row: &Row) -> Option<f64> {
    row.sigma_uv
        .map(|s| (s - row.sigma.value).abs() / row.sigma.value)
}

fn to_json(row: &Row) -> serde_json::Value {
    let iterations = match row.sigma.method {
        Method::PowerIteration { iterations, .. } => Some(iterations),
        _ => None,
    };
    json!({"key": row.key, "shape": row.shape,
           "dtype": format!("{:?}", row.dtype).to_lowercase(),
           "spectral_norm": row.normalized, "dim": row.dim,
           "sigma": row.sigma.value, "sigma_method": row.sigma.method_name(),
           "sigma_tolerance": row.sigma.tolerance(), "power_iterations": iterations,
           "sigma_uv": row.sigma_uv, "sigma_uv_relative_error": relative_error(row),
           "sigma_used": row.sigma_used, "gamma": row.gamma})
}

/// The report as a table: the file, a row per weight (keys escaped: a key from the file can
/// neither break a row nor move the cursor) and the stack's bound.
fn table(file: &std::path::Path, rows: &[Row], bound: f64) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{}", escaped(&file.display().to_string()));
    let _ = writeln!(
        out,
        "{:<44} {:<16} {:<5} {:>3} {:>4} {:>12} {:<11} {:>12} {:>9} {:>10}",
        "weight",
        "shape",
        "dtype",
        "SN",
        "dim",
        "σ(W)",
        "method",
        "σ from u,v",
        "rel err",
        "σ used"
    );
    for r in rows {
        let uv = r.sigma_uv.map_or("-".into(), |s| format!("{s:.6}"));
        let err = relative_error(r).map_or("-".into(), |e| format!("{e:.2e}"));
        let _ = writeln!(
            out,
            "{:<44} {:<16} {:<5} {:>3} {:>4} {:>12.6} {:<11} {:>12} {:>9} {:>10.6}",
            escaped(&r.key),
            format!("{:?}", r.shape),
            format!("{:?}", r.dtype).to_lowercase(),
            if r.normalized { "yes" } else { "no" },
            r.dim,
            r.sigma.value,
            method_label(&r.sigma),
            uv,
            err,
            r.sigma_used
        );
    }
    let _ = writeln!(
        out,
        "σ(W): svd = exact SVD (relative error below {SVD_TOLERANCE:e}), used up to 512 × 512 \
         or the same cost; power N = power iteration, N steps to a relative change below \
         {POWER_TOLERANCE:e}. Plain weights use dim 0.\n\
         Product of σ used: {bound:.6} (a Lipschitz bound only for a stack of Linear layers; \
         a convolution's norm is not its matrix view's σ: give --network for a certified one)"
    );
    out
}

/// The network's layers as a table, and their product.
fn network_table(layers: &[LayerReport], bound: f64) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<44} {:<9} {:>3} {:>14} {:>14} {:<16}",
        "layer", "kind", "SN", "norm (est.)", "certified ≤", "output"
    );
    for layer in layers {
        let _ = writeln!(
            out,
            "{:<44} {:<9} {:>3} {:>14.6} {:>14.6} {:<16}",
            escaped(&layer.name),
            layer.kind,
            if layer.normalized { "yes" } else { "no" },
            layer.estimate,
            layer.bound,
            format!("{:?}", layer.output)
        );
    }
    let _ = writeln!(
        out,
        "Certified Lipschitz bound of the network (product of the layers' bounds; \
         1-Lipschitz activations between them, no skip connections): {bound:.6}"
    );
    out
}

fn layer_json(layer: &LayerReport) -> serde_json::Value {
    json!({"layer": layer.name, "kind": layer.kind, "spectral_norm": layer.normalized,
           "norm_estimate": layer.estimate, "upper_bound": layer.bound,
           "output": layer.output})
}

/// The matrix-view rows and, given a network, its layers' report: operator-mode weights (u
/// and v a sample, not a matrix axis) are in the second only.
pub fn reports(
    file: &std::path::Path,
    network: Option<&Network>,
) -> Result<(Vec<Row>, Option<NetworkReport>)> {
    let mut tensors = tensors::read(file)?;
    let name = file.display().to_string();
    let Some(network) = network else {
        return Ok((weights::rows(&tensors, &name)?, None));
    };
    let layers = network::report(&tensors, network, &name)?;
    // Only the network's convolutions leave the matrix rows: an operator-mode weight the
    // network does not name is still refused there, naming it, not dropped unseen.
    let convs = network::operators(&tensors, network, &name)?;
    for entry in weights::normalized(&tensors) {
        let (w, u, v) = (
            &tensors[&entry.weight],
            &tensors[&entry.u],
            &tensors[&entry.v],
        );
        if convs.contains_key(&entry.weight) && weights::axis_of("", w, u, v).is_err() {
            for key in [&entry.weight, &entry.u, &entry.v] {
                tensors.remove(key);
            }
        }
    }
    Ok((weights::rows(&tensors, &name)?, Some(layers)))
}

/// The matrix-view rows of `file` alone.
#[cfg(test)]
pub(crate) fn rows(file: &std::path::Path) -> Result<Vec<Row>> {
    Ok(reports(file, None)?.0)
}

/// Runs `inspect`.
pub fn run(args: &InspectArgs) -> Result<()> {
    let network = args.network.as_deref().map(Network::read).transpose()?;
    let (rows, layers) = reports(&args.file, network.as_ref())?;
    let bound: f64 = rows.iter().map(|r| r.sigma_used).product();
    if args.json {
        let weights: Vec<_> = rows.iter().map(to_json).collect();
        let mut report = json!({"file": args.file, "weights": weights,
            "product_of_sigma_used": bound,
            "tolerances": {"svd": SVD_TOLERANCE, "power": POWER_TOLERANCE,
                           "power_max_iterations": POWER_MAX_ITERATIONS}});
        if let Some((layers, certified)) = &layers {
            report["network"] = json!({"layers": layers.iter().map(layer_json).collect::<Vec<_>>(),
                                       "lipschitz_upper_bound": certified});
        }
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print!("{}", table(&args.file, &rows, bound));
    if let Some((layers, certified)) = &layers {
        print!("{}", network_table(layers, *certified));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{FILES, expected, fixture};

    /// A valid file whose key holds a newline and an ANSI "clear screen": one row, shown
    /// escaped, and no control character anywhere in the table.
    #[test]
    fn keys_from_the_file_are_shown_escaped() {
        let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/safetensors/valid-key-escapes");
        let dir = crate::test_fixtures::scratch("inspect-escapes");
        let file = dir.join("keys.safetensors");
        std::fs::copy(seed, &file).unwrap();
        let rows = rows(&file).unwrap();
        let table = table(&file, &rows, 1.0);
        assert!(table.contains("fc.weight\\n\\u{1b}[2J"), "{table}");
        assert_eq!(table.lines().count(), 5, "{table}");
        assert!(!table.contains('\u{1b}'));
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
                    (row.sigma.value - sigma).abs() <= SVD_TOLERANCE * sigma,
                    "{file} {key}: {} vs {sigma}",
                    row.sigma.value
                );
                assert_eq!(row.sigma.method, Method::Svd, "{file} {key}: small");
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

    #[test]
    fn every_row_states_its_method_and_tolerance() {
        for row in rows(&fixture("paddle.pdparams")).unwrap() {
            let json = to_json(&row);
            assert_eq!(json["sigma_method"], "svd", "{}", row.key);
            assert_eq!(json["sigma_tolerance"], SVD_TOLERANCE);
            assert!(json["power_iterations"].is_null());
            assert_eq!(method_label(&row.sigma), "svd");
        }
        let mut row = rows(&fixture("paddle.pdparams")).unwrap().remove(0);
        for (converged, label, tolerance) in [
            (true, "power 12", Some(POWER_TOLERANCE)),
            (false, "power, NOT converged", None),
        ] {
            row.sigma.method = Method::PowerIteration {
                iterations: 12,
                converged,
            };
            let json = to_json(&row);
            assert_eq!(json["sigma_method"], "power");
            assert_eq!(json["power_iterations"], 12);
            assert_eq!(json["sigma_tolerance"].as_f64(), tolerance);
            assert_eq!(method_label(&row.sigma), label);
        }
    }

    /// An operator-mode weight (u and v a sample, not a matrix axis): refused by the matrix
    /// report alone, naming the key; with the network's geometry, in the layer report only,
    /// and the plain weight beside it in both.
    #[test]
    fn operator_mode_weights_need_the_network() {
        use spectral_norm::format::FloatDtype;
        let tensor = |shape: Vec<usize>| {
            let n: usize = shape.iter().product();
            let values = (0..n).map(|i| ((i * 7 % 11) as f64 - 5.0) / 4.0).collect();
            tensors::NamedTensor {
                shape,
                values,
                dtype: FloatDtype::F64,
            }
        };
        let checkpoint = std::collections::BTreeMap::from([
            ("c.weight".to_string(), tensor(vec![3, 2, 3, 3])),
            (
                "c.weight.spectral_norm.u".to_string(),
                tensor(vec![3 * 4 * 4]),
            ),
            (
                "c.weight.spectral_norm.v".to_string(),
                tensor(vec![2 * 4 * 4]),
            ),
            ("fc.weight".to_string(), tensor(vec![48, 2])),
        ]);
        let dir = crate::test_fixtures::scratch("inspect-network");
        let file = dir.join("net.safetensors");
        tensors::write(&file, &checkpoint).unwrap();
        let error = format!("{:#}", reports(&file, None).unwrap_err());
        assert!(
            error.contains("c.weight") && error.contains("do not fit"),
            "{error}"
        );
        let network = Network::parse(
            r#"{"input": [2, 4, 4], "layers": [{"key": "c.weight", "padding": [1, 1]},
                                            {"key": "fc.weight"}]}"#,
        )
        .unwrap();
        let (rows, layers) = reports(&file, Some(&network)).unwrap();
        let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["fc.weight"]);
        let (layers, bound) = layers.unwrap();
        assert_eq!(layers.len(), 2);
        assert!(layers[0].normalized && layers[0].kind == "conv");
        assert_eq!(bound, layers[0].bound * layers[1].bound);
        // A network that does not name the operator-mode weight leaves it refused.
        let without =
            Network::parse(r#"{"input": [48], "layers": [{"key": "fc.weight"}]}"#).unwrap();
        let error = format!("{:#}", reports(&file, Some(&without)).unwrap_err());
        assert!(
            error.contains("c.weight") && error.contains("do not fit"),
            "{error}"
        );
        let table = network_table(&layers, bound);
        assert!(table.contains("c.weight") && table.contains("Certified Lipschitz bound"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
